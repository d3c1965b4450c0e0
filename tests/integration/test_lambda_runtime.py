"""boto3 → the local Lambda endpoint → awslambdaric → Filegate's real handlers (S3 in the stack's moto):
success, a handler exception and a timeout, through the same invoker code the DAG uses."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from filegate.functions.catalog import FUNCTIONS
from filegate.functions.events import example
from filegate.functions.invoke import LambdaInvocationError, boto3_invoker, build_payload

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "lambdas"))
from lambda_support import big_csv

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PDF = ROOT / "include" / "samples" / "pdfs" / "statement_2026-11-20.pdf"


@pytest.fixture(scope="module")
def s3(local_stack: Any) -> Any:
    return boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def invoke(local_stack: Any) -> Any:
    return boto3_invoker(endpoint_url=local_stack.lambda_url, region_name="us-east-1",
                         aws_access_key_id="testing", aws_secret_access_key="testing")


def test_endpoint_serves_every_registered_function(local_stack: Any) -> None:
    import requests

    served = requests.get(f"{local_stack.lambda_url}/_endpoint/health", timeout=5).json()["functions"]
    assert set(FUNCTIONS) <= set(served)


def test_process_file_runs_under_awslambdaric(local_stack: Any, s3: Any, invoke: Any) -> None:
    event = example("process_file")
    event["raw_key"] = "raw/lines/2026/11/21/lambda_ok.csv"
    event["contract"]["thresholds"] = {"max_rejected_share": 0.6}
    s3.put_object(Bucket=local_stack.bucket, Key=event["raw_key"], Body=big_csv(500))
    result = invoke("filegate-process-file", build_payload("process_file", **event))
    assert result.payload["status"] == "processed" and result.payload["rows"]["total"] == 500
    # The id the caller records (file.outputs.lambda.request_ids) is the invocation's own: its log ends with it.
    assert f"REPORT RequestId: {result.request_id}\t" in result.log_tail and "500 rows" in result.log_tail
    key = result.payload["outputs"]["parquet"][0]
    rows = pq.read_table(io.BytesIO(s3.get_object(Bucket=local_stack.bucket, Key=key)["Body"].read())).num_rows
    assert rows == result.payload["rows"]["valid"]


def test_split_pdf_runs_under_awslambdaric(local_stack: Any, s3: Any, invoke: Any) -> None:
    event = example("split_pdf")
    s3.put_object(Bucket=local_stack.bucket, Key=event["raw_key"], Body=PDF.read_bytes())
    result = invoke("filegate-split-pdf", build_payload("split_pdf", **event))
    assert result.payload["status"] == "processed"
    assert result.payload["pages"] == {"total": 3, "part1": 2, "part2": 1}


def test_handler_exception_reaches_the_caller_with_message_and_log_tail(local_stack: Any, invoke: Any) -> None:
    event = example("process_file")
    event["raw_key"] = "raw/lines/2026/11/21/never_uploaded.csv"
    with pytest.raises(LambdaInvocationError) as err:
        invoke("filegate-process-file", build_payload("process_file", **event))
    assert err.value.error_type == "ClientError"
    assert "HeadObject operation: Not Found" in err.value.error_message
    assert "Traceback" in err.value.log_tail or "[ERROR]" in err.value.log_tail
    assert "failed (ClientError)" in str(err.value) and "log tail:" in str(err.value)
    assert f"REPORT RequestId: {err.value.request_id}\t" in err.value.log_tail


def test_an_event_that_breaks_the_schema_is_refused_inside_the_function(local_stack: Any, invoke: Any) -> None:
    # The DAG validates before invoking; the handler checks again (someone may invoke it by hand).
    with pytest.raises(LambdaInvocationError) as err:
        invoke("filegate-process-file", {"bucket": local_stack.bucket})
    assert err.value.error_type == "EventError" and "'raw_key' is a required property" in err.value.error_message


def test_timeout_ends_the_invocation_and_names_it(local_stack: Any, s3: Any, invoke: Any) -> None:
    event = example("process_file")
    event["raw_key"] = "raw/lines/2026/11/21/too_big_for_1s.csv"
    s3.put_object(Bucket=local_stack.bucket, Key=event["raw_key"], Body=big_csv(300_000))
    with pytest.raises(LambdaInvocationError) as err:
        invoke("fg-process-file-1s", build_payload("process_file", **event))
    assert err.value.error_type == "Sandbox.Timedout"
    assert "Task timed out after 1." in err.value.error_message
    assert f"RequestId: {err.value.request_id} Error: Task timed out" in err.value.log_tail


def test_content_other_than_registered_fails_the_invocation_by_name(local_stack: Any, s3: Any, invoke: Any) -> None:
    event = example("process_file")
    event["raw_key"] = "raw/lines/2026/11/21/replaced_after_registration.csv"
    s3.put_object(Bucket=local_stack.bucket, Key=event["raw_key"], Body=big_csv(10))
    with pytest.raises(LambdaInvocationError) as err:
        invoke("filegate-process-file", build_payload("process_file", **event, sha256="0" * 64))
    assert err.value.error_type == "ObjectChanged"
    assert "is not the file that was registered" in err.value.error_message
