from __future__ import annotations

from datetime import date

import pytest

from filegate.storage import keys


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("orders.csv", "orders.csv"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("a\x00b\x1f\nc.csv", "abc.csv"),
        ("..", "unnamed"),
        ("   ", "unnamed"),
        ("weird name (1).csv", "weird_name_1_.csv"),
    ],
)
def test_safe_name(name: str, expected: str) -> None:
    assert keys.safe_name(name) == expected


def test_overlong_name_keeps_extension() -> None:
    name = keys.safe_name("x" * 5000 + ".csv")
    assert len(name) <= keys.MAX_NAME_LENGTH and name.endswith(".csv")


def test_raw_key_cannot_escape_prefix() -> None:
    key = keys.raw_key("orders", date(2026, 1, 2), "../../processed/x.csv")
    assert key == "raw/orders/2026/01/02/x.csv"
    assert keys.arrival_date_from_raw_key(key) == date(2026, 1, 2)
    assert keys.arrival_date_from_raw_key("raw/orders/2026/13/40/x.csv") is None


def test_derived_keys_are_deterministic() -> None:
    stem = keys.file_stem("orders.csv", "ab" * 32)
    assert stem == "orders-abababababab"
    assert keys.parquet_key("orders", "order_date", "2026-11-20", stem) == \
        "processed/orders/order_date=2026-11-20/orders-abababababab.parquet"
