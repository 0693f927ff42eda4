#!/usr/bin/env bash
# Prepare this machine for the collection's tests and jobs (idempotent):
#   - OS packages (Debian/Ubuntu): lvm2, sudo, shellcheck, postgresql, redis-server;
#     python3-venv only if needed. PostgreSQL is installed without its "main"
#     cluster and redis-server without starting or enabling its service: tests
#     start private servers of their own (tests/conftest.py), none is enabled.
#   - the venv at ${CINDERLIB_VENV:-/opt/cinderlib-storage/venv} with the pinned
#     requirements; pip is skipped while the requirement files are unchanged.
#     It is also the managed node's venv of the runtime role (roles/runtime,
#     same default path): the role's pins come from requirements/constraints.txt
#     (scripts/runtime_pins.py), so it finds everything here and keeps this
#     venv; it adds the drivers' OS packages (lvm2, targetcli-fb, ...) itself.
#   - ${CINDERLIB_BUILD:-<repo>/.build}/collections/ansible_collections/cinderlib/storage
#     -> <repo>, so ansible and pytest find cinderlib.storage
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "${CINDERLIB_REPO}"

# --- OS packages -----------------------------------------------------------
os_packages=(lvm2 sudo shellcheck postgresql redis-server)

missing_packages() {
    local pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'install ok installed'; then
            printf '%s\n' "${pkg}"
        fi
    done
}

apt_updated=0
apt_install() {
    [[ $# -gt 0 ]] || return 0
    if [[ ${EUID} -ne 0 ]]; then
        cl_die "missing OS packages: $*; run as root (sudo $0)"
    fi
    cl_step "Installing OS packages: $*"
    export DEBIAN_FRONTEND=noninteractive
    local log
    log="$(mktemp /tmp/cinderlib-apt.XXXXXX.log)"
    if [[ ${apt_updated} -eq 0 ]]; then
        apt-get update -qq >"${log}" 2>&1 || { tail -n 20 "${log}" >&2; cl_die "apt-get update failed (log: ${log})"; }
        apt_updated=1
    fi
    apt-get install -y -qq --no-install-recommends "$@" >"${log}" 2>&1 \
        || { tail -n 20 "${log}" >&2; cl_die "apt-get install $* failed (log: ${log})"; }
    rm -f "${log}"
}

# On first install postgresql-common creates a "main" cluster and starts it
# where services may start. The tests need neither: a drop-in turns that off
# for the duration of the install only.
NO_MAIN_CLUSTER_DIR=/etc/postgresql-common/createcluster.d
NO_MAIN_CLUSTER_CONF=${NO_MAIN_CLUSTER_DIR}/zz-cinderlib-bootstrap.conf
made_cluster_dir=0
remove_no_main_cluster() {
    rm -f "${NO_MAIN_CLUSTER_CONF}"
    if [[ ${made_cluster_dir} -eq 1 ]]; then
        rmdir --ignore-fail-on-non-empty "${NO_MAIN_CLUSTER_DIR}" 2>/dev/null || true
    fi
}
# redis-server's package starts and enables its system service; the tests run
# their own server. Debian's policy-rc.d (exit 101: "action forbidden") keeps
# the service from starting during the install; it is disabled afterwards. An
# existing policy-rc.d (containers have one) is left as it is.
POLICY_RC_D=/usr/sbin/policy-rc.d
made_policy_rc_d=0
remove_policy_rc_d() {
    if [[ ${made_policy_rc_d} -eq 1 ]]; then
        rm -f "${POLICY_RC_D}"
        made_policy_rc_d=0
    fi
}
install_cleanup() {
    remove_no_main_cluster
    remove_policy_rc_d
}
install_os_packages() {
    trap install_cleanup EXIT
    if [[ ${EUID} -eq 0 ]] && printf '%s\n' "$@" | grep -qx postgresql; then
        if [[ ! -d ${NO_MAIN_CLUSTER_DIR} ]]; then
            mkdir -p "${NO_MAIN_CLUSTER_DIR}"
            made_cluster_dir=1
        fi
        printf '# Written by cinderlib.storage scripts/bootstrap.sh during apt-get install.\n%s\n' \
            'create_main_cluster = false' >"${NO_MAIN_CLUSTER_CONF}"
    fi
    local redis=0
    if [[ ${EUID} -eq 0 ]] && printf '%s\n' "$@" | grep -qx redis-server; then
        redis=1
        if [[ ! -e ${POLICY_RC_D} ]]; then
            printf '#!/bin/sh\n# Written by cinderlib.storage scripts/bootstrap.sh during apt-get install.\nexit 101\n' \
                >"${POLICY_RC_D}"
            chmod 0755 "${POLICY_RC_D}"
            made_policy_rc_d=1
        fi
    fi
    apt_install "$@"
    install_cleanup
    trap - EXIT
    if [[ ${redis} -eq 1 ]] && command -v systemctl >/dev/null; then
        systemctl disable redis-server.service >/dev/null 2>&1 || true
    fi
}

if command -v dpkg-query >/dev/null && command -v apt-get >/dev/null; then
    mapfile -t wanted < <(missing_packages "${os_packages[@]}")
    if [[ ${#wanted[@]} -gt 0 ]]; then
        install_os_packages "${wanted[@]}"
    else
        cl_step "OS packages present: ${os_packages[*]}"
    fi
else
    cl_step "No apt/dpkg here: make sure ${os_packages[*]} are installed"
fi

# --- Python venv -----------------------------------------------------------
pick_python() {
    if [[ -n ${CINDERLIB_PYTHON:-} ]]; then
        printf '%s\n' "${CINDERLIB_PYTHON}"
    elif python3.11 -c '' >/dev/null 2>&1; then
        printf 'python3.11\n'
    else
        printf 'python3\n'
    fi
}
PYTHON="$(pick_python)"
command -v "${PYTHON}" >/dev/null || cl_die "${PYTHON} not found (set CINDERLIB_PYTHON)"
py_version="$("${PYTHON}" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ ${py_version} != 3.11 ]]; then
    cl_note "WARNING: ${PYTHON} is Python ${py_version}; the pins in requirements/ are made for 3.11"
fi

if [[ -x ${VENV}/bin/python ]] && ! "${VENV}/bin/python" -c 'import sys' 2>/dev/null; then
    cl_step "Removing broken venv ${VENV}"
    rm -rf "${VENV}"
fi
if [[ ! -x ${VENV}/bin/python ]]; then
    cl_step "Creating venv ${VENV} (${PYTHON}, Python ${py_version})"
    mkdir -p "$(dirname "${VENV}")"
    if ! "${PYTHON}" -m venv "${VENV}" >/dev/null 2>&1; then
        rm -rf "${VENV}"
        apt_install python3-venv "python${py_version}-venv"
        "${PYTHON}" -m venv "${VENV}"
    fi
fi

req_files=(requirements/runtime.txt requirements/test.txt requirements/constraints.txt)
stamp_file="${VENV}/.cinderlib-requirements.sha256"
stamp="$({ "${VENV}/bin/python" -VV; cat "${req_files[@]}"; } | sha256sum | cut -d' ' -f1)"
if [[ -f ${stamp_file} && "$(cat "${stamp_file}")" == "${stamp}" ]]; then
    cl_step "Venv ${VENV} up to date with requirements/"
else
    cl_step "Installing requirements into ${VENV} (this takes a few minutes the first time)"
    log="$(mktemp /tmp/cinderlib-pip.XXXXXX.log)"
    if ! "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check \
            -r requirements/test.txt -c requirements/constraints.txt >"${log}" 2>&1; then
        grep -v 'is ignored: it is neither a file nor a directory' "${log}" | tail -n 40 >&2
        cl_die "pip install failed (full log: ${log})"
    fi
    rm -f "${log}"
    printf '%s\n' "${stamp}" >"${stamp_file}"
fi

# --- collections path ------------------------------------------------------
link="${CINDERLIB_COLLECTIONS}/ansible_collections/cinderlib/storage"
if [[ -e ${link} && ! -L ${link} ]]; then
    cl_die "${link} exists and is not a symlink; remove it"
fi
if [[ "$(readlink "${link}" 2>/dev/null || true)" != "${CINDERLIB_REPO}" ]]; then
    mkdir -p "$(dirname "${link}")"
    ln -sfn "${CINDERLIB_REPO}" "${link}"
fi
cl_step "Collection cinderlib.storage -> ${link}"
