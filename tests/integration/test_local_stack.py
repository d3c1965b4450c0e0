"""The local stack is real: boto3 → Lambda endpoint → awslambdaric, S3 → SQS, FTP/FTPS, stub API, Postgres."""

from __future__ import annotations

import base64
import ftplib
import io
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.parse
from typing import Any

import boto3
import psutil
import psycopg
import pytest
import requests
from botocore.config import Config

from filegate_stack.config import Ports, StackConfig, free_port, free_port_range
from filegate_stack.procs import port_open, wait_until
from filegate_stack.stack import Stack

pytestmark = pytest.mark.integration


def aws(service: str, url: str, **config: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 0}, read_timeout=60, **config),
    )


def invoke(local_stack: Any, name: str, payload: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    client = aws("lambda", local_stack.lambda_url)
    return client.invoke(FunctionName=name, Payload=json.dumps(payload).encode(), **kwargs)  # type: ignore[no-any-return]


# ---- Lambda -----------------------------------------------------------------------------------------


def test_lambda_success_runs_real_handler_with_context(local_stack: Any) -> None:
    resp = invoke(local_stack, "fg-echo", {"n": 1}, LogType="Tail")
    assert resp["StatusCode"] == 200
    assert "FunctionError" not in resp
    body = json.loads(resp["Payload"].read())
    assert body["event"] == {"n": 1}
    assert body["function_name"] == "fg-echo"
    assert body["memory"] == "256"
    assert 0 < body["remaining_ms"] <= 30_000
    log = base64.b64decode(resp["LogResult"]).decode()
    assert 'echo got {"n": 1}' in log
    assert f"END RequestId: {body['request_id']}" in log
    assert "REPORT RequestId" in log


def test_lambda_handler_exception_is_unhandled_function_error(local_stack: Any) -> None:
    resp = invoke(local_stack, "fg-boom", {"why": "bad row"}, LogType="Tail")
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    err = json.loads(resp["Payload"].read())
    assert err["errorType"] == "ValueError"
    assert err["errorMessage"] == "boom: bad row"
    assert err["stackTrace"]
    assert "about to fail" in base64.b64decode(resp["LogResult"]).decode()
    # The runtime survives a handler exception, like a warm AWS sandbox.
    assert json.loads(invoke(local_stack, "fg-echo", {"again": True})["Payload"].read())["event"] == {"again": True}


def test_lambda_timeout_kills_and_restarts_runtime(local_stack: Any) -> None:
    started = time.monotonic()
    resp = invoke(local_stack, "fg-sleepy", {"seconds": 10}, LogType="Tail")
    elapsed = time.monotonic() - started
    assert resp["FunctionError"] == "Unhandled"
    err = json.loads(resp["Payload"].read())
    assert err["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 2." in err["errorMessage"]
    assert 1.9 < elapsed < 8
    assert "sleeping 10s" in base64.b64decode(resp["LogResult"]).decode()
    ok = invoke(local_stack, "fg-sleepy", {"seconds": 0.1})
    assert "FunctionError" not in ok
    assert json.loads(ok["Payload"].read())["slept"] == 0.1


def test_lambda_unknown_function_is_resource_not_found(local_stack: Any) -> None:
    client = aws("lambda", local_stack.lambda_url)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="does-not-exist", Payload=b"{}")


def test_lambda_event_and_dry_run_invocation_types(local_stack: Any) -> None:
    assert invoke(local_stack, "fg-echo", {}, InvocationType="DryRun")["StatusCode"] == 204
    assert invoke(local_stack, "fg-echo", {"async": 1}, InvocationType="Event")["StatusCode"] == 202


def test_lambda_handler_boto3_reaches_moto(local_stack: Any) -> None:
    key = "processed/test/handler-wrote.txt"
    resp = invoke(local_stack, "fg-s3-writer", {"bucket": local_stack.bucket, "key": key, "body": "from lambda"})
    assert "FunctionError" not in resp, resp["Payload"].read()
    s3 = aws("s3", local_stack.moto_url)
    assert s3.get_object(Bucket=local_stack.bucket, Key=key)["Body"].read() == b"from lambda"


# ---- S3 → SQS -----------------------------------------------------------------------------------------


def test_s3_put_under_raw_feed_notifies_feed_queue(local_stack: Any) -> None:
    s3 = aws("s3", local_stack.moto_url)
    sqs = aws("sqs", local_stack.moto_url)
    assert s3.get_bucket_versioning(Bucket=local_stack.bucket)["Status"] == "Enabled"
    key = "raw/trains/2026/01/02/move ments+1.csv"
    s3.put_object(Bucket=local_stack.bucket, Key=key, Body=b"a,b\n1,2\n")
    s3.put_object(Bucket=local_stack.bucket, Key="raw/events/other.json", Body=b"{}")
    queue = local_stack.queues["trains"]
    assert queue == f"{local_stack.env['FILEGATE_SQS_QUEUE_BASE_URL']}/filegate-arrivals-trains"
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=5)["Messages"]
    # The session's bucket is shared: tests of the trains/events DAGs must not see these probes.
    for probe in (key, "raw/events/other.json"):
        s3.delete_object(Bucket=local_stack.bucket, Key=probe)
    for message in messages:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    records = [r for m in messages for r in json.loads(m["Body"]).get("Records", [])]
    assert [urllib.parse.unquote_plus(r["s3"]["object"]["key"]) for r in records] == [key]
    assert records[0]["eventName"].startswith("ObjectCreated:")


# ---- stub API -------------------------------------------------------------------------------------------


@pytest.fixture()
def stub(local_stack: Any) -> str:
    requests.post(f"{local_stack.stub_url}/_stub/reset", timeout=5).raise_for_status()
    return str(local_stack.stub_url)


def test_stub_api_dedupes_by_idempotency_key(stub: str) -> None:
    headers = {"Idempotency-Key": "file-1-batch-0"}
    first = requests.post(f"{stub}/v1/records", json={"records": [1, 2, 3]}, headers=headers, timeout=5)
    again = requests.post(f"{stub}/v1/records", json={"records": [1, 2, 3]}, headers=headers, timeout=5)
    other = requests.post(f"{stub}/v1/records", json=[{"a": 1}, {"a": 2}], timeout=5)
    assert first.status_code == 201
    assert first.json() == {"accepted": 3, "idempotency_key": "file-1-batch-0"}
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert other.json()["accepted"] == 2
    stats = requests.get(f"{stub}/_stub/stats", timeout=5).json()
    assert stats["requests"] == 3
    assert stats["unique_keys"] == 1
    assert stats["records_received"] == 5
    assert stats["records_by_path"] == {"/v1/records": 5}
    recorded = requests.get(f"{stub}/_stub/requests", params={"path": "/v1/records"}, timeout=5).json()
    assert [r["idempotency_key"] for r in recorded] == ["file-1-batch-0", "file-1-batch-0", None]
    assert recorded[0]["body"] == {"records": [1, 2, 3]}


def test_stub_api_requests_are_appended_to_jsonl(local_stack: Any, stub: str) -> None:
    requests.post(f"{stub}/v1/jsonl", json={"x": 1}, headers={"Idempotency-Key": "jsonl-1"}, timeout=5)
    path = local_stack.stack.ctx.paths.stub_api / "requests.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[-1]["path"] == "/v1/jsonl" and lines[-1]["idempotency_key"] == "jsonl-1"


def test_stub_api_fail_and_retry_after_faults(stub: str) -> None:
    requests.post(f"{stub}/_stub/faults", json={"fail_next": 1, "fail_status": 503}, timeout=5)
    failed = requests.post(f"{stub}/v1/x", json=[1], headers={"Idempotency-Key": "k"}, timeout=5)
    assert failed.status_code == 503
    retried = requests.post(f"{stub}/v1/x", json=[1], headers={"Idempotency-Key": "k"}, timeout=5)
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers

    requests.post(f"{stub}/_stub/faults", json={"fail_next": 1, "fail_status": 429, "retry_after": 3}, timeout=5)
    limited = requests.post(f"{stub}/v1/x", json=[1], timeout=5)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert requests.get(f"{stub}/_stub/stats", timeout=5).json()["records_received"] == 1


def test_stub_api_latency_timeout_and_reset_faults(stub: str) -> None:
    requests.post(f"{stub}/_stub/faults", json={"latency_ms": 300}, timeout=5)
    started = time.monotonic()
    assert requests.post(f"{stub}/v1/slow", json=[1], timeout=5).status_code == 201
    assert time.monotonic() - started >= 0.3
    requests.post(f"{stub}/_stub/faults", json={"latency_ms": 0, "timeout_next": 1, "timeout_s": 3}, timeout=5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(f"{stub}/v1/slow", json=[1], timeout=0.5)
    requests.post(f"{stub}/_stub/faults", json={"reset_next": 1}, timeout=5)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(f"{stub}/v1/reset", json=[1], timeout=5)
    # Faults were consumed: the next request goes through.
    assert requests.post(f"{stub}/v1/reset", json=[1], timeout=5).status_code == 201
    outcomes = [r["outcome"] for r in requests.get(f"{stub}/_stub/requests", timeout=5).json()]
    assert outcomes == ["accepted", "timeout", "reset", "accepted"]


# ---- FTP / FTPS --------------------------------------------------------------------------------------------


def test_ftp_upload_list_mdtm_size_download(local_stack: Any) -> None:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", local_stack.ftp_port, timeout=10)
    ftp.login(local_stack.ftp_user, local_stack.ftp_password)
    ftp.mkd("incoming")
    ftp.storbinary("STOR incoming/a.csv", io.BytesIO(b"id,v\n1,2\n"))
    assert ftp.nlst("incoming") == ["a.csv"]
    assert dict(ftp.mlsd("incoming"))["a.csv"]["size"] == "9"
    assert ftp.sendcmd("MDTM incoming/a.csv").startswith("213 ")
    with pytest.raises(ftplib.error_perm, match="550"):
        ftp.sendcmd("MDTM incoming/missing.csv")
    ftp.voidcmd("TYPE I")
    assert ftp.size("incoming/a.csv") == 9
    out = io.BytesIO()
    ftp.retrbinary("RETR incoming/a.csv", out.write)
    assert out.getvalue() == b"id,v\n1,2\n"
    ftp.quit()
    assert (local_stack.ftp_root / "incoming" / "a.csv").read_bytes() == b"id,v\n1,2\n"


def test_ftps_with_generated_certificate(local_stack: Any) -> None:
    context = ssl.create_default_context(cafile=str(local_stack.ftp_cert))
    ftps = ftplib.FTP_TLS(context=context)
    ftps.connect("127.0.0.1", local_stack.ftp_port, timeout=10)
    ftps.login(local_stack.ftp_user, local_stack.ftp_password)  # AUTH TLS first, cert verified
    ftps.prot_p()
    ftps.storbinary("STOR secure.txt", io.BytesIO(b"secret"))
    out = io.BytesIO()
    ftps.retrbinary("RETR secure.txt", out.write)
    assert out.getvalue() == b"secret"
    assert "secure.txt" in ftps.nlst()
    ftps.quit()


def test_ftps_required_refuses_plain_login(tmp_path: Any) -> None:
    port, (low, high) = free_port(), free_port_range(3)
    env = {**os.environ, "FILEGATE_FTP_PASSWORD": "pw"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "filegate_stack.ftp_server",
            "--port",
            str(port),
            "--root",
            str(tmp_path / "ftp"),
            "--passive-ports",
            f"{low}-{high}",
            "--tls-required",
            "--tls-dir",
            str(tmp_path / "tls"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: port_open(port), timeout=20, what="ftps server")
        plain = ftplib.FTP()
        plain.connect("127.0.0.1", port, timeout=10)
        with pytest.raises(ftplib.error_perm, match="SSL/TLS required"):
            plain.login("filegate", "pw")
        plain.close()
        ftps = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=str(tmp_path / "tls" / "cert.pem")))
        ftps.connect("127.0.0.1", port, timeout=10)
        ftps.login("filegate", "pw")
        ftps.prot_p()
        # Not an empty listing: ftplib's TLS unwrap fails when the server sends no data at all.
        ftps.storbinary("STOR x.txt", io.BytesIO(b"x"))
        assert ftps.nlst() == ["x.txt"]
        ftps.quit()
    finally:
        proc.terminate()
        proc.wait(10)


# ---- Postgres ------------------------------------------------------------------------------------------------


def test_postgres_filegate_database_answers(local_stack: Any) -> None:
    with psycopg.connect(local_stack.db_url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("filegate",)
        conn.execute("CREATE TABLE IF NOT EXISTS stack_probe (id int primary key)")
        conn.execute("INSERT INTO stack_probe VALUES (1) ON CONFLICT DO NOTHING")
        assert conn.execute("SELECT count(*) FROM stack_probe").fetchone() == (1,)
    airflow_url = local_stack.env["FILEGATE_AIRFLOW_DB_URL"]
    assert airflow_url.startswith("postgresql+psycopg2://postgres@/airflow?host=")
    with psycopg.connect(airflow_url.replace("+psycopg2", "")) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("airflow",)


def test_stack_env_file_matches_env(local_stack: Any) -> None:
    text = local_stack.stack.ctx.paths.stack_env.read_text()
    for name in ("FILEGATE_DB_URL", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA", "AIRFLOW_CONN_AWS_DEFAULT"):
        assert f"export {name}='{local_stack.env[name]}'" in text
    conn = json.loads(local_stack.env["AIRFLOW_CONN_AWS_DEFAULT"])
    assert conn["extra"]["service_config"]["lambda"]["endpoint_url"] == local_stack.lambda_url
    status = local_stack.stack.status()
    assert all(status[name]["running"] for name in ("postgres", "moto", "lambda", "ftp", "sftp", "stub_api"))
    assert not status["airflow"]["running"]


# ---- lifecycle -------------------------------------------------------------------------------------------------


def test_stop_leaves_no_process_behind(tmp_path: Any) -> None:
    config = StackConfig(
        feeds=["trains"],
        extra_functions={"fg-echo": {"handler": "fg_test_handlers.echo", "timeout": 30}},
        startup_timeout=60,
    )
    stack = Stack(tmp_path / "home", Ports.free(), config)
    try:
        assert stack.start(["moto", "lambda", "stub_api"]) == {
            "moto": "started",
            "lambda": "started",
            "stub_api": "started",
        }
        assert stack.start(["stub_api"]) == {"stub_api": "already running"}
        # Warm a runtime so stop must also take down the awslambdaric child.
        client = aws("lambda", f"http://127.0.0.1:{stack.ports.lambda_}")
        assert "FunctionError" not in client.invoke(FunctionName="fg-echo", Payload=b"{}")
        pids = [pid for info in stack.status().values() for pid in info["pids"].values() if pid]
        endpoint = psutil.Process(stack.status()["lambda"]["pids"]["lambda"])
        runtime_pids = [child.pid for child in endpoint.children(recursive=True)]
        assert len(pids) == 3 and runtime_pids
    finally:
        # A fresh Stack object reads the pid files, as `filegate-stack stop` in another shell would.
        leftovers = Stack(tmp_path / "home", stack.ports, config).stop()
    assert leftovers == []
    for pid in pids + runtime_pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not any(info["running"] for info in stack.status().values())
    assert Stack(tmp_path / "home", stack.ports, config).stop() == []  # idempotent
