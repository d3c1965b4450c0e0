"""The Bedrock SQL writer: what it sends to Converse (the views, the rules, the question) and how it reads the
answer. The real HTTP exchange is tested in tests/integration/test_ask.py against a local Bedrock endpoint."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from filegate.ask.bedrock import BedrockSqlWriter, LlmError, sql_in
from filegate.ask.readable_views import Catalog


class FakeClient:
    def __init__(self, text: str) -> None:
        self.text = text
        self.calls: list[dict[str, Any]] = []

    def converse(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"output": {"message": {"role": "assistant", "content": [{"text": self.text}]}},
                "stopReason": "end_turn"}


def test_the_model_gets_the_views_the_rules_and_the_question() -> None:
    client = FakeClient("```sql\nSELECT count(*) AS n FROM ask.files\n```")
    sql = BedrockSqlWriter(client, "some.model", date(2026, 12, 3))("how many files are there", Catalog.of(None))
    assert sql == "SELECT count(*) AS n FROM ask.files"
    [call] = client.calls
    assert call["modelId"] == "some.model" and call["inferenceConfig"]["temperature"] == 0
    system = call["system"][0]["text"]
    assert "ask.files" in system and "rows_rejected" in system and "Today is 2026-12-03" in system
    assert "exactly one SELECT" in system
    assert call["messages"] == [{"role": "user", "content": [{"text": "how many files are there"}]}]


@pytest.mark.parametrize(("text", "sql"), [
    ("SELECT 1 FROM ask.files", "SELECT 1 FROM ask.files"),
    ("Sure:\n```SQL\nSELECT 2 FROM ask.files;\n```\nanything after", "SELECT 2 FROM ask.files;"),
    ("```\nSELECT 3 FROM ask.files\n```", "SELECT 3 FROM ask.files"),
])
def test_the_sql_is_the_first_fenced_block_or_the_whole_text(text: str, sql: str) -> None:
    assert sql_in(text) == sql


@pytest.mark.parametrize("text", ["", "CANNOT ANSWER", "cannot answer: the views hold no weather"])
def test_a_model_that_cannot_answer_raises(text: str) -> None:
    with pytest.raises(LlmError):
        sql_in(text)
