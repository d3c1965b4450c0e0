"""Alerts reach subscribers: published through SNS on moto and read back from a subscribed SQS queue."""

from __future__ import annotations

import boto3
import pytest
from alert_inbox import AlertInbox

from filegate.alerts import file_needs_attention, publish, task_log_url

pytestmark = pytest.mark.integration


@pytest.fixture
def inbox(local_stack):
    box = AlertInbox(local_stack.moto_url, local_stack.env["FILEGATE_ALERT_TOPIC_ARN"])
    yield box
    box.close()


def test_file_alert_arrives_with_feed_file_reason_and_log_link(local_stack, inbox) -> None:
    sns = boto3.client("sns", endpoint_url=local_stack.moto_url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    row = {"id": 41, "feed": "orders", "name": "orders_bad.csv", "raw_key": "raw/orders/2026/11/20/orders_bad.csv",
           "status": "quarantined", "error": "missing column(s) order_id; the file has: id, date"}
    log_url = task_log_url("http://airflow.local:8080", "process_orders", "manual__1", "process_files", 1)
    alert = file_needs_attention(row, dag_id="process_orders", run_id="manual__1", task_id="process_files",
                                 log_url=log_url)
    publish(sns, local_stack.env["FILEGATE_ALERT_TOPIC_ARN"], alert)
    [got] = inbox.drain(expect=1)
    assert got["subject"] == "Filegate: orders file orders_bad.csv quarantined"
    assert got["body"]["feed"] == "orders" and got["body"]["file"] == "orders_bad.csv"
    assert got["body"]["reason"].startswith("missing column(s) order_id")
    assert got["body"]["log_url"] == ("http://airflow.local:8080/dags/process_orders/runs/manual__1/tasks/"
                                      "process_files?try_number=1")
    assert got["attributes"] == {"kind": "file_quarantined", "feed": "orders", "dag_id": "process_orders"}
