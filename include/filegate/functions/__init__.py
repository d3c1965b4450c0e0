"""Filegate's AWS Lambda functions as seen by their callers: the catalog (name → handler, event, limits), the
event schemas both sides check, and the invoking client. The handlers themselves live in filegate.lambdas."""
