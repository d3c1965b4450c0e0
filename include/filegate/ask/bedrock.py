"""The optional LLM engine: Amazon Bedrock's Converse API writes the SQL for questions the grammar does not
understand. It is given only the documented views (catalog.describe()) and the guard's rules; what it answers is
untrusted text that the guard checks like any other SQL.

No Airflow here: the caller passes a bedrock-runtime client (the api-server builds it from an Airflow connection
with the amazon provider's BedrockRuntimeHook, so `endpoint_url` in the connection's extra points it elsewhere).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from filegate.ask.guard import MAX_ROWS
from filegate.ask.readable_views import Catalog

log = logging.getLogger(__name__)
MAX_TOKENS = 800
_FENCED = re.compile(r"```(?:sql)?\s*(?P<sql>.*?)```", re.DOTALL | re.IGNORECASE)

INSTRUCTIONS = """You translate questions about a file-ingestion system's data into one PostgreSQL query.
Rules: answer with exactly one SELECT statement in a ```sql fenced block and nothing else; read only these views,
always schema-qualified; use only their columns; no functions other than aggregates (count, sum, avg, min, max),
round, coalesce, nullif, date_trunc, extract, cast, lower, upper; put a LIMIT of at most {max_rows}. If the
question cannot be answered from these views, answer exactly: CANNOT ANSWER.
Today is {today}. The views:
{views}"""


class LlmError(Exception):
    """The model gave no SQL (an error, no text, or it said it cannot answer)."""


@dataclass(frozen=True)
class BedrockSqlWriter:
    client: Any  # boto3 bedrock-runtime client
    model_id: str
    today: date
    max_tokens: int = MAX_TOKENS

    def system_prompt(self, catalog: Catalog) -> str:
        return INSTRUCTIONS.format(max_rows=MAX_ROWS, today=self.today.isoformat(), views=catalog.describe())

    def __call__(self, question: str, catalog: Catalog) -> str:
        response = self.client.converse(
            modelId=self.model_id,
            system=[{"text": self.system_prompt(catalog)}],
            messages=[{"role": "user", "content": [{"text": question}]}],
            inferenceConfig={"maxTokens": self.max_tokens, "temperature": 0},
        )
        blocks = response.get("output", {}).get("message", {}).get("content", [])
        text = "\n".join(b["text"] for b in blocks if "text" in b).strip()
        log.info("bedrock %s answered %d characters (stop: %s)", self.model_id, len(text),
                 response.get("stopReason"))
        return sql_in(text)


def sql_in(text: str) -> str:
    """The SQL of a model's answer: the first fenced block, else the whole text."""
    if not text or text.upper().startswith("CANNOT ANSWER"):
        raise LlmError("the model could not answer this question from the views")
    fenced = _FENCED.search(text)
    return (fenced["sql"] if fenced else text).strip()
