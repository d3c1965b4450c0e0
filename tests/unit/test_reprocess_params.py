from __future__ import annotations

from datetime import date

import pytest

from filegate.pipeline.reprocess import ReprocessParamsError, parse_request
from filegate.status.lifecycle import Status

FEEDS = ["orders", "trains"]


def test_good_params() -> None:
    request = parse_request({"file_ids": [3, "4", 3], "feed": "orders", "arrived_from": "2026-11-01",
                             "arrived_to": "2026-11-30", "statuses": ["processed", "FAILED"], "dry_run": True}, FEEDS)
    assert request.file_ids == (3, 4)
    assert (request.arrived_from, request.arrived_to) == (date(2026, 11, 1), date(2026, 11, 30))
    assert request.statuses == (Status.PROCESSED, Status.FAILED) and request.dry_run


def test_defaults_take_failed_and_quarantined() -> None:
    assert parse_request({"feed": "orders"}, FEEDS).statuses == (Status.FAILED, Status.QUARANTINED)


def test_processing_files_can_be_asked_for_their_expired_claims_are_released() -> None:
    """A file stuck in `processing` after its run died is selectable; plan() takes it only once its lease ran out."""
    assert parse_request({"feed": "orders", "statuses": ["processing"]}, FEEDS).statuses == (Status.PROCESSING,)


@pytest.mark.parametrize(("params", "message"), [
    ({"feed": "ordres"}, "unknown feed 'ordres'; known feeds: orders, trains"),
    ({"feed": "orders", "arrived_from": "2026-13-01"}, "arrived_from: '2026-13-01' is not a date; use YYYY-MM-DD"),
    ({"arrived_from": "2026-11-30", "arrived_to": "2026-11-01"}, "arrived_from 2026-11-30 is after arrived_to"),
    ({"feed": "orders", "statuses": ["duplicate"]}, "duplicate files cannot be reprocessed"),
    ({"feed": "orders", "statuses": ["queued"]}, "it has not finished yet"),
    ({"feed": "orders", "statuses": ["done"]}, "'done' is not a status"),
    ({"file_ids": ["x"]}, "'x' is not a file id"),
    ({"file_ids": [0]}, "0 is not a file id"),
    ({}, "choose what to reprocess"),
    ({"statuses": ["failed"]}, "choose what to reprocess"),
])
def test_bad_params_say_what_to_change(params, message) -> None:
    with pytest.raises(ReprocessParamsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_request(params, FEEDS)
