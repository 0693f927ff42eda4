# shellcheck shell=bash
# Sourced by the targets' runme.sh scripts (not run on its own), which set
# `log` (where each run's output goes) first.
# expect_recap WANT LABEL LOG COMMAND...: run COMMAND, which writes an
# ansible-playbook run's output to LOG, and check localhost's recap in it:
# WANT=yes needs changed>0, WANT=no changed=0. Shows LOG and exits 1 when the
# run fails or the count is not what was wanted.
expect_recap() {
    local want=$1 label=$2 log=$3 changed start=${SECONDS}
    shift 3
    if ! "$@"; then
        cat "${log}"
        echo "FAIL: ${label} failed" >&2
        exit 1
    fi
    changed="$(sed -n 's/^localhost .* changed=\([0-9]*\) .*/\1/p' "${log}")"
    if [[ ${want} == yes && ${changed} -eq 0 ]] || [[ ${want} == no && ${changed} -ne 0 ]]; then
        cat "${log}"
        echo "FAIL: ${label}: changed=${changed}, expected changes: ${want}" >&2
        exit 1
    fi
    echo "ok: ${label} -> changed=${changed} ($((SECONDS - start))s)"
}

# play ARGS...: run the target's playbook.yml with ARGS, its output in ${log}.
play() {
    ansible-playbook -i "${INVENTORY_PATH}" playbook.yml "$@" >"${log}" 2>&1
}

# expect CHANGED(yes|no) ARGS...: run the playbook and check its recap.
expect() {
    local label="${*:2}"
    expect_recap "$1" "${label:-(real)}" "${log}" play "${@:2}"
}
