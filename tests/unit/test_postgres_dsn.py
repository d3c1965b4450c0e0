"""A destination's DSN (the env var named by `dsn_env`) never reaches a reason, a message or a traceback."""

from __future__ import annotations

import traceback
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filegate.contracts.model import Contract
from filegate.pipeline.engine import EngineResult
from filegate.pipeline.publish import load_destinations

ENV = "FG_TEST_TARGET_DSN"
FRAGMENTS = ("Hunter2", "Secret-Value")  # neither half of the password may show


def contract() -> Contract:
    return Contract.model_validate({
        "name": "dsn_check", "description": "x",
        "schema": {"columns": [{"name": "k", "type": "int"}]},
        "destinations": {"postgres": {"table": "dsn_check", "natural_key": ["k"], "dsn_env": ENV}}})


def processed(tmp_path: Path) -> EngineResult:
    path = tmp_path / "part.parquet"
    pq.write_table(pa.table({"k": [1, 2]}), path)
    return EngineResult(status="processed", reason=None, parquet_files={"x": path}, rows_output=2)


@pytest.mark.parametrize("dsn", [
    "host=127.0.0.1 port=1 password=Hunter2 Secret-Value",  # libpq: missing "=" after "Secret-Value"
    "host=127.0.0.1 port=1 password='Hunter2-Secret-Value",  # unterminated quoted string
    "Hunter2-Secret-Value",  # the variable holds only the password
    "postgresql://filegate:Hunter2@Secret-Value@127.0.0.1:1/db?connect_timeout=2",  # unescaped @: host 'Secret-…'
    "postgresql://filegate:Hunter2-Secret-Value@127.0.0.1:1/db?bogus_option=1",  # invalid URI query parameter
    "host=127.0.0.1 port=1 user=u password=Hunter2-Secret-Value connect_timeout=2",  # well formed, refused
])
def test_a_malformed_or_unreachable_dsn_is_never_echoed(tmp_path, monkeypatch, dsn: str) -> None:
    monkeypatch.setenv(ENV, dsn)
    with pytest.raises(psycopg.Error) as raised:
        load_destinations(contract(), processed(tmp_path), sha256="s" * 64)
    text = "".join(traceback.format_exception(raised.value))  # what a task log would show, chained causes too
    for fragment in FRAGMENTS:
        assert fragment not in str(raised.value) and fragment not in text, (dsn, text)
    assert f"dsn_env ({ENV})" in str(raised.value)
    assert "\n" not in str(raised.value) and len(str(raised.value)) < 500


def test_a_connection_reason_is_kept_when_it_holds_no_secret(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(ENV, "host=127.0.0.1 port=1 user=u password=Hunter2-Secret-Value connect_timeout=2")
    with pytest.raises(psycopg.OperationalError, match="Connection refused"):
        load_destinations(contract(), processed(tmp_path), sha256="s" * 64)


def test_scrub_removes_password_forms_and_the_dsn() -> None:
    from filegate.storage.database import dsn_secrets, scrub

    dsn = "postgresql://u:p%40ss%20word@db.internal/x"
    secrets = dsn_secrets(dsn)
    assert scrub(f"bad {dsn} p@ss word p%40ss%20word", secrets) == "bad *** *** ***"


@pytest.mark.parametrize("dsn", [
    "host=127.0.0.1 port=1 password=Hunter2 Secret-Value",
    "postgresql://filegate:Hunter2@Secret-Value@127.0.0.1:1/db?connect_timeout=2",
])
def test_the_status_store_dsn_is_never_echoed(monkeypatch, capsys, dsn: str) -> None:
    """`filegate status` (and every task) connects to the status store with FILEGATE_DB_URL: same rule."""
    from filegate.cli import main

    monkeypatch.setenv("FILEGATE_DB_URL", dsn)
    assert main(["status"]) == 1
    err = capsys.readouterr().err
    assert "FILEGATE_DB_URL" in err and err.count("\n") == 1
    for fragment in FRAGMENTS:
        assert fragment not in err, err
