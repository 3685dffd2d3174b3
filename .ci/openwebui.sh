#!/usr/bin/env bash
# CI stage: end-to-end tests with a real Open WebUI in front of the gateway and the fake Bedrock.
#
# 1. Installs Open WebUI (pinned) into its own virtualenv under .work/ (git-ignored), the offline
#    way: `pip install --no-deps open-webui`, then the slim requirement set shipped inside its
#    wheel (no torch, no browser; about 770 MB). Skipped when that version is already there.
# 2. Runs tests/e2e with the project's Python (the interpreter that has bedrock_gw and pytest),
#    telling the tests where Open WebUI is through BEDROCK_GW_E2E_OPENWEBUI.
#
# Environment: PYTHON (interpreter for Open WebUI's virtualenv, 3.11 or 3.12; default python3),
# PROJECT_PYTHON (the project's interpreter; default python3), OPENWEBUI_VENV (default
# .work/openwebui-<version>). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

OPENWEBUI_VERSION=0.12.4
PYTHON=${PYTHON:-python3}
PROJECT_PYTHON=${PROJECT_PYTHON:-python3}
VENV=${OPENWEBUI_VENV:-.work/openwebui-$OPENWEBUI_VERSION}
STAMP="$VENV/.open-webui-installed"

# pip, minus two kinds of noise: this machine's pip config names local index folders that may be
# absent, and open-webui's full (non-slim) requirements are deliberately left uninstalled.
quiet_pip() {
    "$VENV/bin/python" -m pip --disable-pip-version-check --no-input --quiet "$@" \
        2> >(grep -v -e 'is ignored: it is neither a file nor a directory' \
            -e '^open-webui .* requires .*, which is not installed\.$' \
            -e "^ERROR: pip's dependency resolver does not currently take into account" \
            -e '^This behaviour is the source of the following dependency conflicts' >&2)
}

installed_version() {
    "$VENV/bin/python" -c \
        'import importlib.metadata as m; print(m.version("open-webui"))' 2>/dev/null || true
}

install_openwebui() {
    local started=$SECONDS requirements
    echo "== open-webui $OPENWEBUI_VERSION: installing into $VENV"
    "$PYTHON" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 12))' || {
        echo "open-webui $OPENWEBUI_VERSION needs Python 3.11 or 3.12; $PYTHON is not" >&2
        exit 1
    }
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    quiet_pip install --no-deps "open-webui==$OPENWEBUI_VERSION"
    # The slim requirement set lies at the wheel's root, so it lands in site-packages.
    requirements=$("$VENV/bin/python" - <<'PY'
import importlib.metadata as md
found = [f for f in md.files("open-webui") or () if f.name == "requirements-slim.txt"]
if not found:
    raise SystemExit("requirements-slim.txt is not in the open-webui distribution")
print(found[0].locate())
PY
)
    quiet_pip install -r "$requirements"
    echo "$OPENWEBUI_VERSION" >"$STAMP"
    echo "== open-webui: installed in $((SECONDS - started)) s, $(du -sh "$VENV" | cut -f1) on disk"
}

if [[ "$(cat "$STAMP" 2>/dev/null)" == "$OPENWEBUI_VERSION" \
    && "$(installed_version)" == "$OPENWEBUI_VERSION" ]]; then
    echo "== open-webui $OPENWEBUI_VERSION: already installed in $VENV ($(du -sh "$VENV" | cut -f1))"
else
    install_openwebui
fi

if ! "$PROJECT_PYTHON" -c 'import bedrock_gw, pytest, pytest_asyncio' 2>/dev/null; then
    "$PROJECT_PYTHON" -m pip install --quiet --disable-pip-version-check --editable '.[test]'
fi

echo "== pytest tests/e2e"
started=$SECONDS
status=0
BEDROCK_GW_E2E_OPENWEBUI="$(cd "$VENV" && pwd)/bin/open-webui" \
    "$PROJECT_PYTHON" -m pytest tests/e2e -m e2e "$@" || status=$?
echo "== e2e tests: $((SECONDS - started)) s"
exit "$status"
