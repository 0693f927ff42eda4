#!/usr/bin/env bash
# The one test command (root: loop devices, LVM; another user is asked for sudo):  ./scripts/test.sh
# Stages: bootstrap, ruff, ansible-lint, runtime-pins, pytest, collection build + offline
# install and the drop-in cinderlib wheel built and installed into the venv, changelog
# (antsibull-changelog lint and a trial release), galaxy-importer, peer-suite
# (LVM, then Ceph RBD; through that wheel), ansible-test sanity (ansible-core 2.19, then
# 2.20 and 2.21, each in a venv of its own), ansible-test integration, molecule default, bench-smoke;
# molecule's vm scenario runs beside them all, in the background.
# All stages run; the exit code is non-zero when any failed.
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# shellcheck source=scripts/pinned_venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/pinned_venv.sh"
cd "${CINDERLIB_REPO}"
cl_as_root "$0" "$@"

SKIP=77               # a stage returns this when it has nothing to check yet (no tool uses 77)
summary=()
failed_stages=()      # in the order they failed; the vm stage's too

record_stage() {  # record_stage NAME RC SECONDS
    local status
    case $2 in
        0) status=PASS ;;
        "${SKIP}") status=SKIP ;;
        *) status="FAIL (rc=$2)"; failed_stages+=("$1") ;;
    esac
    summary+=("$(printf '%-22s %-14s %4ss' "$1" "${status}" "$3")")
}

# Each host stage's output is also kept in STAGE_LOG_DIR; just before the
# summary the end of each failed stage's log is printed again, because CI shows
# only the end of the run's output, and the vm scenario's log comes after the
# host stages.
STAGE_LOG_DIR="${CINDERLIB_BUILD}/stages"
FAILED_STAGE_TAIL=60
run_stage() {
    local name=$1 start rc=0 out tee_pid
    shift
    cl_step "${name}"
    mkdir -p "${STAGE_LOG_DIR}"
    # A process substitution, not a pipe: the stage runs in this shell, so what it
    # sets (COPIED) holds for the next stages.
    exec {out}> >(tee "${STAGE_LOG_DIR}/${name}.log")
    tee_pid=$!
    start=${SECONDS}
    "$@" >&"${out}" 2>&1 || rc=$?
    exec {out}>&-
    # Let tee print the stage's last lines before the next stage's first. A
    # daemon the stage left running may hold the pipe open: wait 5 s at most.
    for _ in {1..50}; do kill -0 "${tee_pid}" 2>/dev/null || break; sleep 0.1; done
    record_stage "${name}" "${rc}" "$((SECONDS - start))"
}

print_failed_stage_tails() {
    local name
    for name in "${failed_stages[@]}"; do
        # The vm stage's log is in BACKGROUND_DIR, printed when it was collected.
        [[ -f ${STAGE_LOG_DIR}/${name}.log ]] || continue
        cl_step "${name} failed: the last ${FAILED_STAGE_TAIL} lines of ${STAGE_LOG_DIR}/${name}.log"
        tail -n "${FAILED_STAGE_TAIL}" "${STAGE_LOG_DIR}/${name}.log"
    done
}

# A stage that runs beside the others, its output in a log printed when it is
# collected. Only the vm scenario does: qemu's CPU emulation and the host
# stages each keep about one of CI's two cores busy, and one after the other
# they took more than CI's 90 minutes.
BACKGROUND_DIR="${CINDERLIB_BUILD}/background"
# CI stops the whole run at 90 minutes and then prints nothing of what was
# still running. The vm stage stops itself first, this many seconds after the
# test command started, so the summary and the end of its log are always
# printed.
BACKGROUND_DEADLINE=${CINDERLIB_BACKGROUND_DEADLINE:-4800}
BACKGROUND_LOG_TAIL=200
declare -A background_pids=()
start_background_stage() {
    local name=$1
    shift
    mkdir -p "${BACKGROUND_DIR}"
    cl_step "${name} (in the background, log: ${BACKGROUND_DIR}/${name}.log)"
    (
        # Not errexit: a failed stage must still leave its exit status.
        set +e
        start=${SECONDS} rc=0
        # Each line is stamped with the stage's seconds: the log tells where
        # the time went.
        "$@" </dev/null 2>&1 \
            | while IFS= read -r line || [[ -n ${line} ]]; do printf '[%5ds] %s\n' "$((SECONDS - start))" "${line}"; done \
            >"${BACKGROUND_DIR}/${name}.log"
        rc=${PIPESTATUS[0]}
        printf '%s %s\n' "${rc}" "$((SECONDS - start))" >"${BACKGROUND_DIR}/${name}.rc"
    ) &
    background_pids[${name}]=$!
}

collect_background_stage() {
    local name=$1 rc=1 seconds=0 lines
    cl_step "${name} (waiting for it)"
    wait "${background_pids[${name}]}" || true
    read -r rc seconds <"${BACKGROUND_DIR}/${name}.rc" || cl_note "${name} left no exit status"
    lines=$(wc -l <"${BACKGROUND_DIR}/${name}.log")
    if [[ ${rc} -eq 0 || ${lines} -le ${BACKGROUND_LOG_TAIL} ]]; then
        cat "${BACKGROUND_DIR}/${name}.log"
    else
        cl_note "the last ${BACKGROUND_LOG_TAIL} of ${lines} lines of ${BACKGROUND_DIR}/${name}.log:"
        tail -n "${BACKGROUND_LOG_TAIL}" "${BACKGROUND_DIR}/${name}.log"
    fi
    if [[ ${rc} -eq 124 || ${rc} -eq 137 ]]; then
        cl_note "${name} was stopped at the test command's deadline (${BACKGROUND_DEADLINE} s," \
            "CINDERLIB_BACKGROUND_DEADLINE) after ${seconds} s"
    fi
    record_stage "${name}" "${rc}" "${seconds}"
}

existing() {
    local path
    for path in "$@"; do
        [[ -e ${path} ]] && printf '%s\n' "${path}"
    done
    return 0
}

# This machine's pip config lists local indexes that don't exist for most
# packages; pip warns about each one. Drop those lines from ansible-test output,
# and pip's progress for each of ansible-test's venvs (a sanity run prints
# hundreds of such lines, which hid its findings from the end of the output);
# pip's errors stay.
drop_pip_noise() {
    grep --line-buffered -v -e 'is ignored: it is neither a file nor a directory' \
        -e '^Looking in ' -e '^Collecting ' -e '^  Downloading ' -e '^Processing ' -e '━' \
        -e '^Installing collected packages: ' -e '^Successfully installed ' -e '^Using cached pip ' || true
}

has_files() {  # has_files DIR NAME-GLOB: any such file below DIR?
    [[ -d $1 ]] && [[ -n "$(find "$1" -type f -name "$2" -print -quit)" ]]
}

stage_ruff() {
    local paths
    mapfile -t paths < <(existing plugins tests)
    [[ ${#paths[@]} -gt 0 ]] || { cl_note "SKIP: no plugins/ or tests/ yet"; return "${SKIP}"; }
    ruff check --quiet "${paths[@]}"
}

stage_ansible_lint() {
    ansible-lint -q --nocolor
}

# The runtime role ships its own pins, made from requirements/constraints.txt.
stage_runtime_pins() {
    python scripts/runtime_pins.py --check
}

stage_pytest() {
    local paths rc=0
    mapfile -t paths < <(existing tests/unit tests/functional)
    [[ ${#paths[@]} -gt 0 ]] || { cl_note "SKIP: no tests/unit or tests/functional yet"; return "${SKIP}"; }
    # The functional tests of playbooks from ansible-core 2.20 and 2.21 need their
    # venvs (without a Python for one, its tests skip and say why).
    local version
    for version in "${!ANSIBLE_CORE_PYTHON[@]}"; do
        if find_python "${ANSIBLE_CORE_PYTHON[${version}]}" >/dev/null; then
            ensure_ansible_core_venv "${version}" || return 1
        fi
    done
    # Ceph's bindings in this venv before pytest starts: the unit tests that use
    # them are skipped at collection without them (the functional tests' Ceph
    # fixture would link them in only later, and does nothing when they are there).
    if [[ ${EUID} -eq 0 ]]; then
        scripts/ceph.sh prepare "${VENV}" || return 1
    fi
    CINDERLIB_ANSIBLE_CORE_2_20_VENV="$(ansible_core_venv 2.20)" CINDERLIB_ANSIBLE_CORE_2_21_VENV="$(ansible_core_venv 2.21)" \
        pytest -q -p no:cacheprovider --durations=25 "${paths[@]}" || rc=$?
    if [[ ${rc} -eq 5 ]]; then
        cl_note "pytest collected no tests in ${paths[*]}"
    fi
    return "${rc}"
}

# cinderlib 5.2.0's own functional suite (from its wheel) against our library,
# on its own loop-device VG, removed on exit; what this kernel can't run is
# skipped with the reason (the vm scenario runs all of it).
stage_peer_suite() {
    [[ -x tests/peer/run.sh ]] || { cl_note "SKIP: no tests/peer/run.sh"; return "${SKIP}"; }
    [[ ${EUID} -eq 0 ]] || { cl_note "the peer suite needs root (loop devices, LVM): sudo $0"; return 1; }
    tests/peer/run.sh
}

# The same suite on Cinder's RBDDriver, on a throwaway single-node Ceph cluster
# (scripts/ceph.sh; Debian's packages are installed the first time).
stage_peer_suite_ceph() {
    [[ -x tests/peer/run.sh ]] || { cl_note "SKIP: no tests/peer/run.sh"; return "${SKIP}"; }
    [[ ${EUID} -eq 0 ]] || { cl_note "the Ceph peer suite needs root (Ceph's packages): sudo $0"; return 1; }
    CINDERLIB_PEER_BACKEND=ceph tests/peer/run.sh
}

# ansible-test only works inside .../ansible_collections/NAMESPACE/NAME and
# resolves symlinks, so it runs on a copy of the files git would commit. The
# copy gets its own (empty) git repo: ansible-test lists files with git, and
# would otherwise find the outer repo, where .build/ is ignored.
SANITY_ROOT="${CINDERLIB_BUILD}/sanity/ansible_collections/cinderlib/storage"
COPIED=0
collection_copy() {
    [[ ${COPIED} -eq 0 ]] || return 0
    COPIED=1
    rm -rf "${SANITY_ROOT}"
    mkdir -p "${SANITY_ROOT}"
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -z --cached --others --exclude-standard \
            | while IFS= read -r -d '' file; do if [[ -e ${file} ]]; then printf '%s\0' "${file}"; fi; done \
            | tar --null --no-recursion -T - -cf - | tar -C "${SANITY_ROOT}" -xf -
    else
        tar --exclude=./.build --exclude=./.git --exclude=./tests/output --exclude=__pycache__ \
            -cf - . | tar -C "${SANITY_ROOT}" -xf -
    fi
    git -C "${SANITY_ROOT}" init --quiet
}

# ansible-test bootstraps pip in its venvs with a get-pip script downloaded from
# ci-files.testing.ansible.com, which is not reachable here. It looks in its cache
# first, so put there a stand-in that does the same with ensurepip + PyPI (only
# when the cache has no script: a real download is never replaced).
ensure_get_pip() {
    local version cache
    version="$(python -c 'import inspect, re
from ansible_test._internal import python_requirements as pr
print(re.search(r"pip=.([0-9.]+).", inspect.getsource(pr.get_venv_packages)).group(1))')" || return 1
    cache="${HOME}/.ansible/test/cache/get_pip_${version//./_}.py"
    [[ -e ${cache} ]] && return 0
    mkdir -p "$(dirname "${cache}")"
    cat >"${cache}" <<'PY'
"""Stand-in for get-pip.py (written by cinderlib.storage scripts/test.sh).

ansible-test runs this to put pip into an empty venv, passing pip-install
arguments plus get-pip's own --no-setuptools/--no-wheel flags.
"""
import subprocess
import sys

args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", *args])
PY
    cl_note "wrote the pip bootstrap stand-in ${cache}"
}

stage_sanity() {
    has_files plugins '*.py' || { cl_note "SKIP: no plugins yet"; return "${SKIP}"; }
    ensure_get_pip || return 1
    collection_copy || return 1
    (cd "${SANITY_ROOT}" && ansible-test sanity --venv --requirements --python 3.11 --color no) 2>&1 | drop_pip_noise
    return "${PIPESTATUS[0]}"
}

# The CI matrix's other controllers (the harness venv has ansible-core 2.19):
# ansible-core 2.20 on Python 3.12 and 2.21 on Python 3.13 (2.20 and later need
# Python >= 3.12 on the controller), each from a venv of its own with the pins
# of requirements/ansible-core-<version>.txt. ansible-test sanity runs under each
# on the same copy as the sanity stage, and the functional tests run playbooks
# from each (stage_pytest names the venvs in CINDERLIB_ANSIBLE_CORE_<X_Y>_VENV).
# Sanity runs only the tests whose outcome depends on ansible-core's version:
# import (the plugins and module_utils against that ansible), validate-modules
# (docs and argument specs against its schema and AnsibleModule),
# runtime-metadata (meta/runtime.yml) and ignores (tests/sanity/ignore-<version>.txt).
# The others (pylint, pep8, yamllint, shellcheck, ...) check the same files the
# same way as the 2.19 stage; a full run took 763 s here (2.18), mostly making
# ansible-test's per-test venvs, which CI's budget has no room for.
# CINDERLIB_SANITY_CORE_TESTS names other tests (space-separated); set but
# empty, it runs them all.
declare -A ANSIBLE_CORE_PYTHON=([2.20]=3.12 [2.21]=3.13)
SANITY_CORE_TESTS_DEFAULT="import runtime-metadata validate-modules ignores"
ansible_core_venv() { printf '%s/venv-ansible-core-%s\n' "${CINDERLIB_BUILD}" "$1"; }

# find_python X.Y: the path of a Python X.Y interpreter, found in this order:
# CINDERLIB_PYTHON_X_Y; pythonX.Y on PATH (Debian 13 has python3.13); a version
# pyenv has (the machines this project runs on have 3.12 and 3.13 under pyenv);
# Debian's pythonX.Y and pythonX.Y-venv when apt has them (installed). Nothing
# is downloaded from elsewhere. None: prints why on stderr, returns 1.
find_python() {
    local version=$1 var candidate prefix
    var="CINDERLIB_PYTHON_${version//./_}"
    for candidate in "${!var:-}" "python${version}"; do
        [[ -n ${candidate} ]] && "${candidate}" -c 'import ensurepip, venv' >/dev/null 2>&1 \
            && { command -v "${candidate}"; return 0; }
    done
    # pyenv's own choice of X.Y (its newest X.Y.Z), else its versions' directory
    # when pyenv is not on PATH.
    prefix="$(pyenv prefix "${version}" 2>/dev/null)" || prefix=
    for candidate in "${prefix:+${prefix}/bin/python${version}}" \
        "${PYENV_ROOT:-${HOME}/.pyenv}"/versions/"${version}".*/bin/python"${version}"; do
        [[ -n ${candidate} && -x ${candidate} ]] && "${candidate}" -c 'import ensurepip, venv' >/dev/null 2>&1 \
            && { printf '%s\n' "${candidate}"; return 0; }
    done
    if [[ ${EUID} -eq 0 ]] && command -v apt-cache >/dev/null \
        && apt-cache show "python${version}-venv" >/dev/null 2>&1; then
        cl_install_packages "python${version}" "python${version}-venv" >&2 \
            && "python${version}" -c 'import ensurepip, venv' >/dev/null 2>&1 && { command -v "python${version}"; return 0; }
    fi
    printf 'no Python %s: not on PATH, not under pyenv, not in apt (Debian 12 has none; Debian 13 has 3.13); set %s to one\n' \
        "${version}" "${var}" >&2
    return 1
}

# The venv of ansible-core VERSION (the pins of requirements/ansible-core-VERSION.txt
# on Python ANSIBLE_CORE_PYTHON[VERSION]), made again when they or the Python change.
ensure_ansible_core_venv() {
    local version=$1 python
    python="$(find_python "${ANSIBLE_CORE_PYTHON[${version}]}")" || return 1
    cl_pinned_venv "$(ansible_core_venv "${version}")" "${python}" "requirements/ansible-core-${version}.txt"
}

stage_sanity_core() {  # stage_sanity_core VERSION
    has_files plugins '*.py' || { cl_note "SKIP: no plugins yet"; return "${SKIP}"; }
    local version=$1 core_venv tests=() names=() test why
    core_venv="$(ansible_core_venv "${version}")"
    [[ -f requirements/ansible-core-${version}.txt ]] \
        || { cl_note "SKIP: no requirements/ansible-core-${version}.txt"; return "${SKIP}"; }
    if ! why="$(find_python "${ANSIBLE_CORE_PYTHON[${version}]}" 2>&1 >/dev/null)"; then
        cl_note "SKIP: ${why}"
        return "${SKIP}"
    fi
    ensure_ansible_core_venv "${version}" || return 1
    for test in ${CINDERLIB_SANITY_CORE_TESTS-${SANITY_CORE_TESTS_DEFAULT}}; do
        tests+=(--test "${test}")
        names+=("${test}")
    done
    cl_note "ansible-core $("${core_venv}/bin/python" -c 'from ansible.release import __version__; print(__version__)')" \
        "on Python ${ANSIBLE_CORE_PYTHON[${version}]}: ${names[*]:-all sanity tests}"
    (
        # The venv's pythonX.Y is the one ansible-test finds for --python X.Y.
        PATH="${core_venv}/bin:${PATH}"
        ensure_get_pip || exit 1
        collection_copy || exit 1
        cd "${SANITY_ROOT}" && ansible-test sanity --venv --requirements --python "${ANSIBLE_CORE_PYTHON[${version}]}" \
            --color no "${tests[@]}"
    ) 2>&1 | drop_pip_noise
    return "${PIPESTATUS[0]}"
}

stage_integration() {
    local targets
    mapfile -t targets < <(find tests/integration/targets -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort)
    [[ ${#targets[@]} -gt 0 ]] || { cl_note "SKIP: no tests/integration/targets yet"; return "${SKIP}"; }
    [[ ${EUID} -eq 0 ]] || { cl_note "integration targets need root (needs/root): sudo $0"; return 1; }
    collection_copy || return 1
    local rc
    (cd "${SANITY_ROOT}" && ansible-test integration --local --python 3.11 \
        --allow-root --allow-destructive --continue-on-error --color no) 2>&1 | drop_pip_noise
    rc=${PIPESTATUS[0]}
    # The setup_cinderlib_lvm target leaves its volume group for the targets
    # that follow it; remove it once they all ran.
    ansible-playbook -i localhost, tests/playbooks/lvm_vg.yml -e lvm_vg_state=absent \
        -e lvm_loopback_vg=cinderlib-modules-vg -e lvm_loopback_file=/var/tmp/cinderlib-modules-vg/vg.img >/dev/null \
        || { cl_note "could not remove the integration volume group cinderlib-modules-vg"; rc=1; }
    return "${rc}"
}

# Molecule's default scenario on this machine (delegated driver, localhost):
# runtime role, a loop-device volume group, volumes, idempotence, verify, and
# destroy removes the volume group. The collection comes from
# ANSIBLE_COLLECTIONS_PATH (env.sh).
stage_molecule() {
    has_files extensions/molecule molecule.yml || { cl_note "SKIP: no molecule scenarios yet"; return "${SKIP}"; }
    [[ ${EUID} -eq 0 ]] || { cl_note "the molecule scenario needs root (loop devices, LVM): sudo $0"; return 1; }
    NO_COLOR=1 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 molecule test -s default
}

# Molecule's vm scenario: a Debian VM with a full kernel (scripts/vm.sh, qemu
# with CPU emulation) runs what this kernel can't: LVM snapshots and clones,
# LIO exports and iSCSI attach. The first run builds the VM image (cached in
# /var/cache/cinderlib-storage/vm). CINDERLIB_SKIP_VM=1 skips it, saying so.
stage_molecule_vm() {
    [[ -f extensions/molecule/vm/molecule.yml ]] || { cl_note "SKIP: no vm scenario"; return "${SKIP}"; }
    if [[ ${CINDERLIB_SKIP_VM:-0} == 1 ]]; then
        cl_note "SKIP: CINDERLIB_SKIP_VM=1 (run: source scripts/env.sh && molecule test -s vm)"
        return "${SKIP}"
    fi
    [[ ${EUID} -eq 0 ]] || { cl_note "the vm scenario needs root (debootstrap, qemu): sudo $0"; return 1; }
    # cinderlib's own suite in the VM adds 7 to 20 minutes under CPU emulation,
    # which would take the whole run past CI's budget: on request only here
    # (CINDERLIB_VM_PEER_SUITE=1); `molecule test -s vm` by hand runs it.
    local peer=${CINDERLIB_VM_PEER_SUITE:-0}
    [[ ${peer} == 1 ]] || cl_note "the vm scenario leaves cinderlib's suite out (CINDERLIB_VM_PEER_SUITE=1 runs it)"
    # Ceph RBD's krbd attach (rbd.yml) runs: about 7 minutes with the warm
    # worker (2026-12-03). CINDERLIB_VM_RBD=0 leaves it out.
    local rbd=${CINDERLIB_VM_RBD:-1}
    [[ ${rbd} == 1 ]] || cl_note "the vm scenario leaves Ceph RBD out (CINDERLIB_VM_RBD=0)"
    local rc=0 seconds_left=$((BACKGROUND_DEADLINE - SECONDS))
    [[ ${seconds_left} -gt 60 ]] || seconds_left=60
    CINDERLIB_VM_PEER_SUITE=${peer} CINDERLIB_VM_RBD=${rbd} NO_COLOR=1 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 \
        timeout --kill-after=60 "${seconds_left}" molecule test -s vm || rc=$?
    if [[ ${rc} -eq 124 || ${rc} -eq 137 ]]; then
        # Molecule's destroy did not run: power the VM off here.
        scripts/vm.sh stop || true
    fi
    return "${rc}"
}

# The benchmarks' smoke mode: correctness only (changed counts, volumes gone,
# inventory host count), no timings checked; its own VG, removed on exit.
stage_bench_smoke() {
    [[ -x bench/run.sh ]] || { cl_note "SKIP: no bench/run.sh"; return "${SKIP}"; }
    [[ ${EUID} -eq 0 ]] || { cl_note "bench/run.sh needs root (loop devices, LVM): sudo $0"; return 1; }
    bench/run.sh --smoke
}

# The collection built and installed offline; and the drop-in cinderlib wheel
# (scripts/build_cinderlib_wheel.py) built into ${CINDERLIB_BUILD}/dist/ and
# installed into the venv as an operator installs it beside Cinder and os-brick:
# the peer-suite stages after this one run cinderlib's suite through it.
stage_build_install() {
    local tmp tarball module wheel rc=0
    tmp="$(mktemp -d /tmp/cinderlib-build.XXXXXX)"
    ansible-galaxy collection build --output-path "${tmp}" "${CINDERLIB_REPO}" >/dev/null || rc=$?
    tarball="$(find "${tmp}" -maxdepth 1 -name 'cinderlib-storage-*.tar.gz' -print -quit)"
    if [[ ${rc} -eq 0 && -n ${tarball} ]]; then
        cl_note "built $(basename "${tarball}")"
        # Offline: no Galaxy. PYTHONPATH and the configured collections path are
        # dropped, or ansible-galaxy sees the repo's own copy as installed.
        (cd "${tmp}" && env -u PYTHONPATH ANSIBLE_COLLECTIONS_PATH="${tmp}/x" \
            ansible-galaxy collection install "./$(basename "${tarball}")" -p "${tmp}/x" >/dev/null) || rc=$?
    else
        rc=1
    fi
    local installed="${tmp}/x/ansible_collections/cinderlib/storage"
    if [[ ${rc} -eq 0 ]]; then
        for module in plugins/modules/*.py roles/*/tasks/main.yml roles/runtime/files/constraints.txt meta/runtime.yml; do
            [[ -e ${module} ]] || continue
            if [[ ! -f ${installed}/${module} ]]; then
                printf 'missing from the installed collection: %s\n' "${module}" >&2
                rc=1
            fi
        done
        [[ ${rc} -ne 0 ]] || cl_note "installed offline into ${installed}"
    fi
    rm -rf "${tmp}"

    rm -f "${CINDERLIB_BUILD}"/dist/cinderlib-*.whl
    if wheel="$(python scripts/build_cinderlib_wheel.py "${CINDERLIB_BUILD}/dist")"; then
        cl_note "built ${wheel}"
        if pip install --quiet --disable-pip-version-check --no-deps --no-index --force-reinstall "${wheel}" \
            && python scripts/build_cinderlib_wheel.py --check-installed; then
            cl_note "installed $(basename "${wheel}") into ${VENV}"
        else
            rc=1
        fi
    else
        rc=1
    fi
    return "${rc}"
}

# Release notes: the fragments and changelogs/changelog.yaml lint, and a trial
# release in a throwaway copy holds every fragment (scripts/changelog_check.sh,
# antsibull-changelog in a venv of its own).
stage_changelog() {
    scripts/changelog_check.sh
}

# Galaxy's import checks on the built tarball (scripts/galaxy_import.sh,
# galaxy-importer in a venv of its own; its ansible-test step off).
stage_galaxy_importer() {
    scripts/galaxy_import.sh
}

"${CINDERLIB_REPO}/scripts/bootstrap.sh"
rm -rf "${BACKGROUND_DIR}"
# qemu and debootstrap come from apt, which the host stages may use too: install
# them before the vm scenario starts, so the two never wait on apt's lock.
if [[ ${CINDERLIB_SKIP_VM:-0} != 1 && ${EUID} -eq 0 ]]; then
    scripts/vm.sh host-packages
fi
start_background_stage molecule-vm stage_molecule_vm

run_stage ruff stage_ruff
run_stage ansible-lint stage_ansible_lint
run_stage runtime-pins stage_runtime_pins
run_stage pytest stage_pytest
# Before the peer-suite stages: they run cinderlib's suite through the installed drop-in wheel.
run_stage build+install stage_build_install
run_stage changelog stage_changelog
run_stage galaxy-importer stage_galaxy_importer
run_stage peer-suite stage_peer_suite
run_stage peer-suite-ceph stage_peer_suite_ceph
run_stage sanity stage_sanity
run_stage sanity-2.20 stage_sanity_core 2.20
run_stage sanity-2.21 stage_sanity_core 2.21
run_stage integration stage_integration
run_stage molecule stage_molecule
run_stage bench-smoke stage_bench_smoke
collect_background_stage molecule-vm

print_failed_stage_tails
cl_step "Summary"
printf '    %s\n' "${summary[@]}"
if [[ ${#failed_stages[@]} -gt 0 ]]; then
    printf 'FAILED: %d stage(s)\n' "${#failed_stages[@]}"
    exit 1
fi
printf 'OK: all stages passed or had nothing to check\n'
