"""ansible/site.yml on real aarch64 and armv7l Debian 12 hosts, emulated with qemu-user.

Each host boots like the x86_64 one (systemd-nspawn, systemd as PID 1, sshd) with every binary
run by qemu-user through binfmt_misc, so it is slow: the role converges and the service answers
/health and an authenticated /v1/models through the fake Bedrock. Under qemu-user systemd
cannot start services with LoadCredential= (243/CREDENTIALS) or PrivateUsers= (217/USER), so
the hosts set bedrock_gw_qemu_user; the x86_64 tests cover the credential path. armv7l also
proves the no-compiler path: no uvloop wheel is wanted there, and cffi comes as a wheel.
"""

from __future__ import annotations

import pytest

from tests.ansible.hosts import MACHINES, booted, fake_bedrock, http, wheelhouse

pytestmark = pytest.mark.ansible

KEY = "ansible-arm-key-0123456789abcdef"


@pytest.mark.parametrize("arch", ["arm64", "armhf"], ids=["aarch64", "armv7l"])
def test_role_converges_on_an_emulated_arm_host(
    arch: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The playbook converges on the ARM host, the service is active and serves through the
    fake Bedrock; uvloop is installed where it has wheels (aarch64) and absent on armv7l."""
    machine_name = MACHINES[arch]
    wheels = wheelhouse(machine_name)
    workdir = tmp_path_factory.mktemp(f"ansible-{machine_name}")
    with booted(arch, workdir) as host, fake_bedrock(host.machine.host_ip, workdir) as fake:
        assert host.machine.run("uname", "-m").stdout.strip() == machine_name
        run = host.play(
            {
                "bedrock_gw_qemu_user": True,
                "bedrock_gw_health_timeout": 300,
                "bedrock_gw_wheelhouse": str(wheels),
                "bedrock_gw_listen_host": "0.0.0.0",
                "bedrock_gw_aws_runtime_endpoint": fake,
                "bedrock_gw_aws_control_endpoint": fake,
                "bedrock_gw_aws_credentials": "static",
                "bedrock_gw_aws_access_key_id": "AKIDFAKE",
                "bedrock_gw_aws_secret_access_key": "fake-secret",
                "bedrock_gw_api_keys": [{"name": "ci", "key": KEY}],
            }
        )
        try:
            assert run.returncode == 0, run.output[-5000:]
            assert host.show("ActiveState")["ActiveState"] == "active"
            assert http(f"{host.base}/health", timeout=30)[0] == 200
            status, body = http(f"{host.base}/v1/models", KEY, timeout=60)
            assert status == 200 and body["data"]
            assert "fake-secret" not in run.output and KEY not in run.output
            assert host.stat("/etc/bedrock-gw/environment") == "600 root:root"
            pip = host.machine.run("/opt/bedrock-gw/venv/bin/pip", "list", timeout=300).stdout
            assert ("uvloop" in pip) == (machine_name == "aarch64")
            assert not host.exists("/usr/bin/gcc")
        finally:
            print(host.journal()[-10000:])
