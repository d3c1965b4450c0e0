"""Upload callbacks on the real stack: the upload route checks the URL against the feed's allow list, the
process_<feed> DAG calls back each finished upload once with a signed body, and the ledger (api_call) keeps a
retried, refused or repeated callback from being sent twice."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
import yaml
from airflow_runs import migrated_airflow_env, run_dag
from fastapi.testclient import TestClient
from psycopg.rows import dict_row
from webapp_env import airflow_app, token

from filegate.callbacks.dispatch import CALLBACK_BATCH, send_callbacks
from filegate.callbacks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from filegate.contracts import get_contract
from filegate.status.lifecycle import Status
from filegate.status.store import Actor, StatusStore
from filegate.storage import keys
from filegate.storage.metadata import upload_metadata

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
FEED = "cbtest"
SECRET = secrets.token_urlsafe(24)
ACTOR = Actor(dag_id=f"process_{FEED}", run_id="manual__callbacks", task_id="deliver_records", try_number=1)


class Receiver:
    """An uploader's endpoint: records every request; answers the queued status codes first, then 200."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                code = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", "/cb/elsewhere")
                self.end_headers()
                self.wfile.write(b'{"ok": true}' if code < 300 else b'{"error": "no"}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def to(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()


@pytest.fixture(scope="module")
def feeds_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("callback_feeds")
    contract = yaml.safe_load((ROOT / "include" / "feeds" / "uploads.yaml").read_text())
    contract.update(name=FEED, callbacks={"allowed_hosts": ["127.0.0.1"], "allow_http": True,
                                          "secret_conn_id": "filegate_callbacks_test"})
    contract["source"]["pattern"] = "*.csv"
    (folder / f"{FEED}.yaml").write_text(yaml.safe_dump(contract, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def store(local_stack) -> StatusStore:
    return StatusStore.connect(local_stack.db_url)


@pytest.fixture(scope="module")
def s3(local_stack):
    return boto3.client("s3", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def callback_rows(db_url: str, file_id: int) -> list[dict[str, Any]]:
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM api_call WHERE file_id = %s AND batch_no = %s ORDER BY id",
                            (file_id, CALLBACK_BATCH)).fetchall()


def finished_upload(store: StatusStore, name: str, url: str, target: Status = Status.PROCESSED,
                    outputs: dict[str, Any] | None = None) -> int:
    reg = store.register(feed=FEED, source="upload", raw_key=f"raw/{FEED}/2026/12/01/{name}", name=name,
                         sha256=secrets.token_hex(32), size_bytes=10, actor=ACTOR, params={"callback_url": url})
    store.queue([reg.file_id], ACTOR)
    store.claim(ACTOR, feed=FEED, file_ids=[reg.file_id])
    store.transition(reg.file_id, target, ACTOR, outputs=outputs or {},
                     error=None if target == Status.PROCESSED else "3 of 4 rows rejected (over the 50% limit)")
    return int(reg.file_id)


def history(store: StatusStore, file_id: int) -> list[str]:
    return [e["message"] or "" for e in store.reads.history(file_id)]


# -- through the DAG ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dag_runs(local_stack, feeds_dir, receiver, s3, tmp_path_factory) -> dict[str, Any]:
    env = {**migrated_airflow_env(local_stack.env, tmp_path_factory.mktemp("airflow_callbacks")),
           "FILEGATE_FEEDS_DIR": str(feeds_dir),
           "AIRFLOW_CONN_FILEGATE_CALLBACKS_TEST": json.dumps({"conn_type": "generic", "password": SECRET})}
    today = datetime.now(UTC).date()
    uploads = {"good.csv": b"id,amount\n1,2.5\n2,3.0\n", "binary.csv": bytes(range(256)) * 64}
    for name, body in uploads.items():
        s3.put_object(Bucket=local_stack.bucket, Key=keys.raw_key(FEED, today, name), Body=body,
                      Metadata=upload_metadata({"callback_url": f"{receiver.url}/cb/{name}"}, user="partner",
                                               original_name=name, note=None))
    first = run_dag(env, f"process_{FEED}")
    calls_after_first = len(receiver.requests)
    second = run_dag(env, f"process_{FEED}")
    return {"first": first, "second": second, "calls_after_first": calls_after_first}


def test_each_finished_upload_is_called_back_once_signed(dag_runs, receiver, local_stack) -> None:
    assert dag_runs["first"]["state"] == "success", dag_runs["first"]["output"][-3000:]
    good, binary = receiver.to("/cb/good.csv"), receiver.to("/cb/binary.csv")
    assert len(good) == 1 and len(binary) == 1
    for call in good + binary:
        headers = call["headers"]
        assert verify(SECRET.encode(), timestamp=headers[TIMESTAMP_HEADER], body=call["body"],
                      signature=headers[SIGNATURE_HEADER], now=time.time())
        assert not verify(b"another secret", timestamp=headers[TIMESTAMP_HEADER], body=call["body"],
                          signature=headers[SIGNATURE_HEADER], now=time.time())
        assert headers["Idempotency-Key"] == json.loads(call["body"])["idempotency_key"]
    processed = json.loads(good[0]["body"])
    assert processed["status"] == "processed" and processed["reason"] is None and processed["feed"] == FEED
    assert processed["outputs"]["parquet"] and processed["outputs"]["summary"].startswith(f"processed/{FEED}/")
    refused = json.loads(binary[0]["body"])
    assert refused["status"] in ("failed", "quarantined") and refused["reason"]
    # the second run finds nothing due: the ledger holds both callbacks as acknowledged
    assert dag_runs["second"]["state"] == "success"
    assert len(receiver.requests) == dag_runs["calls_after_first"] == 2


# -- the ledger's rules, called directly ----------------------------------------------------------------------

def send(store: StatusStore, feeds_dir: Path, **changes: Any) -> Any:
    contract = get_contract(FEED, feeds_dir)
    if changes:
        contract = contract.model_copy(update={"callbacks": contract.callbacks.model_copy(update=changes)})
    return send_callbacks(store, contract, ACTOR, secret=SECRET.encode(), sleep=lambda s: None)


def test_a_failing_receiver_is_retried_and_each_attempt_recorded(store, feeds_dir, receiver, local_stack) -> None:
    file_id = finished_upload(store, "flaky.csv", f"{receiver.url}/cb/flaky")
    receiver.answers[:] = [503, 503]

    report = send(store, feeds_dir)

    assert file_id in report.sent
    assert [r["status_code"] for r in callback_rows(local_stack.db_url, file_id)] == [503, 503, 200]
    assert len({r["headers"]["Idempotency-Key"] for r in receiver.to("/cb/flaky")}) == 1
    assert any("callback sent: processed" in line and "attempt 3" in line for line in history(store, file_id))
    assert file_id not in send(store, feeds_dir).sent and len(receiver.to("/cb/flaky")) == 3


def test_a_receiver_that_stays_down_is_due_again_next_run(store, feeds_dir, receiver, local_stack) -> None:
    file_id = finished_upload(store, "down.csv", f"{receiver.url}/cb/down")
    receiver.answers[:] = [503] * 3

    assert file_id in send(store, feeds_dir).failed
    assert any("the feed's next run tries again" in line for line in history(store, file_id))
    assert file_id in send(store, feeds_dir).sent  # the next run
    assert [r["status_code"] for r in callback_rows(local_stack.db_url, file_id)] == [503, 503, 503, 200]


def test_a_refusing_receiver_is_given_up_at_once(store, feeds_dir, receiver, local_stack) -> None:
    file_id = finished_upload(store, "refused.csv", f"{receiver.url}/cb/refused", target=Status.QUARANTINED)
    receiver.answers[:] = [400]

    assert file_id in send(store, feeds_dir).given_up
    assert file_id not in send(store, feeds_dir).given_up
    assert len(receiver.to("/cb/refused")) == 1
    assert any("callback given up after 1 attempt(s): HTTP 400" in line for line in history(store, file_id))
    body = json.loads(receiver.to("/cb/refused")[0]["body"])
    assert body["status"] == "quarantined" and "rows rejected" in body["reason"]


def test_a_redirect_is_not_followed_and_the_callback_is_given_up(store, feeds_dir, receiver, local_stack) -> None:
    file_id = finished_upload(store, "redirected.csv", f"{receiver.url}/cb/redirected")
    receiver.answers[:] = [307]

    assert file_id in send(store, feeds_dir).given_up
    assert len(receiver.to("/cb/redirected")) == 1 and not receiver.to("/cb/elsewhere")
    assert any("HTTP 307 (a redirect, not followed" in line for line in history(store, file_id))


def test_a_host_no_longer_allowed_is_never_called(store, feeds_dir, receiver) -> None:
    file_id = finished_upload(store, "moved.csv", f"{receiver.url}/cb/moved")

    report = send(store, feeds_dir, allowed_hosts=["partner.example.com"])

    assert file_id in report.refused and not receiver.to("/cb/moved")
    assert any("host '127.0.0.1' is not among feed cbtest's callbacks.allowed_hosts" in line
               for line in history(store, file_id))


def test_a_reprocessed_file_is_called_back_again_and_parts_are_listed(store, feeds_dir, receiver) -> None:
    parts = ["processed/cbtest/pdf/statement/part1.pdf", "processed/cbtest/pdf/statement/part2.pdf"]
    file_id = finished_upload(store, "again.csv", f"{receiver.url}/cb/again", outputs={"pdf": parts})
    send(store, feeds_dir)
    store.queue([file_id], ACTOR)  # reprocessing starts again from the raw copy
    store.claim(ACTOR, feed=FEED, file_ids=[file_id])
    store.transition(file_id, Status.PROCESSED, ACTOR, outputs={"pdf": parts})

    send(store, feeds_dir)

    calls = [json.loads(r["body"]) for r in receiver.to("/cb/again")]
    assert len(calls) == 2 and calls[0]["idempotency_key"] != calls[1]["idempotency_key"]
    assert all(c["parts"] == parts for c in calls)


# -- the upload route ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(local_stack, feeds_dir, tmp_path_factory) -> Iterator[TestClient]:
    with airflow_app(local_stack.env, tmp_path_factory.mktemp("airflow_callback_upload"),
                     FILEGATE_FEEDS_DIR=str(feeds_dir)) as app:
        test_client = TestClient(app)
        test_client.headers["Authorization"] = f"Bearer {token(test_client, 'admin')}"
        yield test_client


def upload(client: TestClient, metadata: dict[str, Any]) -> Any:
    return client.post(f"/filegate/api/feeds/{FEED}/files",
                       files={"metadata": (None, json.dumps(metadata), "application/json"),
                              "file": ("cb.csv", b"id\n1\n", "text/csv")})


def test_the_upload_keeps_an_allowed_callback_url(client, s3, local_stack) -> None:
    response = upload(client, {"callback_url": "http://127.0.0.1:8765/done", "params": {"batch": "7"}})

    assert response.status_code == 201, response.text
    assert response.json()["params"] == {"batch": "7", "callback_url": "http://127.0.0.1:8765/done"}
    head = s3.head_object(Bucket=local_stack.bucket, Key=response.json()["raw_key"])
    assert json.loads(head["Metadata"]["filegate-params"])["callback_url"] == "http://127.0.0.1:8765/done"


@pytest.mark.parametrize(("metadata", "says"), [
    ({"callback_url": "http://evil.example.com/x"}, "host 'evil.example.com' is not among feed cbtest's"),
    ({"callback_url": "ftp://127.0.0.1/x"}, "must use https or http"),
    ({"callback_url": "http://user:pw@127.0.0.1/x"}, "must not carry credentials"),
    ({"params": {"callback_url": "http://127.0.0.1/x"}}, "metadata.params.callback_url is reserved"),
])
def test_the_upload_refuses_a_callback_url_the_feed_does_not_allow(client, metadata, says) -> None:
    response = upload(client, metadata)
    assert response.status_code == 422 and says in response.json()["detail"]
