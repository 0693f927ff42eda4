# shellcheck shell=bash
# Sourced by the targets' runme.sh scripts (not run on its own).
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
