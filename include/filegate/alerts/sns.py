"""Publishes an alert to an SNS topic with a boto3 SNS client (Airflow builds it from `aws_default`)."""

from __future__ import annotations

import logging
from typing import Any

from filegate.alerts.messages import Alert

log = logging.getLogger(__name__)


def publish(client: Any, topic_arn: str, alert: Alert) -> str:
    """Returns the SNS message id. Attributes let subscribers filter (`kind`, `feed`, `dag_id`)."""
    response = client.publish(
        TopicArn=topic_arn,
        Subject=alert.sns_subject,
        Message=alert.message,
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in alert.attributes.items() if v},
    )
    log.info("alert %s published to %s: %s", alert.kind, topic_arn, alert.sns_subject)
    return str(response["MessageId"])
