#!/usr/bin/env bash
# cinderlib 5.2.0's own functional suite against our library, on this machine
# (as root: loop device, LVM). scripts/test.sh runs it as the peer-suite stage.
#   sudo tests/peer/run.sh [PYTEST-ARGS...]
# The suite's `import cinderlib` is the drop-in wheel installed in the venv
# (scripts/build_cinderlib_wheel.py; scripts/test.sh's build+install stage
# installs it): this stops first when it is missing or not this tree's.
# Assembles the suite (tests/peer/prepare.py: the wheel's files + our skip
# hook), makes the volume group cinderlib-peer-vg on a loop file with the
# lvm_loopback role (tests/playbooks/lvm_vg.yml; metadata-only LVM where the
# kernel has no device-mapper), runs pytest with the suite's env knobs and
# removes the volume group on exit. Tests this kernel can't run are skipped by
# tests/peer/conftest.py. Exits non-zero when a test failed or errored, or when
# pytest did not report 17 tests.
# CINDERLIB_PEER_BACKEND=ceph runs the suite on Cinder's RBDDriver instead, on a
# throwaway Ceph cluster (scripts/ceph.sh) with a config like the wheel's ceph.yaml.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR/../.. source=scripts/env.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/env.sh"
cd "${CINDERLIB_REPO}"

[[ ${EUID} -eq 0 ]] || cl_die "needs root (loop devices, LVM): sudo $0"
PATH="${PATH}:/usr/local/sbin:/usr/sbin:/sbin"
export ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=false

SUITE_TESTS=17
PEER_BACKEND="${CINDERLIB_PEER_BACKEND:-lvm}"
PEER_VG=cinderlib-peer-vg   # the volume_group of tests/peer/lvm-host.yaml
OUT="${CINDERLIB_BUILD}/peer-suite"
CEPH_DIR="${OUT}/ceph"
VG_VARS=(-e lvm_loopback_vg="${PEER_VG}" -e lvm_loopback_file=/var/tmp/cinderlib-peer/"${PEER_VG}".img
         -e lvm_loopback_size=32G)  # sparse; the suite's volumes at once stay below 32 GiB

vg() {  # vg fresh|absent
    local extra=(-e "lvm_vg_state=$1")
    [[ $1 == fresh ]] && extra+=(-e "lvm_vg_result_file=${OUT}/vg.json")
    ansible-playbook -i localhost, tests/playbooks/lvm_vg.yml "${VG_VARS[@]}" "${extra[@]}" >"${OUT}/vg-$1.log" 2>&1 \
        || { tail -n 30 "${OUT}/vg-$1.log" >&2; return 1; }
}

# shellcheck disable=SC2317  # only the EXIT trap calls it
cleanup() {
    local rc=$?
    if [[ ${PEER_BACKEND} == ceph ]]; then
        scripts/ceph.sh purge "${CEPH_DIR}" || { cl_note "could not stop the Ceph cluster in ${CEPH_DIR}"; rc=1; }
    else
        vg absent || { cl_note "could not remove ${PEER_VG} (see ${OUT}/vg-absent.log)"; rc=1; }
        rmdir /var/tmp/cinderlib-peer 2>/dev/null || true
    fi
    exit "${rc}"
}

# The wheel's ceph.yaml with this cluster's values (its pool, a user with rbd
# caps on it and that user's keyring, given as cinderlib's rbd_keyring_conf).
ceph_config() {
    # shellcheck disable=SC1091  # written by scripts/ceph.sh start
    source "${CEPH_DIR}/env"
    cat >"$1" <<EOF
# cinderlib 5.2.0's functional suite on Cinder's RBDDriver, on the throwaway
# cluster tests/peer/run.sh starts (CINDERLIB_PEER_BACKEND=ceph).
backends:
  - volume_backend_name: ceph
    volume_driver: cinder.volume.drivers.rbd.RBDDriver
    rbd_user: ${CEPH_USER}
    rbd_pool: ${CEPH_POOL}
    rbd_ceph_conf: ${CEPH_CONF}
    rbd_keyring_conf: ${CEPH_KEYRING}
EOF
}

if ! python scripts/build_cinderlib_wheel.py --check-installed; then
    cl_die "the drop-in cinderlib wheel of this tree is not installed in ${VENV}: run scripts/test.sh's build+install \
stage or scripts/build_cinderlib_wheel.py + pip install --no-deps --force-reinstall WHEEL"
fi

mkdir -p "${OUT}"
site="$(python tests/peer/prepare.py)"
cl_note "suite: cinderlib 5.2.0's tests/functional in ${site}"

trap cleanup EXIT
if [[ ${PEER_BACKEND} == ceph ]]; then
    scripts/ceph.sh prepare "${CINDERLIB_VENV}" >/dev/null
    scripts/ceph.sh purge "${CEPH_DIR}"
    scripts/ceph.sh start "${CEPH_DIR}" >"${OUT}/ceph-start.log" 2>&1 \
        || { tail -n 30 "${OUT}/ceph-start.log" >&2; exit 1; }
    config="${site}/config/ceph-host.yaml"
    ceph_config "${config}"
    cl_note "Ceph cluster in ${CEPH_DIR}"
else
    vg fresh
    # LVM_SYSTEM_DIR when LVM runs metadata-only: the driver's LVM commands need it.
    while IFS= read -r -d '' assignment; do
        export "${assignment?}"
    done < <(python -c 'import json, sys
for key, value in json.load(open(sys.argv[1]))["environment"].items():
    print(f"{key}={value}", end="\0")' "${OUT}/vg.json")
    cl_note "volume group ${PEER_VG}${LVM_SYSTEM_DIR:+ (metadata-only LVM: LVM_SYSTEM_DIR=${LVM_SYSTEM_DIR})}"
    config="${site}/config/lvm-host.yaml"
fi

# The suite's documented knobs. Running as root, sudo is what cinderlib's CI
# used; the memory persistence is the suite's default. No PYTHONPATH: the
# collection is not reachable, only the installed drop-in (`python -m` puts
# the suite's directory first on sys.path).
export CL_FTEST_CFG="${config}" CL_FTEST_ROOT_HELPER=sudo CL_FTEST_MEMORY_PERSISTENCE=true
rc=0
(cd "${site}" && env -u PYTHONPATH python -m pytest -c pytest.ini -v -rfEs \
    cinderlib/tests/functional "$@") 2>&1 | tee "${OUT}/pytest-${PEER_BACKEND}.log" || rc=$?  # pipefail: pytest's rc

summary="$(grep -E '^=+ .*(passed|failed|skipped|error).* in [0-9.]+s' "${OUT}/pytest-${PEER_BACKEND}.log" | tail -n 1)"
cl_note "pytest: ${summary:-no summary line}"
if [[ $# -eq 0 ]]; then
    total=0
    while read -r count _; do
        total=$((total + count))
    done < <(grep -oE '[0-9]+ (passed|failed|skipped|errors?|xfailed|xpassed)' <<<"${summary}")
    if [[ ${total} -ne ${SUITE_TESTS} ]]; then
        cl_note "FAIL: cinderlib 5.2.0's suite has ${SUITE_TESTS} tests, pytest reported ${total}"
        [[ ${rc} -ne 0 ]] || rc=1
    fi
fi
exit "${rc}"
