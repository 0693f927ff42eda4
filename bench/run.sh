#!/usr/bin/env bash
# Benchmarks of cinderlib.storage against baselines measured in the same run
# (see bench/RESULTS.md):   sudo ./bench/run.sh [--smoke]
#   --smoke   tiny sizes, correctness checks only (changed counts, volumes gone,
#             inventory host count, the volumes: list); no lvol, no extra packages;
#             a minute or two.
# Makes its own volume group (cinderlib-bench-vg, 128G sparse file, metadata-only
# LVM where the kernel lacks device-mapper) with the lvm_loopback role and
# removes it, with its loop device, on exit. The full run installs the `ansible`
# package (for community.general.lvol) with pip --target into BENCH_ANSIBLE_DIR
# (default /opt/cinderlib-storage/bench-ansible-12.3.0), once.
# Output: a table on stdout; raw timings and report.md in bench/out/.
# BENCH_ONLY=lifecycle (bench.py's step names, comma-separated) runs only those steps.
# BENCH_PROFILE=1 also profiles the full path with py-spy (bench/profile.py; needs
# `pip install py-spy` in the venv, not a dependency): bench/out/profile.md.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR/.. source=scripts/env.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
cd "${CINDERLIB_REPO}"

SMOKE=0
case "${1:-}" in
    --smoke) SMOKE=1 ;;
    "") ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) cl_die "unknown argument: $1 (usage: $0 [--smoke])" ;;
esac

[[ ${EUID} -eq 0 ]] || cl_die "needs root (loop devices, LVM): sudo $0 $*"
PATH="${PATH}:/usr/local/sbin:/usr/sbin:/sbin"
export ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=false

BENCH_ANSIBLE_VERSION=12.3.0
BENCH_ANSIBLE_DIR="${BENCH_ANSIBLE_DIR:-/opt/cinderlib-storage/bench-ansible-${BENCH_ANSIBLE_VERSION}}"
OUT="${CINDERLIB_REPO}/bench/out"
VG_PLAYBOOK="${CINDERLIB_REPO}/bench/playbooks/vg.yml"
mkdir -p "${OUT}"

vg() {  # vg present|absent
    local extra=(-e "bench_vg_state=$1")
    [[ $1 == present ]] && extra+=(-e "bench_vg_result_file=${OUT}/vg.json")
    ansible-playbook -i localhost, "${VG_PLAYBOOK}" "${extra[@]}" >"${OUT}/vg-$1.log" 2>&1 \
        || { tail -n 30 "${OUT}/vg-$1.log" >&2; return 1; }
}

cleanup() {
    local rc=$?
    cl_step "bench: removing the volume group and its loop device"
    vg absent || { cl_note "could not remove cinderlib-bench-vg (see ${OUT}/vg-absent.log)"; rc=1; }
    rmdir /var/tmp/cinderlib-bench 2>/dev/null || true
    exit "${rc}"
}

args=(--vg-json "${OUT}/vg.json" --out "${OUT}")
if [[ ${SMOKE} -eq 1 ]]; then
    args+=(--smoke --command "sudo ./bench/run.sh --smoke")
else
    if [[ ! -f ${BENCH_ANSIBLE_DIR}/ansible_collections/community/general/plugins/modules/lvol.py ]]; then
        cl_step "bench: installing ansible==${BENCH_ANSIBLE_VERSION} (community.general) into ${BENCH_ANSIBLE_DIR}"
        start=${SECONDS}
        python -m pip install --quiet --no-deps --target "${BENCH_ANSIBLE_DIR}" "ansible==${BENCH_ANSIBLE_VERSION}"
        cl_note "took $((SECONDS - start))s"
    fi
    args+=(--lvol-collections "${BENCH_ANSIBLE_DIR}" --repeat "${BENCH_REPEAT:-1}")
fi
# BENCH_ONLY=lifecycle,...: only those steps (bench.py --only); the report is then partial.
[[ -n ${BENCH_ONLY:-} ]] && args+=(--only "${BENCH_ONLY}")

cl_step "bench: volume group cinderlib-bench-vg (lvm_loopback role)"
trap cleanup EXIT
vg absent
vg present
python bench/bench.py "${args[@]}"
if [[ ${SMOKE} -eq 0 && ${BENCH_PROFILE:-0} == 1 ]]; then
    cl_step "bench: py-spy profiles of the full path"
    python bench/profile.py --vg-json "${OUT}/vg.json" --out "${OUT}"
fi
