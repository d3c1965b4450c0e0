"""Posting records to external HTTP APIs: batched, idempotent, retried, rate-limited, every attempt recorded."""

from __future__ import annotations

from filegate.delivery.client import ApiTarget, DeliveryError, DeliveryResult, deliver_records, idempotency_key
from filegate.delivery.payload import PayloadError, iter_payload_batches
from filegate.delivery.template import PayloadTemplate, TemplateError

__all__ = ["ApiTarget", "DeliveryError", "DeliveryResult", "PayloadError", "PayloadTemplate", "TemplateError",
           "deliver_records", "idempotency_key", "iter_payload_batches"]
