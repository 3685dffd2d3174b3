#!/usr/bin/env bash
# Build (once) a Debian root filesystem with systemd as PID 1, for systemd-nspawn -b.
#
#   tests/system/build-rootfs.sh DEST [SUITE]
#
# DEST is created complete or not at all: the tree is built next to it and renamed at the end,
# so an interrupted build never leaves a half-made cache behind. The mirror is the one this
# machine's apt uses (override with DEBIAN_MIRROR); the container itself gets no network.
set -euo pipefail

dest=${1:?usage: build-rootfs.sh DEST [SUITE]}
suite=${2:-bookworm}
packages=systemd,systemd-sysv,dbus,procps,python3,python3-venv,iproute2,ca-certificates

if [[ -e $dest/.complete ]]; then
    exit 0
fi

mirror_from_apt() {
    # deb822 "URIs:" lines first, then one-line "deb URI suite ..." entries; skip security.
    local uri
    uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{print $2}' | grep -v -- '-security' | grep -m1 debian || true)
    if [[ -z $uri ]]; then
        uri=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | awk '{print $2}' | grep -v -- '-security' | grep -m1 debian || true)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}
mirror=${DEBIAN_MIRROR:-$(mirror_from_apt)}

work="$dest.partial.$$"
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$dest")"
echo "debootstrap $suite from $mirror into $dest" >&2
debootstrap --variant=minbase --include="$packages" "$suite" "$work" "$mirror" >&2

# No DNS inside: name lookups must not wait on a resolver that is not there.
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n' >"$work/etc/hosts"
echo bedrock-gw-test >"$work/etc/hostname"
# Nothing in the container needs these, and they only slow the boot down or fail without network.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
    systemd-timesyncd.service; do
    ln -sf /dev/null "$work/etc/systemd/system/$unit"
done
apt-get --quiet clean -o RootDir="$work" >/dev/null 2>&1 || rm -rf "$work/var/cache/apt/archives"/*.deb
touch "$work/.complete"
rm -rf "$dest"
mv "$work" "$dest"
trap - EXIT
