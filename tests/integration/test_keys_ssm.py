"""API keys from SSM -> Secrets Manager, against moto's server over real HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import aiohttp
import boto3
import openai
import pytest

from bedrock_gw.auth import KeyRing
from bedrock_gw.aws.credentials import AwsCredentials, CredentialsUnavailable
from bedrock_gw.aws.json_rpc import AwsJsonClient
from bedrock_gw.keys.sources import KeySourceError, SsmSecretKeys
from bedrock_gw.keys.store import KeyStore
from bedrock_gw.web.state import READINESS
from tests.integration.conftest import GatewayFactory
from tests.stubs import eventually

REGION = "us-east-1"
TEST_CREDENTIALS = AwsCredentials("AKIDFAKE", "fake-secret")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """moto's server in its own process: in a thread it would share the GIL with the event
    loop under test, and its first requests (which import moto's backends) stall the loop."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            _moto_api(url, "reset")
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("moto's server did not start") from None
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


def _moto_api(url: str, path: str, body: bytes = b"") -> None:
    request = urllib.request.Request(
        f"{url}/moto-api/{path}", data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request) as response:
        response.read()


@pytest.fixture(autouse=True)
def _moto_env(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts on an empty moto, reached through the standard endpoint variables."""
    _moto_api(moto_url, "reset")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_url)


def _client_args(url: str) -> dict[str, str]:
    # Explicit: this module-wide fixture is built before the per-test environment is.
    return {
        "endpoint_url": url,
        "region_name": REGION,
        "aws_access_key_id": "AKIDFAKE",
        "aws_secret_access_key": "fake-secret",
    }


class Aws:
    """boto3 against moto, for arranging parameters and secrets."""

    def __init__(self, url: str) -> None:
        self.ssm = boto3.client("ssm", **_client_args(url))
        self.secrets = boto3.client("secretsmanager", **_client_args(url))
        self.iam = boto3.client("iam", **_client_args(url))
        # botocore loads models and endpoint rules on first use; do that here, outside the
        # event loop, so the tests' own quick boto3 calls do not stall it.
        self.ssm.describe_parameters()
        self.secrets.list_secrets()
        self.iam.list_users()

    def secret_behind_parameter(
        self, secret_string: str, *, parameter_type: str = "String"
    ) -> tuple[str, str]:
        """A new secret and a parameter holding its ARN; returns (parameter name, ARN)."""
        name = f"bedrock-gw/api-keys-{uuid.uuid4().hex[:8]}"
        arn = self.secrets.create_secret(Name=name, SecretString=secret_string)["ARN"]
        parameter = f"/bedrock-gw/{uuid.uuid4().hex[:8]}/api-key-secret-arn"
        self.ssm.put_parameter(Name=parameter, Value=arn, Type=parameter_type)
        return parameter, arn


@pytest.fixture(scope="module")
def aws(moto_url: str) -> Aws:
    return Aws(moto_url)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _source(
    http: aiohttp.ClientSession,
    parameter: str,
    *,
    grace: float = 3600.0,
    clock: Callable[[], float] = time.time,
    credentials: AwsCredentials = TEST_CREDENTIALS,
) -> SsmSecretKeys:
    client = AwsJsonClient(http, credentials=lambda: credentials, environ=os.environ, timeout=5)
    return SsmSecretKeys(client, parameter=parameter, region=REGION, grace=grace, clock=clock)


def _named(ring: KeyRing, key: str) -> str | None:
    found = ring.authenticate(key)
    return found.name if found else None


NAMED = json.dumps({"api_keys": [{"name": "openwebui", "key": "sk-owui-1"}]})


@pytest.mark.parametrize(
    ("secret_string", "expected"),
    [
        pytest.param("sk-plain-1", {"sk-plain-1": "secret"}, id="plain"),
        pytest.param('{"api_key": "sk-1"}', {"sk-1": "secret"}, id="api-key"),
        pytest.param(
            '{"api_keys": ["sk-1", "sk-2"]}', {"sk-1": "secret-1", "sk-2": "secret-2"}, id="list"
        ),
        pytest.param(
            json.dumps(
                {"api_keys": [{"name": "openwebui", "key": "k-a"}, {"name": "phone", "key": "k-b"}]}
            ),
            {"k-a": "openwebui", "k-b": "phone"},
            id="named",
        ),
    ],
)
async def test_every_secret_form(
    aws: Aws, http: aiohttp.ClientSession, secret_string: str, expected: dict[str, str]
) -> None:
    """Each SecretString form behind a String parameter yields its named keys."""
    parameter, _ = aws.secret_behind_parameter(secret_string)
    material = await _source(http, parameter).load()
    ring = KeyRing(material.keys)
    assert {key: _named(ring, key) for key in expected} == expected
    assert len(ring) == len(expected)
    assert material.previous == ()
    assert material.version is not None


async def test_secure_string_parameter(aws: Aws, http: aiohttp.ClientSession) -> None:
    """A SecureString parameter is decrypted (WithDecryption) to the secret's ARN."""
    parameter, _ = aws.secret_behind_parameter(NAMED, parameter_type="SecureString")
    material = await _source(http, parameter).load()
    assert _named(KeyRing(material.keys), "sk-owui-1") == "openwebui"


async def test_missing_parameter(http: aiohttp.ClientSession) -> None:
    """A missing parameter names the call, the structured code and a hint."""
    with pytest.raises(KeySourceError) as caught:
        await _source(http, "/bedrock-gw/nope").load()
    message = str(caught.value)
    assert message.startswith("ssm:GetParameter /bedrock-gw/nope in us-east-1 failed: ")
    assert "ParameterNotFound (HTTP 400)" in message
    assert "[no such parameter in that region]" in message


async def test_missing_secret(aws: Aws, http: aiohttp.ClientSession) -> None:
    """A parameter naming a deleted secret reports GetSecretValue's ResourceNotFoundException."""
    parameter, arn = aws.secret_behind_parameter(NAMED)
    aws.secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    with pytest.raises(KeySourceError) as caught:
        await _source(http, parameter).load()
    message = str(caught.value)
    assert f"secretsmanager:GetSecretValue {arn} (AWSCURRENT) failed" in message
    assert "ResourceNotFoundException" in message


async def test_secret_that_is_not_keys(aws: Aws, http: aiohttp.ClientSession) -> None:
    """A secret in another shape is refused with the reason, not its content."""
    parameter, _ = aws.secret_behind_parameter('{"password": "hunter2"}')
    with pytest.raises(KeySourceError, match="no api_key and no api_keys") as caught:
        await _source(http, parameter).load()
    assert "hunter2" not in str(caught.value)


async def test_rotation_and_grace_period(aws: Aws, http: aiohttp.ClientSession) -> None:
    """After put_secret_value both versions work until the grace ends, then only the new one."""
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    parameter, arn = aws.secret_behind_parameter(NAMED)
    rings: list[KeyRing] = []
    store = KeyStore(
        [_source(http, parameter, grace=600, clock=clock)],
        refresh_interval=3600,
        on_change=rings.append,
        clock=clock,
    )
    assert await store.refresh()
    assert _named(rings[-1], "sk-owui-1") == "openwebui"

    aws.secrets.put_secret_value(
        SecretId=arn, SecretString=json.dumps({"api_keys": [{"name": "openwebui", "key": "sk-2"}]})
    )
    assert await store.refresh()
    assert _named(rings[-1], "sk-2") == "openwebui"
    assert _named(rings[-1], "sk-owui-1") == "openwebui@previous"

    # A restarted daemon within the grace period still honours the previous version.
    fresh = await _source(http, parameter, grace=600, clock=clock).load()
    assert _named(KeyRing(fresh.previous), "sk-owui-1") == "openwebui@previous"

    offset[0] = 601.0
    assert await store.refresh()
    assert _named(rings[-1], "sk-owui-1") is None
    assert _named(rings[-1], "sk-2") == "openwebui"


async def test_no_grace_period(aws: Aws, http: aiohttp.ClientSession) -> None:
    """With rotation_grace_period = 0 the previous version stops working at once."""
    parameter, arn = aws.secret_behind_parameter(NAMED)
    aws.secrets.put_secret_value(SecretId=arn, SecretString="sk-2")
    material = await _source(http, parameter, grace=0).load()
    assert material.previous == ()
    assert _named(KeyRing(material.keys), "sk-2") == "secret"


@pytest.mark.parametrize(
    ("allowed", "failing_call"),
    [
        pytest.param([], "ssm:GetParameter", id="no-ssm"),
        pytest.param(["ssm:GetParameter"], "secretsmanager:GetSecretValue", id="no-secret"),
    ],
)
async def test_access_denied(
    aws: Aws,
    moto_url: str,
    http: aiohttp.ClientSession,
    allowed: list[str],
    failing_call: str,
) -> None:
    """Moto enforcing IAM: the denied call is named, with AWS's code and the policy hint."""
    parameter, _ = aws.secret_behind_parameter(NAMED)
    aws.iam.create_user(UserName="bedrock-gw")
    key = aws.iam.create_access_key(UserName="bedrock-gw")["AccessKey"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["sts:GetCallerIdentity", *allowed], "Resource": "*"}
        ],
    }
    aws.iam.put_user_policy(
        UserName="bedrock-gw", PolicyName="gateway", PolicyDocument=json.dumps(policy)
    )
    user = AwsCredentials(key["AccessKeyId"], key["SecretAccessKey"])
    _moto_api(moto_url, "reset-auth", b"0")
    try:
        with pytest.raises(KeySourceError) as caught:
            await _source(http, parameter, credentials=user).load()
        # A wrong secret fails the signature check: moto verifies what we sign.
        wrong = AwsCredentials(key["AccessKeyId"], "not-the-secret")
        with pytest.raises(KeySourceError) as mismatch:
            await _source(http, parameter, credentials=wrong).load()
        assert "SignatureDoesNotMatch (HTTP 403)" in str(mismatch.value)
    finally:
        _moto_api(moto_url, "reset-auth", b"inf")
    message = str(caught.value)
    assert message.startswith(f"{failing_call} ")
    assert "AccessDenied" in message and "HTTP 403" in message
    assert "[the gateway's IAM identity may not make this call]" in message


async def test_first_credentials_are_awaited(aws: Aws, http: aiohttp.ClientSession) -> None:
    """A call made before the first credentials arrive waits for them instead of failing."""
    parameter, _ = aws.secret_behind_parameter(NAMED)
    loaded = asyncio.Event()

    def credentials() -> AwsCredentials:
        if not loaded.is_set():
            raise CredentialsUnavailable("AWS credentials are not loaded yet")
        return TEST_CREDENTIALS

    client = AwsJsonClient(
        http,
        credentials=credentials,
        credentials_loaded=loaded.wait,
        environ=os.environ,
        timeout=5,
    )
    source = SsmSecretKeys(client, parameter=parameter, region=REGION, grace=0, clock=time.time)
    asyncio.get_running_loop().call_later(0.1, loaded.set)
    material = await source.load()
    assert _named(KeyRing(material.keys), "sk-owui-1") == "openwebui"


async def test_no_credentials_is_reported(http: aiohttp.ClientSession) -> None:
    """Without credentials after the wait, the call fails saying so."""

    def credentials() -> AwsCredentials:
        raise CredentialsUnavailable("AWS credentials are not loaded yet")

    never = asyncio.Event()
    client = AwsJsonClient(
        http,
        credentials=credentials,
        credentials_loaded=never.wait,
        environ=os.environ,
        timeout=0.1,
    )
    source = SsmSecretKeys(client, parameter="/p", region=REGION, grace=0, clock=time.time)
    with pytest.raises(KeySourceError, match="no usable AWS credentials"):
        await source.load()


async def test_unreachable_aws(
    http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A closed endpoint reports which call could not reach which URL."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:9")
    with pytest.raises(
        KeySourceError,
        match=r"ssm:GetParameter /p in us-east-1 failed: cannot reach http://127\.0\.0\.1:9/",
    ):
        await _source(http, "/p").load()


# ------------------------------------------------------------------ the gateway itself


async def _models(gateway_url: str, key: str) -> int:
    async with openai.AsyncOpenAI(
        base_url=f"{gateway_url}/v1", api_key=key, max_retries=0, timeout=10
    ) as sdk:
        try:
            await sdk.models.list()
        except openai.AuthenticationError:
            return 401
    return 200


async def test_gateway_uses_secret_keys_and_picks_up_rotation(
    aws: Aws, start_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Keys from the secret authenticate; a rotation applies without restart, old key in grace."""
    parameter, arn = aws.secret_behind_parameter(NAMED)
    caplog.set_level(logging.INFO)
    gateway = await start_gateway(
        auth={"api_keys": [], "ssm_parameter": parameter, "refresh_interval": 0.1}
    )
    await gateway.app[READINESS].wait_all()
    assert await _models(gateway.url, "sk-owui-1") == 200
    assert await _models(gateway.url, "sk-not-a-key") == 401

    aws.secrets.put_secret_value(
        SecretId=arn, SecretString=json.dumps({"api_keys": [{"name": "phone", "key": "sk-2"}]})
    )
    await eventually(lambda: "now serves version" in caplog.text)
    assert await _models(gateway.url, "sk-2") == 200
    assert await _models(gateway.url, "sk-owui-1") == 200  # previous version, within grace
    log = caplog.text
    assert "key=phone" in log and "key=openwebui@previous" in log
    assert "sk-2" not in log and "sk-owui-1" not in log


async def test_gateway_waits_for_keys_before_ready(
    aws: Aws, start_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """With the parameter missing the daemon is not ready, says why, and retries until it is."""
    parameter = f"/bedrock-gw/{uuid.uuid4().hex[:8]}/late"
    gateway = await start_gateway(auth={"api_keys": [], "ssm_parameter": parameter})
    waiting: list[str] = []
    ready = gateway.app[READINESS].wait_all(waiting.append)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ready, 0.3)
    assert "resolving API keys from SSM" in waiting
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(f"ssm:GetParameter {parameter}" in e and "ParameterNotFound" in e for e in errors)

    name = f"late-{uuid.uuid4().hex[:8]}"
    arn = aws.secrets.create_secret(Name=name, SecretString=NAMED)["ARN"]
    aws.ssm.put_parameter(Name=parameter, Value=arn, Type="String")
    await asyncio.wait_for(gateway.app[READINESS].wait_all(), 5)
    assert await _models(gateway.url, "sk-owui-1") == 200
