#!/usr/bin/env bash
# Runs the runtime role into a throwaway virtual environment: check, real,
# check, real, asserting what each run reports as changed and (playbook.yml)
# that cinderlib_python imports cinder and os_brick; then a wrong driver name
# must fail, and the throwaway directory is removed. pip keeps its cache, so
# only the first run on a machine downloads.
set -euo pipefail

root=/var/tmp/cinderlib-it-runtime
log="${OUTPUT_DIR:-/tmp}/runtime-runme.log"

# shellcheck source=tests/integration/targets/setup_recap/recap.sh
source "$(dirname "${BASH_SOURCE[0]}")/../setup_recap/recap.sh"

cleanup() {
    rm -rf "${root}"
}
trap cleanup EXIT
cleanup

expect yes --check
[[ ! -e ${root} ]] || { echo "FAIL: check mode created ${root}" >&2; exit 1; }
expect yes
expect no --check
expect no

# A Kaminario backend needs krest: check mode says it would be installed.
expect yes --check -e '{"cinderlib_runtime_drivers": ["lvm", "kaminario"]}'
grep -q '"msg": "Would install: krest==1.3.7"' "${log}" || { cat "${log}"; echo "FAIL: krest not planned" >&2; exit 1; }
echo "ok: kaminario -> Would install: krest==1.3.7"

if play -e '{"cinderlib_runtime_drivers": ["lvm", "no-such-driver"]}'; then
    cat "${log}"
    echo "FAIL: the role accepted an unknown driver name" >&2
    exit 1
fi
grep -q 'unknown driver names: no-such-driver' "${log}" || { cat "${log}"; exit 1; }
echo "ok: unknown driver name refused"
