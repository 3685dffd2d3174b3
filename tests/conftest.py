"""Fixtures shared by every test: an environment with no real AWS in reach."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

_AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIDFAKE",
    "AWS_SECRET_ACCESS_KEY": "fake-secret",
    # botocore reads the region from AWS_DEFAULT_REGION, not AWS_REGION: set both.
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's AWS profile, endpoints or BEDROCK_GW_* settings."""
    for name in list(os.environ):
        if name.startswith(("BEDROCK_GW_", "AWS_")):
            monkeypatch.delenv(name)
    for name, value in _AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    yield
