#!/usr/bin/env bash
# Runs the lvm_loopback role for real and in check mode, asserting what each
# run reports as changed: present (check, real, check, real), a refused
# foreign volume group, the loop device gone (attached again, the volume group
# found on it), then absent (check, real, real).
set -euo pipefail

log="${OUTPUT_DIR:-/tmp}/lvm_loopback-runme.log"

# shellcheck source=tests/integration/targets/setup_recap/recap.sh
source "$(dirname "${BASH_SOURCE[0]}")/../setup_recap/recap.sh"

cleanup() {
    play -e lvm_loopback_state=absent || cat "${log}"
    rmdir /var/tmp/cinderlib-it 2>/dev/null || true
}
trap cleanup EXIT

expect yes --check
expect yes
expect no --check
expect no

# A second file must not take over the existing volume group.
if play -e lvm_loopback_file=/var/tmp/cinderlib-it/other.img; then
    cat "${log}"
    echo "FAIL: the role accepted a volume group on another device" >&2
    exit 1
fi
grep -q 'already exists on' "${log}" || { cat "${log}"; exit 1; }
[[ ! -e /var/tmp/cinderlib-it/other.img ]] || { echo "FAIL: other.img was created" >&2; exit 1; }
echo "ok: foreign volume group refused"

# The loop device gone, its backing file kept (the host restarted): the role attaches the
# file again and finds the volume group on it, without making a new one.
losetup --detach "$(losetup --list --noheadings --output NAME --associated /var/tmp/cinderlib-it/cinderlib-it-vg.img)"
expect yes
if grep -A2 'Create the volume group' "${log}" | grep -q '^changed'; then
    cat "${log}"
    echo "FAIL: the volume group was made again" >&2
    exit 1
fi
expect no
echo "ok: the volume group is back on its file"

expect yes --check -e lvm_loopback_state=absent
expect yes -e lvm_loopback_state=absent
expect no -e lvm_loopback_state=absent
