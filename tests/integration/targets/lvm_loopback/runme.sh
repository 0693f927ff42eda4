#!/usr/bin/env bash
# Runs the lvm_loopback role for real and in check mode, asserting what each
# run reports as changed: present (check, real, check, real), a refused
# foreign volume group, then absent (check, real, real).
set -euo pipefail

log="${OUTPUT_DIR:-/tmp}/lvm_loopback-runme.log"

play() {
    ansible-playbook -i "${INVENTORY_PATH}" playbook.yml "$@" >"${log}" 2>&1
}

# expect CHANGED(yes|no) ARGS...: run the playbook and check its recap.
expect() {
    local want=$1 changed
    shift
    if ! play "$@"; then
        cat "${log}"
        echo "FAIL: ansible-playbook $* failed" >&2
        exit 1
    fi
    changed="$(sed -n 's/^localhost .* changed=\([0-9]*\) .*/\1/p' "${log}")"
    if [[ ${want} == yes && ${changed} -eq 0 ]] || [[ ${want} == no && ${changed} -ne 0 ]]; then
        cat "${log}"
        echo "FAIL: ansible-playbook $*: changed=${changed}, expected changes: ${want}" >&2
        exit 1
    fi
    echo "ok: $* -> changed=${changed}"
}

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
