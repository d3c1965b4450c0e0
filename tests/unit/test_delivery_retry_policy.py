"""The deliver task's retries outlast the destination's retry_for_minutes: the deliver step, not a retry count
running out first, decides when a file waiting for its API gives up."""

from __future__ import annotations

import pytest

from filegate.orchestration.policy import DEFAULT_RETRIES, delivery_retry_args, retries_to_outlast


def shortest_wait(retries: int, delay: float, longest: float) -> float:
    """Airflow's exponential backoff waits at least delay · 2^(n-1) before retry n, capped at max_retry_delay."""
    return sum(min(delay * 2 ** n, longest) for n in range(retries - 1))


@pytest.mark.parametrize(("minutes", "delay", "longest"), [(15, 30, 120), (5, 5, 15), (360, 30, 120), (0.5, 30, 120)])
def test_the_retries_cover_the_deadline(minutes: float, delay: float, longest: float) -> None:
    retries = retries_to_outlast(minutes * 60, delay, longest)
    assert shortest_wait(retries, delay, longest) >= minutes * 60
    assert retries >= DEFAULT_RETRIES


def test_default_deliver_task_waits_30_s_then_up_to_2_min(monkeypatch) -> None:
    monkeypatch.delenv("FILEGATE_DELIVERY_RETRY_DELAY_S", raising=False)
    monkeypatch.delenv("FILEGATE_DELIVERY_MAX_RETRY_DELAY_S", raising=False)
    args = delivery_retry_args(15)
    assert args["retries"] == 10 and args["retry_exponential_backoff"]
    assert (args["retry_delay"].total_seconds(), args["max_retry_delay"].total_seconds()) == (30, 120)
    monkeypatch.setenv("FILEGATE_DELIVERY_RETRY_DELAY_S", "5")
    monkeypatch.setenv("FILEGATE_DELIVERY_MAX_RETRY_DELAY_S", "15")
    assert delivery_retry_args(5)["max_retry_delay"].total_seconds() == 15
