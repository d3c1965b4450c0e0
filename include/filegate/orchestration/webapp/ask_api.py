"""POST /api/ask: a question in plain language over the marketplace's sales and the file statuses, answered with
the SQL that ran, the rows and a chart spec. The engines and the guard live in filegate.ask; this module maps
them to HTTP, to the feed permissions (sales answers need read access to the transactions feed; file answers
cover only readable feeds) and to the optional LLM's Airflow connection."""

from __future__ import annotations

import logging
import os
from datetime import UTC, date, datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field

from filegate.ask.answer import Asker, AskForbidden, AskUnavailable, SqlWriter, ask
from filegate.ask.bedrock import BedrockSqlWriter, LlmError
from filegate.ask.grammar import NotUnderstood
from filegate.ask.guard import MAX_ROWS, Refused
from filegate.ask.readable_views import Catalog
from filegate.orchestration.webapp.auth import Access, CurrentUser, user_name
from filegate.orchestration.webapp.backend import Backend, get_backend
from filegate.reporting.transactions import TransactionsTable, TransactionsUnavailable, transactions_feed
from filegate.storage.database import ConnectError

log = logging.getLogger(__name__)
LLM_CONN_ENV = "FILEGATE_ASK_LLM_CONN_ID"  # an Airflow AWS connection: enables the Bedrock engine
MODEL_ENV = "FILEGATE_ASK_MODEL_ID"  # the model, unless the connection's extra names `model_id`
router = APIRouter(prefix="/api", tags=["ask"])


class AskIn(BaseModel):
    question: str = Field(min_length=1, max_length=500, examples=["top 5 sellers by revenue last week"])
    today: date | None = Field(None, description="the day relative dates count from (default: today, UTC)")


class AskOut(BaseModel):
    question: str
    engine: str = Field(description="`grammar` (built in) or `llm` (Bedrock, when configured)")
    understood: str = Field(description="what the grammar understood, or the SQL the LLM wrote")
    sql: str = Field(description="the SQL that ran, as the guard rendered it (with its LIMIT)")
    columns: list[str]
    rows: list[dict[str, Any]] = Field(description="exact decimals (revenue, prices) are strings")
    chart: dict[str, Any] | None = Field(description="`kind` (line or bar), `x` column, `y` columns; null when a "
                                                     "chart would not help")
    truncated: bool = Field(description=f"the answer hit the row limit ({MAX_ROWS})")
    elapsed_ms: float


def _sales_table(backend: Backend) -> TransactionsTable | None:
    contract = backend.contract(transactions_feed())
    if contract is None:
        return None
    try:
        table = TransactionsTable.of(contract)
    except TransactionsUnavailable:
        return None
    postgres = contract.destinations.postgres
    # The views live in the status store's database: a feed loaded into a database of its own is not askable.
    return table if postgres is not None and not postgres.dsn_env else None


def llm_writer(today: date) -> SqlWriter | None:
    """The Bedrock engine when FILEGATE_ASK_LLM_CONN_ID names a connection, else None. Its client is built only
    when a question needs it (the grammar answers most without)."""
    conn_id = os.environ.get(LLM_CONN_ENV)
    if not conn_id:
        return None

    def write(question: str, catalog: Catalog) -> str:
        from airflow.providers.amazon.aws.hooks.bedrock import BedrockRuntimeHook

        hook = BedrockRuntimeHook(aws_conn_id=conn_id)
        model_id = hook.conn_config.extra_config.get("model_id") or os.environ.get(MODEL_ENV)
        if not model_id:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                f"{LLM_CONN_ENV} names {conn_id!r} but no model: set `model_id` in its extra or "
                                f"{MODEL_ENV}")
        return BedrockSqlWriter(hook.conn, model_id, today)(question, catalog)

    return write


@router.post("/ask", response_model=AskOut, summary="Answer a question in plain language",
             description="The built-in grammar (docs/ask.md) turns the question into SQL over the read-only views "
                         "`ask.sales` and `ask.files`; when it does not understand and an LLM connection is "
                         f"configured ({LLM_CONN_ENV}), Amazon Bedrock writes the SQL. Either way the SQL must be "
                         "one SELECT over those views (else 422) and runs read-only under a statement timeout. "
                         "Sales answers need read permission on the transactions feed's DAG (403); file answers "
                         "cover only the feeds you may read. 422 also when the question is not understood: the "
                         "message shows questions that are.")
def ask_question(body: AskIn, user: CurrentUser, backend: Annotated[Backend, Depends(get_backend)],
                 access: Access) -> AskOut:
    today = body.today or datetime.now(UTC).date()
    asker = Asker(dsn=backend.dsn, feeds=access.feeds, sales=_sales_table(backend), writer=llm_writer(today))
    try:
        answer = ask(body.question, asker, today)
    except (NotUnderstood, LlmError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except Refused as exc:
        log.warning("ask: refused SQL for %s's question %r: %s", user_name(user), body.question, exc)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"refused: {exc}") from exc
    except AskForbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except AskUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    except psycopg.errors.QueryCanceled as exc:
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT, "the query ran past its statement timeout") from exc
    except psycopg.errors.InsufficientPrivilege as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "refused by the database: the Ask role may "
                                                                   "only read the ask views") from exc
    except ConnectError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    except psycopg.Error as exc:  # a checked query can still be wrong (a type mismatch the model wrote)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"the query failed: {str(exc).splitlines()[0]}") from exc
    except Exception as exc:
        if type(exc).__module__.startswith("botocore"):
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"the LLM endpoint failed: {exc}") from exc
        raise
    return AskOut(question=answer.question, engine=answer.engine, understood=answer.understood, sql=answer.sql,
                  columns=answer.columns, rows=answer.rows, chart=answer.chart,
                  truncated=len(answer.rows) >= MAX_ROWS, elapsed_ms=answer.elapsed_ms)
