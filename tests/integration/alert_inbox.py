"""An SQS queue subscribed to the alert topic on moto: tests read what SNS really delivered."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3


class AlertInbox:
    def __init__(self, moto_url: str, topic_arn: str) -> None:
        kwargs = {"endpoint_url": moto_url, "region_name": "us-east-1", "aws_access_key_id": "testing",
                  "aws_secret_access_key": "testing"}
        self.sqs = boto3.client("sqs", **kwargs)
        self.sns = boto3.client("sns", **kwargs)
        self.topic_arn = topic_arn
        self.queue_url = self.sqs.create_queue(QueueName=f"alerts-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        self.subscription = self.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)[
            "SubscriptionArn"]

    def drain(self, *, expect: int = 0, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """Every notification received so far (waiting up to `timeout_s` for at least `expect` of them)."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while True:
            reply = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in reply.get("Messages", []):
                envelope = json.loads(message["Body"])
                found.append({
                    "subject": envelope.get("Subject"),
                    "body": json.loads(envelope["Message"]),
                    "attributes": {k: v["Value"] for k, v in (envelope.get("MessageAttributes") or {}).items()},
                })
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            if not reply.get("Messages") and (len(found) >= expect or time.monotonic() > deadline):
                return found

    def close(self) -> None:
        self.sns.unsubscribe(SubscriptionArn=self.subscription)
        self.sqs.delete_queue(QueueUrl=self.queue_url)
