"""The API target built from the Airflow HTTP connection: auth kinds, overrides, and no secret in repr."""

from __future__ import annotations

import json

import pytest

from filegate.contracts.model import Contract
from filegate.orchestration.connections import api_target

CONTRACT = Contract.model_validate({"name": "things", "description": "d", "destinations": {
    "api": {"endpoint": "/v1/things", "concurrency": 3, "rate_limit_per_s": 7, "envelope": "records"}}})


def target_for(monkeypatch, **conn):
    monkeypatch.setenv("AIRFLOW_CONN_FILEGATE_API", json.dumps({"conn_type": "http", "host": "api.example.com",
                                                                "schema": "https", **conn}))
    return api_target(CONTRACT)


def test_bearer_when_only_a_password_is_set(monkeypatch) -> None:
    target = target_for(monkeypatch, password="tok-123456")
    assert target.url == "https://api.example.com/v1/things"
    assert target.headers == {"Authorization": "Bearer tok-123456"} and target.auth is None
    assert (target.concurrency, target.rate_limit_per_s, target.envelope) == (3, 7.0, "records")
    assert "tok-123456" not in repr(target)
    from airflow.sdk._shared.secrets_masker import redact

    assert "tok-123456" not in redact("sent Bearer tok-123456")  # registered with Airflow's log masker


def test_basic_api_key_and_overrides(monkeypatch) -> None:
    basic = target_for(monkeypatch, login="svc", password="pw-secret", port=8443)
    assert basic.auth == ("svc", "pw-secret") and basic.headers == {} and basic.url.endswith(":8443/v1/things")
    key = target_for(monkeypatch, password="k-abcdef", extra={"auth_type": "api_key", "header": "X-Token",
                                                             "concurrency": 9, "max_attempts": 2, "timeout": 5})
    assert key.headers == {"X-Token": "k-abcdef"}
    assert (key.concurrency, key.max_attempts, key.timeout_s) == (9, 2, 5.0)
    assert target_for(monkeypatch).headers == {}  # no credentials: auth none


def test_misconfigured_auth_is_refused(monkeypatch) -> None:
    with pytest.raises(RuntimeError, match="auth_type must be bearer, basic, api_key or none"):
        target_for(monkeypatch, password="x-12345", extra={"auth_type": "oauth"})
    with pytest.raises(RuntimeError, match="needs the secret in the password field"):
        target_for(monkeypatch, extra={"auth_type": "bearer"})
