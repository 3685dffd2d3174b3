"""Bedrock endpoints: config keys, then AWS's standard variables, then AWS's hosts."""

from __future__ import annotations

import pytest

from bedrock_gw.bedrock.client import BedrockEndpoints


@pytest.mark.parametrize(
    ("environ", "overrides", "expected"),
    [
        pytest.param(
            {},
            (None, None),
            (
                "https://bedrock-runtime.eu-west-1.amazonaws.com",
                "https://bedrock.eu-west-1.amazonaws.com",
            ),
            id="aws-defaults",
        ),
        pytest.param(
            {"AWS_ENDPOINT_URL": "http://shared:1"},
            (None, None),
            ("http://shared:1", "http://shared:1"),
            id="shared-variable",
        ),
        pytest.param(
            {
                "AWS_ENDPOINT_URL": "http://shared:1",
                "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "http://runtime:2/",
                "AWS_ENDPOINT_URL_BEDROCK": "http://control:3",
            },
            (None, None),
            ("http://runtime:2", "http://control:3"),
            id="service-variables-win",
        ),
        pytest.param(
            {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "http://runtime:2"},
            ("http://cfg-runtime:4", "http://cfg-control:5"),
            ("http://cfg-runtime:4", "http://cfg-control:5"),
            id="config-wins",
        ),
    ],
)
def test_resolve(
    environ: dict[str, str], overrides: tuple[str | None, str | None], expected: tuple[str, str]
) -> None:
    """Each source of an endpoint takes precedence in the documented order."""
    endpoints = BedrockEndpoints.resolve("eu-west-1", environ, *overrides)
    assert (endpoints.runtime, endpoints.control) == expected
