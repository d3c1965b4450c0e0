"""Posting records to external HTTP APIs: batched, idempotent, retried, every attempt recorded."""

from __future__ import annotations

from filegate.delivery.client import ApiTarget, DeliveryError, DeliveryResult, deliver_records
from filegate.delivery.payload import iter_payload_batches

__all__ = ["ApiTarget", "DeliveryError", "DeliveryResult", "deliver_records", "iter_payload_batches"]
