#!/usr/bin/env bash
# The many-hosts run of issue 19 at full size (bench/RESULTS.md, "Scale"):
#   sudo ./bench/scale.sh [HOSTS [VOLUMES]]     (default 20 hosts, 10 volumes each)
# tests/functional/test_scale.py with its PostgreSQL + Redis and its SQLite variants:
# every host (forks = hosts) creates, extends and deletes its volumes on one LVM
# backend (metadata-only LVM where the kernel lacks device-mapper), checked for
# lost or duplicated volumes between the phases. CI runs the same test with one
# volume per host and the PostgreSQL store only. Figures: bench/out/scale.jsonl.
# CINDERLIB_SCALE_STORES=postgresql (or sqlite) runs one store only.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR/.. source=scripts/env.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
cd "${CINDERLIB_REPO}"
[[ ${EUID} -eq 0 ]] || cl_die "needs root (loop devices, LVM, a private PostgreSQL): sudo $0 $*"

hosts=${1:-20}
volumes=${2:-10}
report="${CINDERLIB_REPO}/bench/out/scale.jsonl"
mkdir -p "$(dirname "${report}")"
rm -f "${report}"
# Every volume is grown to 2 GiB: room for all of them (a sparse file).
vg_size="$(( hosts * volumes * 2 + 16 ))G"
cl_step "bench: scale run, ${hosts} hosts x ${volumes} volumes (volume group ${vg_size})"
CINDERLIB_SCALE_HOSTS=${hosts} CINDERLIB_SCALE_VOLUMES=${volumes} CINDERLIB_SCALE_STORES=${CINDERLIB_SCALE_STORES:-postgresql,sqlite} \
    CINDERLIB_SCALE_REPORT=${report} CINDERLIB_TEST_BIG_VG_SIZE=${vg_size} \
    pytest -q -p no:cacheprovider tests/functional/test_scale.py
python - "${report}" <<'PY'
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1], encoding='utf-8')]
print('| Store | Hosts (forks) | Volumes per host | Changing tasks | Failures | Lost or duplicated | LVs left '
      '| Create / extend / delete (s) | Wall (s) | Tasks/s |')
print('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
for r in rows:
    print('| %s | %d (%d) | %d | %d | %d | %d | %d | %s / %s / %s | %s | %s |' % (
        r['store'], r['hosts'], r['forks'], r['volumes_per_host'], r['changing_tasks'], r['failures'],
        r['lost_or_duplicated'], r['lvs_left'], r['create_s'], r['extend_s'], r['delete_s'], r['wall_s'],
        r['tasks_per_s']))
PY
