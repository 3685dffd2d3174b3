#!/usr/bin/env bash
# CI stage "ansible": the role in ansible/ linted, then run against real systemd hosts.
#
# 1. installs systemd-nspawn, debootstrap, qemu-user-static (ARM hosts under binfmt_misc) and an
#    ssh client with apt, and ansible-core 2.19 plus ansible-lint in .work/ansible/venv;
# 2. starts building the arm64 and armhf root filesystems in the background (debootstrap
#    --foreign, second stage under qemu-user: the slow part of a cold run), cached in .work/system;
# 3. ansible-lint --offline with the production profile, and the role's static tests;
# 4. tests/ansible on an x86_64 Debian 12 container reached over ssh: converge, second run with
#    no change, config change -> reload (same PID), secret change -> restart, refused config,
#    Roles Anywhere with a given helper, removal; plus the helper download per architecture;
# 5. the same role on aarch64 and armv7l containers (both at once, under qemu-user).
#
# Needs root and a network for apt and PyPI (the containers themselves get none). Prints the
# time of each step; about 35 minutes from cold on 2 cores, under 15 with the caches warm.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step() { printf '== %s (at %ds)\n' "$1" $((SECONDS - started)); }
timings=()
mark() { timings+=("$(printf '%-40s %5ds' "$1" $(($2)))"); }

if [[ $(id -u) != 0 ]]; then
    echo "ansible stage: needs root (it boots containers)" >&2
    exit 1
fi

step "install"
t=$SECONDS
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
    binfmt-support debootstrap iproute2 openssh-client openssl qemu-user-static systemd \
    systemd-container util-linux
if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
update-binfmts --enable qemu-aarch64 || true
update-binfmts --enable qemu-arm || true
for emulator in qemu-aarch64 qemu-arm; do
    [[ -e /proc/sys/fs/binfmt_misc/$emulator ]] || { echo "binfmt_misc lacks $emulator" >&2; exit 1; }
done
python3 -m pip install --quiet --disable-pip-version-check --editable '.[test]'
venv=.work/ansible/venv
if [[ ! -x $venv/bin/ansible-lint ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    'ansible-core>=2.19,<2.20' ansible-lint 2> >(grep -v 'is ignored: it is neither' >&2)
export ANSIBLE_PLAYBOOK_BIN=$PWD/$venv/bin/ansible-playbook
mark "install" SECONDS-t

step "ARM root filesystems: building in the background"
logs=.work/ansible/logs
mkdir -p "$logs"
arm_pids=()
for arch in arm64 armhf; do
    (
        t0=$SECONDS
        python3 -c "from tests.system.container import rootfs; rootfs('bookworm', '$arch')"
        echo "rootfs $arch ready in $((SECONDS - t0))s"
    ) >"$logs/rootfs-$arch.log" 2>&1 &
    arm_pids+=($!)
done

step "ansible-lint (production profile) and syntax check"
t=$SECONDS
(cd ansible && "../$venv/bin/ansible-lint" --offline --profile production --nocolor)
(cd ansible && "../$venv/bin/ansible-playbook" --syntax-check -i inventory/hosts.example.yml site.yml)
python3 -m pytest tests/ansible -m "not ansible" -p no:cacheprovider -q
mark "lint and static tests" SECONDS-t

step "x86_64 host"
t=$SECONDS
python3 -m pytest tests/ansible -m ansible -k "x86_64 or signing_helper" -p no:cacheprovider \
    -v --durations=0
mark "x86_64 host (rootfs, converge ... absent)" SECONDS-t

step "ARM root filesystems: waiting"
t=$SECONDS
failed=0
for i in "${!arm_pids[@]}"; do
    wait "${arm_pids[$i]}" || failed=1
done
cat "$logs"/rootfs-arm64.log "$logs"/rootfs-armhf.log | grep -E '^rootfs|Error|error' || true
if [[ $failed != 0 ]]; then
    tail -n 30 "$logs"/rootfs-*.log
    echo "FAIL: an ARM root filesystem could not be built" >&2
    exit 1
fi
mark "ARM root filesystems (waited)" SECONDS-t

step "aarch64 and armv7l hosts (qemu-user, both at once)"
t=$SECONDS
pids=()
for arch in aarch64 armv7l; do
    python3 -m pytest tests/ansible/test_role_arm.py -m ansible -k "$arch" -p no:cacheprovider \
        -v --durations=0 >"$logs/test-$arch.log" 2>&1 &
    pids+=($!)
done
status=0
for i in 0 1; do
    arch=$([[ $i == 0 ]] && echo aarch64 || echo armv7l)
    if wait "${pids[$i]}"; then
        echo "PASS: $arch"
    else
        status=1
        echo "FAIL: $arch"
    fi
    cat "$logs/test-$arch.log"
done
mark "aarch64 + armv7l hosts" SECONDS-t

step "done"
printf '%s\n' "${timings[@]}"
echo "ansible stage took $((SECONDS - started))s"
exit "$status"
