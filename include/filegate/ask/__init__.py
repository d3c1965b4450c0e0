"""Ask: questions in plain language over the marketplace aggregate and the file statuses.

Two engines write SQL (the built-in grammar in `grammar`, optionally an LLM through `bedrock`); whatever wrote
it, `guard` accepts only one SELECT over the documented read-only views of `readable_views`, and `answer` runs it in a
read-only transaction, under a statement timeout, as the role `filegate_ask` that can read nothing else.
"""
