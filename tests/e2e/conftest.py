"""A real Open WebUI before the gateway before the fake Bedrock: three real processes.

Open WebUI lives in its own virtualenv (see .ci/openwebui.sh); BEDROCK_GW_E2E_OPENWEBUI names its
``open-webui`` executable. Without it every test here is skipped.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .harness import REPO_ROOT, Service, free_port, http_json, wait_until

OPENWEBUI_ENV = "BEDROCK_GW_E2E_OPENWEBUI"
GATEWAY_KEY = "e2e-gateway-key-" + secrets.token_hex(8)

# Seconds; Open WebUI takes about 11 s to start on a 2-core machine, more on a cold disk cache.
FAKE_START_TIMEOUT = 20.0
GATEWAY_START_TIMEOUT = 30.0
OPENWEBUI_START_TIMEOUT = 180.0

# Environment variables of the host that must not leak into the services under test.
_LEAKY_PREFIXES = ("AWS_", "BEDROCK_GW_", "OPENAI_", "OLLAMA_", "HF_", "PYTEST_", "PYTHONPATH")
_AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIDFAKE",
    "AWS_SECRET_ACCESS_KEY": "fake-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def openwebui_executable() -> str | None:
    return os.environ.get(OPENWEBUI_ENV) or None


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _project_env() -> dict[str, str]:
    """For the project's own processes: this checkout's code, whatever is installed."""
    env = _base_env()
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


@dataclass
class FakeBedrockProcess:
    service: Service
    url: str

    def enqueue(self, *behaviours: dict[str, Any]) -> None:
        http_json("POST", f"{self.url}/_fake/enqueue", list(behaviours))

    def requests(self) -> list[dict[str, Any]]:
        recorded: list[dict[str, Any]] = http_json("GET", f"{self.url}/_fake/requests")
        return recorded

    def runtime_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if r["operation"] in ("Converse", "ConverseStream")]

    def queued(self) -> int:
        state: dict[str, int] = http_json("GET", f"{self.url}/_fake/state")
        return state["queued"]

    def reset(self) -> None:
        http_json("POST", f"{self.url}/_fake/reset", {})


@dataclass
class GatewayProcess:
    service: Service
    url: str
    key: str


@dataclass
class OpenWebUI:
    service: Service
    url: str
    token: str

    def get(self, path: str, **kwargs: Any) -> Any:
        return http_json("GET", f"{self.url}{path}", token=self.token, **kwargs)

    def post(self, path: str, payload: Any, **kwargs: Any) -> Any:
        return http_json("POST", f"{self.url}{path}", payload, token=self.token, **kwargs)


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def fake_bedrock(e2e_dir: Path) -> Iterator[FakeBedrockProcess]:
    port_file = e2e_dir / "fake-bedrock.port"
    service = Service(
        "fake-bedrock",
        [
            *(sys.executable, "-m", "tests.fakes.bedrock"),
            *("--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file)),
        ],
        env=_project_env(),
        cwd=REPO_ROOT,
        log_path=e2e_dir / "fake-bedrock.log",
    )
    try:
        wait_until(service, "writing its port file", port_file.exists, FAKE_START_TIMEOUT)
        fake = FakeBedrockProcess(service, f"http://127.0.0.1:{int(port_file.read_text())}")
        yield fake
    finally:
        service.stop()


@pytest.fixture(scope="session")
def gateway(e2e_dir: Path, fake_bedrock: FakeBedrockProcess) -> Iterator[GatewayProcess]:
    port = free_port()
    config = e2e_dir / "gateway.toml"
    config.write_text(
        f"""
[server]
host = "127.0.0.1"
port = {port}
shutdown_timeout = 2.0

[aws]
region = "us-east-1"
runtime_endpoint = "{fake_bedrock.url}"
control_endpoint = "{fake_bedrock.url}"

[auth]
api_keys = ["{GATEWAY_KEY}"]

[logging]
level = "INFO"
"""
    )
    service = Service(
        "gateway",
        [sys.executable, "-m", "bedrock_gw", "--config", str(config)],
        env={**_project_env(), **_AWS_TEST_ENV},
        cwd=REPO_ROOT,
        log_path=e2e_dir / "gateway.log",
    )
    url = f"http://127.0.0.1:{port}"

    def lists_models() -> bool:
        listing = http_json("GET", f"{url}/v1/models", token=GATEWAY_KEY, timeout=5)
        return bool(listing["data"])

    try:
        wait_until(service, "listing models", lists_models, GATEWAY_START_TIMEOUT)
        yield GatewayProcess(service, url, GATEWAY_KEY)
    finally:
        service.stop()


@pytest.fixture(scope="session")
def openwebui(e2e_dir: Path, gateway: GatewayProcess) -> Iterator[OpenWebUI]:
    executable = openwebui_executable()
    assert executable is not None  # the tests are skipped otherwise
    home = e2e_dir / "openwebui-home"
    data = e2e_dir / "openwebui-data"
    home.mkdir()
    data.mkdir()
    port = free_port()
    env = {
        **_base_env(),
        "HOME": str(home),
        "DATA_DIR": str(data),
        "WEBUI_SECRET_KEY": secrets.token_hex(16),
        "USE_SLIM_DOCKER": "true",
        "WEBUI_AUTH": "false",
        "ENABLE_OLLAMA_API": "false",
        "ENABLE_OPENAI_API": "true",
        "OPENAI_API_BASE_URL": f"{gateway.url}/v1",
        "OPENAI_API_KEY": gateway.key,
        # Offline and quiet: no update check, no hub downloads, no telemetry.
        "OFFLINE_MODE": "true",
        "ENABLE_VERSION_UPDATE_CHECK": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "false",
        "DO_NOT_TRACK": "true",
        "SCARF_NO_ANALYTICS": "true",
        "ENABLE_OTEL": "false",
        "UVICORN_WORKERS": "1",
    }
    service = Service(
        "open-webui",
        [executable, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=home,  # it writes .webui_secret_key and the like into its working directory
        log_path=e2e_dir / "open-webui.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            service,
            "answering /health",
            lambda: http_json("GET", f"{url}/health", timeout=5)["status"] is True,
            OPENWEBUI_START_TIMEOUT,
            interval=0.5,
        )
        # With WEBUI_AUTH=false, an empty sign-in returns the (single) admin's token.
        session = http_json("POST", f"{url}/api/v1/auths/signin", {"email": "", "password": ""})
        assert session.get("role") == "admin", session
        yield OpenWebUI(service, url, session["token"])
    finally:
        service.stop()


@pytest.fixture
def fake(fake_bedrock: FakeBedrockProcess) -> FakeBedrockProcess:
    """The shared fake Bedrock with an empty queue and no recorded requests."""
    fake_bedrock.reset()
    return fake_bedrock


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def _logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a failed test, print the tail of every service's log (shown with the failure)."""
    yield
    if not request.node.stash.get(_CALL_FAILED, False):
        return
    for name in ("openwebui", "gateway", "fake_bedrock"):
        if name in request.fixturenames:
            print(request.getfixturevalue(name).service.log_tail())
