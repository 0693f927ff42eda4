#!/usr/bin/env bash
# Runs the lvm_loopback role for real and in check mode, asserting what each
# run reports as changed: present (check, real, check, real), a refused
# foreign volume group, then absent (check, real, real).
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

expect yes --check -e lvm_loopback_state=absent
expect yes -e lvm_loopback_state=absent
expect no -e lvm_loopback_state=absent
