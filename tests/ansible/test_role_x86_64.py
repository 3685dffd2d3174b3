"""ansible/site.yml on a real x86_64 Debian 12 host with systemd, reached over ssh.

The tests run in order against one host, each starting from the state the previous one left:
converge, converge again (nothing changes), change the config (reload), change a secret
(restart), a config the daemon rejects, Roles Anywhere with a given helper, then removal.
The daemon talks to the fake Bedrock on this side of the veth pair, which checks SigV4
signatures of AKIDFAKE / fake-secret.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ansible.hosts import Host, Run, booted, fake_bedrock, http, wait_until, wheelhouse

pytestmark = pytest.mark.ansible

KEY = "ansible-test-key-0123456789abcdef"
HASHED_KEY = "ansible-hashed-key-0123456789abcdef"
NEW_KEY = "ansible-new-key-0123456789abcdef"
SECRET = "fake-secret"
TRUST_ANCHOR = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/ta-test"
PROFILE = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/profile-test"
ROLE = "arn:aws:iam::123456789012:role/bedrock-gw"

# Stands in for AWS's aws_signing_helper: it checks that the service can read the private key
# systemd handed over, then prints the credentials the fake Bedrock accepts.
SIGNING_HELPER = """\
#!/usr/bin/python3
import json, sys
args = sys.argv[1:]
key = args[args.index("--private-key") + 1]
with open(key) as fh:
    if "PRIVATE KEY" not in fh.read():
        sys.exit("not a private key: " + key)
print(json.dumps({"Version": 1, "AccessKeyId": "AKIDFAKE", "SecretAccessKey": "fake-secret"}))
"""


class State:
    """What the tests pass along: the host, its base variables, the last run."""

    host: Host
    variables: dict[str, Any]
    last: Run


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[State]:
    """A booted Debian host, the fake Bedrock, and the variables of a static-key install."""
    workdir = tmp_path_factory.mktemp("ansible-x86_64")
    wheels = wheelhouse("x86_64")
    with booted("amd64", workdir) as host, fake_bedrock(host.machine.host_ip, workdir) as fake:
        state = State()
        state.host = host
        state.variables = {
            "bedrock_gw_wheelhouse": str(wheels),
            "bedrock_gw_listen_host": "0.0.0.0",
            "bedrock_gw_aws_runtime_endpoint": fake,
            "bedrock_gw_aws_control_endpoint": fake,
            "bedrock_gw_aws_credentials": "static",
            "bedrock_gw_aws_access_key_id": "AKIDFAKE",
            "bedrock_gw_aws_secret_access_key": SECRET,
            "bedrock_gw_api_keys": [
                {"name": "ci", "key": KEY},
                {"name": "hashed", "sha256": hashlib.sha256(HASHED_KEY.encode()).hexdigest()},
            ],
        }
        yield state
        print(host.journal()[-20000:])  # shown by pytest when a test failed


def play(state: State, **overrides: Any) -> Run:
    state.last = state.host.play({**state.variables, **overrides})
    return state.last


def model_ids(host: Host, key: str = KEY) -> list[str]:
    status, body = http(f"{host.base}/v1/models", key)
    assert status == 200, status
    return [model["id"] for model in body["data"]]


def test_first_run_converges_and_serves(state: State) -> None:
    """The first run installs everything; the service is active, answers /health, and serves
    /v1/models through the fake Bedrock with each configured key, and only with those."""
    run = play(state)
    assert run.returncode == 0, run.output[-5000:]
    assert run.recap["failed"] == 0 and run.recap["changed"] > 0
    host = state.host
    assert host.show("ActiveState", "SubState") == {"ActiveState": "active", "SubState": "running"}
    assert host.machine.run("systemctl", "is-enabled", "bedrock-gw").stdout.strip() == "enabled"
    assert http(f"{host.base}/health")[0] == 200
    assert "anthropic.claude-3-haiku-20240307-v1:0" in model_ids(host)
    assert model_ids(host, HASHED_KEY)
    assert http(f"{host.base}/v1/models", "not-a-key")[0] == 401


def test_secrets_are_root_only_and_never_shown(state: State) -> None:
    """Keys and the AWS secret sit in root-only files handed over with LoadCredential=; the
    world-readable config and the play's output hold none of them."""
    host = state.host
    assert host.stat("/etc/bedrock-gw/api-keys") == "600 root:root"
    assert host.stat("/etc/bedrock-gw/credentials") == "700 root:root"
    assert host.stat("/etc/bedrock-gw/credentials/aws-secret-access-key") == "600 root:root"
    assert host.stat("/etc/bedrock-gw/environment") == "600 root:root"
    assert host.stat("/etc/bedrock-gw/config.toml") == "644 root:root"
    config = host.machine.run("cat", "/etc/bedrock-gw/config.toml").stdout
    assert "Ansible managed" in config
    for secret in (SECRET, KEY, HASHED_KEY):
        assert secret not in config
        assert secret not in state.last.output
    handed_over = host.machine.run("ls", "/run/credentials/bedrock-gw.service").stdout.split()
    assert handed_over == ["api-keys", "aws-access-key-id", "aws-secret-access-key"]
    # The unit's Documentation= is there to read.
    assert host.exists("/opt/bedrock-gw/README.md")


def test_second_run_changes_nothing(state: State) -> None:
    """Run again with the same variables: every task reports ok, nothing restarts."""
    pid = state.host.show("MainPID")["MainPID"]
    run = play(state)
    assert run.returncode == 0, run.output[-5000:]
    assert run.recap["changed"] == 0, run.changed_tasks()
    assert state.host.show("MainPID")["MainPID"] == pid


def test_config_change_reloads_without_restart(state: State) -> None:
    """A changed model filter rewrites config.toml and reloads the service: same process, the
    journal shows the reload, and the new filter applies."""
    host = state.host
    before = host.show("MainPID", "NRestarts")
    run = play(state, bedrock_gw_models_deny=["*haiku*"])
    assert run.returncode == 0, run.output[-5000:]
    assert run.handlers() == ["Reload bedrock-gw"]
    assert host.show("MainPID", "NRestarts") == before
    assert "configuration reloaded from /etc/bedrock-gw/config.toml" in host.journal()
    wait_until(lambda: not any("haiku" in m for m in model_ids(host)), "the filter applies")
    state.variables["bedrock_gw_models_deny"] = ["*haiku*"]


def test_new_api_key_restarts(state: State) -> None:
    """A new API key changes a credential file, which systemd copies only at start: the
    service restarts (new process) and accepts the key."""
    host = state.host
    before = host.show("MainPID")["MainPID"]
    keys = [*state.variables["bedrock_gw_api_keys"], {"name": "new", "key": NEW_KEY}]
    run = play(state, bedrock_gw_api_keys=keys)
    assert run.returncode == 0, run.output[-5000:]
    assert "Restart bedrock-gw" in run.handlers() and "Reload bedrock-gw" not in run.handlers()
    assert host.show("MainPID")["MainPID"] != before
    assert model_ids(host, NEW_KEY)
    assert NEW_KEY not in run.output
    state.variables["bedrock_gw_api_keys"] = keys


def test_invalid_config_is_refused(state: State) -> None:
    """A setting the daemon does not know fails the play at `bedrock-gw check-config`, and the
    running service keeps its last good configuration."""
    host = state.host
    before = host.show("MainPID")["MainPID"]
    run = play(state, bedrock_gw_config_extra={"chat": {"no_such_setting": 1}})
    assert run.returncode != 0
    assert "chat.no_such_setting: unknown key" in run.output
    assert "no_such_setting" not in host.machine.run("cat", "/etc/bedrock-gw/config.toml").stdout
    assert host.show("MainPID", "ActiveState") == {"MainPID": before, "ActiveState": "active"}


def test_roles_anywhere_with_a_given_helper(state: State, tmp_path: Path) -> None:
    """Roles Anywhere with aws_signing_helper given as a controller file: the helper, the
    certificate and the key land with strict modes, the key reaches the service through
    LoadCredential=, and requests are signed with what the helper returns."""
    host = state.host
    key, certificate = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", "/CN=bedrock-gw", "-days", "2", "-keyout", str(key),
         "-out", str(certificate)],
        check=True, capture_output=True,
    )  # fmt: skip
    helper = tmp_path / "aws_signing_helper"
    helper.write_text(SIGNING_HELPER)
    run = play(
        state,
        bedrock_gw_aws_credentials="roles-anywhere",
        bedrock_gw_signing_helper_src=str(helper),
        bedrock_gw_roles_anywhere_trust_anchor_arn=TRUST_ANCHOR,
        bedrock_gw_roles_anywhere_profile_arn=PROFILE,
        bedrock_gw_roles_anywhere_role_arn=ROLE,
        bedrock_gw_roles_anywhere_certificate=certificate.read_text(),
        bedrock_gw_roles_anywhere_private_key=key.read_text(),
    )
    assert run.returncode == 0, run.output[-5000:]
    assert "PRIVATE KEY" not in run.output
    assert host.stat("/opt/bedrock-gw/bin/aws_signing_helper") == "755 root:root"
    assert host.stat("/etc/bedrock-gw/roles-anywhere") == "755 root:root"
    assert host.stat("/etc/bedrock-gw/roles-anywhere/private-key.pem") == "600 root:root"
    assert host.stat("/etc/bedrock-gw/roles-anywhere/certificate.pem") == "644 root:root"
    assert not host.exists("/etc/bedrock-gw/credentials/aws-secret-access-key")
    handed_over = host.machine.run("ls", "/run/credentials/bedrock-gw.service").stdout.split()
    assert handed_over == ["api-keys", "roles-anywhere-key"]
    assert "Roles Anywhere via aws_signing_helper" in host.journal()
    assert model_ids(host)


def test_absent_removes_everything(state: State) -> None:
    """bedrock_gw_state: absent stops the service and removes the unit, code, configuration,
    secrets and state; a second run finds nothing left to do."""
    host = state.host
    run = play(state, bedrock_gw_state="absent")
    assert run.returncode == 0, run.output[-5000:]
    for path in (
        "/etc/systemd/system/bedrock-gw.service",
        "/etc/systemd/system/bedrock-gw.service.d",
        "/etc/systemd/system/multi-user.target.wants/bedrock-gw.service",
        "/opt/bedrock-gw",
        "/etc/bedrock-gw",
        "/var/lib/bedrock-gw",
        "/var/lib/private/bedrock-gw",
    ):
        assert not host.exists(path), path
    assert host.show("LoadState")["LoadState"] == "not-found"
    assert http(f"{host.base}/health", timeout=3)[0] == 0
    again = play(state, bedrock_gw_state="absent")
    assert again.returncode == 0 and again.recap["changed"] == 0, again.changed_tasks()
