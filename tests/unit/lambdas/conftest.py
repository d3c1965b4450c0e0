"""Handlers called directly with their event fixtures, against moto's S3 in this process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from lambda_support import BUCKET


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[Any]:
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("FILEGATE_LAMBDA_TMP_DIR", str(tmp_path / "lambda-tmp"))
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client
