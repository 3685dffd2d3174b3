#!/usr/bin/env bash
# Build (once) a Debian root filesystem with systemd as PID 1, for systemd-nspawn -b.
#
#   tests/system/build-rootfs.sh DEST [SUITE] [ARCH]
#
# DEST is created complete or not at all: the tree is built next to it and renamed at the end,
# so an interrupted build never leaves a half-made cache behind. The mirror is the one this
# machine's apt uses (override with DEBIAN_MIRROR); the container itself gets no network.
# ARCH is a Debian architecture (arm64, armhf...); one that is not this machine's is built with
# debootstrap --foreign and its second stage run under qemu-user (binfmt_misc must know it).
# openssh-server and python3-packaging are there for Ansible (tests/ansible), which reaches the
# container over ssh; the unit's system tests do not use them.
set -euo pipefail

dest=${1:?usage: build-rootfs.sh DEST [SUITE] [ARCH]}
suite=${2:-bookworm}
native=$(dpkg --print-architecture)
arch=${3:-$native}
packages=systemd,systemd-sysv,dbus,procps,python3,python3-venv,python3-packaging,iproute2
packages+=,ca-certificates,openssh-server

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
echo "debootstrap $suite ($arch) from $mirror into $dest" >&2
if [[ $arch == "$native" ]]; then
    debootstrap --variant=minbase --include="$packages" "$suite" "$work" "$mirror" >&2
else
    debootstrap --foreign --arch="$arch" --variant=minbase --include="$packages" \
        "$suite" "$work" "$mirror" >&2
    # Runs the target's own binaries: binfmt_misc hands them to qemu-user-static.
    LANG=C.UTF-8 chroot "$work" /debootstrap/debootstrap --second-stage >&2
fi

# No DNS inside: name lookups must not wait on a resolver that is not there.
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n' >"$work/etc/hosts"
echo bedrock-gw-test >"$work/etc/hostname"
# Nothing in the container needs these, and they only slow the boot down or fail without network.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
    systemd-timesyncd.service; do
    ln -sf /dev/null "$work/etc/systemd/system/$unit"
done
# sshd must not look names up either (a reverse lookup of every client costs seconds).
printf 'UseDNS no\n' >"$work/etc/ssh/sshd_config.d/no-dns.conf"
apt-get --quiet clean -o RootDir="$work" >/dev/null 2>&1 || rm -rf "$work/var/cache/apt/archives"/*.deb
touch "$work/.complete"
rm -rf "$dest"
mv "$work" "$dest"
trap - EXIT
