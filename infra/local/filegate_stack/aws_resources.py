"""Create the AWS resources Filegate expects (bucket, per-feed arrival queues, alert topic) on moto."""

from __future__ import annotations

import json
import logging
from typing import Any

import boto3

logger = logging.getLogger(__name__)

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
ALERT_TOPIC = "filegate-alerts"


def queue_name(feed: str) -> str:
    return f"filegate-arrivals-{feed}"


def client(service: str, endpoint_url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _drain_test_events(sqs: Any, queue_url: str) -> int:
    """S3 posts an s3:TestEvent when a notification is configured; consumers should not see it."""
    drained = 0
    while True:
        resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = resp.get("Messages", [])
        if not messages:
            return drained
        for message in messages:
            body = json.loads(message["Body"])
            if body.get("Event") != "s3:TestEvent":
                # Not ours to consume: make it visible again for the real consumer.
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
                return drained
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            drained += 1


def bootstrap(endpoint_url: str, bucket: str, feeds: list[str]) -> dict[str, Any]:
    """Idempotently create bucket (versioned), queues + S3 notifications per feed, SNS topic.

    Returns {"bucket", "queues": {feed: url}, "queue_base_url", "alert_topic_arn"}.
    """
    s3 = client("s3", endpoint_url)
    sqs = client("sqs", endpoint_url)
    sns = client("sns", endpoint_url)

    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    queues: dict[str, str] = {}
    notifications = []
    for feed in feeds:
        url = sqs.create_queue(QueueName=queue_name(feed))["QueueUrl"]
        queues[feed] = url
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        notifications.append(
            {
                "Id": f"arrivals-{feed}",
                "QueueArn": arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": f"raw/{feed}/"}]}},
            }
        )
    if notifications:
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": notifications}
        )
        for url in queues.values():
            _drain_test_events(sqs, url)

    topic_arn = sns.create_topic(Name=ALERT_TOPIC)["TopicArn"]
    logger.info("bootstrapped bucket %s, %d feed queue(s), topic %s", bucket, len(queues), topic_arn)
    return {
        "bucket": bucket,
        "queues": queues,
        "queue_base_url": f"{endpoint_url.rstrip('/')}/{ACCOUNT_ID}",
        "alert_topic_arn": topic_arn,
    }
