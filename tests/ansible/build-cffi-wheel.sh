#!/usr/bin/env bash
# Build cffi's wheel for a foreign architecture inside its root filesystem, under qemu-user.
#
#   tests/ansible/build-cffi-wheel.sh ROOTFS DEST
#
# PyPI has no armv7l wheel of cffi (cryptography needs it), and the test hosts have no compiler
# and no network: the wheel is built here, once, in a throw-away overlay of ROOTFS (which keeps
# no trace of the compiler), then joins that architecture's wheelhouse. The overlay shares this
# machine's network for apt; the sdist comes from PyPI on this side.
set -euo pipefail

root=${1:?usage: build-cffi-wheel.sh ROOTFS DEST}
dest=${2:?usage: build-cffi-wheel.sh ROOTFS DEST}
if compgen -G "$dest/cffi-*.whl" >/dev/null; then
    exit 0
fi
mkdir -p "$dest"
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary=:all: \
    --dest "$src" cffi 2>&1 | grep -v 'is ignored' >&2 || true
# cffi's metadata needs a newer setuptools than Debian 12's venv brings (PEP 639 licence).
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --dest "$src" 'setuptools>=77' 2>&1 | grep -v 'is ignored' >&2 || true
compgen -G "$src/cffi-*.tar.gz" >/dev/null || { echo "no cffi sdist downloaded" >&2; exit 1; }

systemd-nspawn --quiet --directory="$root" --volatile=overlay --register=no --keep-unit \
    --bind-ro="$src:/src" --bind="$(realpath "$dest"):/out" --setenv=DEBIAN_FRONTEND=noninteractive \
    /bin/sh -euc '
        apt-get -q update >/dev/null
        apt-get -q install -y --no-install-recommends gcc libc6-dev libffi-dev python3-dev >/dev/null
        python3 -m venv /tmp/build
        /tmp/build/bin/pip install --quiet --no-index /src/setuptools-*.whl
        /tmp/build/bin/pip wheel --quiet --no-index --no-deps --no-build-isolation \
            --wheel-dir /out /src/cffi-*.tar.gz
    '
ls "$dest"/cffi-*.whl
