#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then lints, type-checks
# and runs every test, then the stages that need more than Python: a real Open WebUI against
# the gateway, and (as root) a real systemd host and the Ansible role on x86_64 and ARM hosts. CI (.ci/run) calls exactly this script.
# For a quick local run of the Python tests alone: python3 -m pytest
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check --editable '.[test]'

echo "== ruff"
python3 -m ruff check .
python3 -m ruff format --check .
echo "== mypy"
python3 -m mypy
echo "== pytest"
python3 -m pytest -m "not system and not ansible" "$@"
echo "== Open WebUI end to end"
bash .ci/openwebui.sh
if [ "$(id -u)" = 0 ]; then
    echo "== systemd: the unit on a real systemd host"
    bash .ci/system.sh
    # After the system stage, which builds the x86_64 container image this stage reuses.
    echo "== Ansible: the role on real systemd hosts (x86_64, aarch64, armv7l)"
    bash .ci/ansible.sh
else
    echo "== systemd stage skipped: it boots a container and needs root"
fi
