"""Routing, payloads and result application (filegate.pipeline.heavy) with handlers run in-process."""

from __future__ import annotations

import base64
import io
import json
import logging
from datetime import date
from pathlib import Path

import pytest
from lambda_support import BUCKET, big_csv, in_process_invoker, snapshot

from filegate.contracts.model import Contract
from filegate.functions import invoke as lambda_client
from filegate.functions.events import example
from filegate.pipeline import heavy

ROOT = Path(__file__).resolve().parents[3]
PDF = ROOT / "include" / "samples" / "pdfs" / "statement_2026-11-20.pdf"


def _contract(**heavy_settings) -> Contract:
    data = example("process_file")["contract"]
    return Contract.model_validate({**data, "thresholds": {"max_rejected_share": 0.6}, "heavy": heavy_settings})


def test_routes() -> None:
    assert not heavy.route(_contract(), name="a.csv", size_bytes=10**12).to_lambda
    big = heavy.route(_contract(size_threshold_bytes=1000), name="a.csv", size_bytes=1001)
    assert big.to_lambda and big.function == "filegate-process-file" and "over the feed's threshold" in big.reason
    assert not heavy.route(_contract(size_threshold_bytes=1000), name="a.csv", size_bytes=1000).to_lambda
    always = heavy.route(_contract(always_formats=["csv"]), name="a.csv", size_bytes=1)
    assert always.to_lambda and "always goes to Lambda" in always.reason
    pdfs = Contract.model_validate({"name": "pdfs", "description": "x", "format": {"type": "pdf"}})
    assert heavy.route(pdfs, name="a.pdf", size_bytes=1).function == "filegate-split-pdf"


def test_client_settings_outlast_the_function_and_never_retry() -> None:
    config = lambda_client.botocore_config("filegate-process-file")
    assert config["read_timeout"] > 900 and config["tcp_keepalive"] is True
    assert config["retries"]["max_attempts"] == 0


def test_function_error_carries_message_and_log_tail(caplog) -> None:
    tail = "START RequestId: r1\n[ERROR] ValueError: boom\nTraceback ...\nEND RequestId: r1\n"
    response = {"FunctionError": "Unhandled", "LogResult": base64.b64encode(tail.encode()).decode(),
                "ResponseMetadata": {"RequestId": "r1"},
                "Payload": io.BytesIO(json.dumps({"errorType": "ValueError", "errorMessage": "boom: bad"}).encode())}
    with caplog.at_level(logging.INFO), pytest.raises(lambda_client.LambdaInvocationError) as err:
        lambda_client.parse_invoke_response("filegate-process-file", response, started=0.0)
    message = str(err.value)
    assert message.startswith("Lambda filegate-process-file failed (ValueError): boom: bad | request r1")
    assert "[ERROR] ValueError: boom" in message
    assert "[filegate-process-file] [ERROR] ValueError: boom" in caplog.text  # the task log shows the tail


def _row(s3, key: str, data: bytes, **extra) -> dict:
    s3.put_object(Bucket=BUCKET, Key=key, Body=data, **extra)
    import hashlib

    return {"id": 1, "raw_key": key, "name": key.rsplit("/", 1)[1], "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "params": {}}


def test_large_file_is_split_across_invocations(s3, monkeypatch) -> None:
    monkeypatch.setenv(heavy.PART_BYTES_ENV, "20000")
    calls: list[str] = []
    row = _row(s3, "raw/lines/2026/11/20/lines.csv", big_csv())
    outcome = heavy.process_routed(s3, BUCKET, _contract(size_threshold_bytes=1000), row,
                                   arrived=date(2026, 11, 20), invoker=in_process_invoker(calls))
    assert calls[0] == "filegate-plan-parts" and calls[-1] == "filegate-merge-parts"
    assert calls.count("filegate-convert-part") == len(calls) - 2 >= 3
    assert outcome.status == "processed" and outcome.engine.rows_total == 3000
    assert outcome.engine.column_stats["amount"]["count"] == outcome.engine.rows_valid
    assert outcome.outputs["lambda"]["invocations"] == len(calls)
    assert {"raw", "parquet", "summary", "quarantine_rows"} <= set(outcome.outputs)


def test_small_heavy_file_is_one_invocation(s3) -> None:
    calls: list[str] = []
    row = _row(s3, "raw/lines/2026/11/20/lines.csv", big_csv(200))
    outcome = heavy.process_routed(s3, BUCKET, _contract(size_threshold_bytes=10), row,
                                   arrived=date(2026, 11, 20), invoker=in_process_invoker(calls))
    assert calls == ["filegate-process-file"] and outcome.engine.rows_total == 200


def test_pdf_page_map_comes_from_the_upload_metadata(s3) -> None:
    calls: list[str] = []
    params = json.dumps({"page_map": {"intro": [0], "rest": [1, 2]}})
    row = _row(s3, "raw/pdfs/2026/11/20/statement.pdf", PDF.read_bytes(), Metadata={"filegate-params": params})
    pdfs = Contract.model_validate({"name": "pdfs", "description": "x", "format": {"type": "pdf"},
                                    "heavy": {"always_formats": ["pdf"], "function": "filegate-split-pdf"}})
    outcome = heavy.process_routed(s3, BUCKET, pdfs, row, arrived=date(2026, 11, 20),
                                   invoker=in_process_invoker(calls))
    assert calls == ["filegate-split-pdf"] and outcome.status == "processed"
    assert outcome.outputs["pages"] == {"intro": 1, "rest": 2}
    assert outcome.engine.rows_total == 3 and outcome.engine.column_stats["parts"] == {"intro": 1, "rest": 2}
    assert sorted(k.rsplit("/", 1)[1] for k in snapshot(s3, "processed/pdfs/") if k.endswith(".pdf")) == [
        "intro.pdf", "rest.pdf"]


def test_pdf_without_a_lambda_invoker_fails_clearly(s3) -> None:
    row = _row(s3, "raw/pdfs/2026/11/20/statement.pdf", PDF.read_bytes())
    pdfs = Contract.model_validate({"name": "pdfs", "description": "x", "format": {"type": "pdf"}})
    with pytest.raises(RuntimeError, match="no Lambda invoker is configured"):
        heavy.process_routed(s3, BUCKET, pdfs, row, arrived=date(2026, 11, 20), invoker=None)


def test_a_wide_schema_version_travels_to_lambda_without_its_profile_or_not_at_all() -> None:
    from filegate.pipeline.heavy import BASELINE_MAX_BYTES, BASELINE_PROFILE_MAX_BYTES, baseline_for_event

    columns = [{"name": f"c{n}", "type": "string", "nullable": True, "declared": False} for n in range(10)]
    small = {"version": 1, "columns": columns, "profile": {"c0": {"distinct": 3}}}
    assert baseline_for_event(small, "f.csv") == small and baseline_for_event(None, "f.csv") is None
    wide_profile = {**small, "profile": {f"c{n}": {"min": "x" * 64} for n in range(BASELINE_PROFILE_MAX_BYTES // 64)}}
    assert baseline_for_event(wide_profile, "f.csv") == {"version": 1, "columns": columns}
    too_wide = {"version": 1, "columns": [{**columns[0], "name": f"column_{n:06d}"}
                                          for n in range(BASELINE_MAX_BYTES // 60)]}
    assert baseline_for_event(too_wide, "f.csv") is None
