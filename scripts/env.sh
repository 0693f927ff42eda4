# shellcheck shell=bash
# Sourced by the other scripts: where the venv and the build tree live.
#   CINDERLIB_VENV   the controller/test venv   (default /opt/cinderlib-storage/venv)
#   CINDERLIB_BUILD  scratch tree, git-ignored  (default <repo>/.build)
# The collection is reachable as ansible_collections.cinderlib.storage through
# $CINDERLIB_BUILD/collections (a symlink to the repo made by bootstrap.sh).

CINDERLIB_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
CINDERLIB_VENV="${CINDERLIB_VENV:-/opt/cinderlib-storage/venv}"
CINDERLIB_BUILD="${CINDERLIB_BUILD:-${CINDERLIB_REPO}/.build}"
CINDERLIB_COLLECTIONS="${CINDERLIB_BUILD}/collections"
VENV="${CINDERLIB_VENV}"
export CINDERLIB_REPO CINDERLIB_VENV CINDERLIB_BUILD CINDERLIB_COLLECTIONS VENV

case ":${PATH}:" in
    *":${VENV}/bin:"*) ;;
    *) PATH="${VENV}/bin:${PATH}" ;;
esac
export PATH

export ANSIBLE_COLLECTIONS_PATH="${CINDERLIB_COLLECTIONS}"

case ":${PYTHONPATH:-}:" in
    *":${CINDERLIB_COLLECTIONS}:"*) ;;
    *) PYTHONPATH="${CINDERLIB_COLLECTIONS}${PYTHONPATH:+:${PYTHONPATH}}" ;;
esac
export PYTHONPATH

# Progress lines shared by the scripts.
cl_step() { printf '==> %s\n' "$*"; }
cl_note() { printf '    %s\n' "$*"; }
cl_die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# cl_install_packages PKG...: install those of Debian's packages that are
# missing (as root); nothing, not even apt-get update, when none is.
cl_install_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'install ok installed' || missing+=("${pkg}")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    [[ ${EUID} -eq 0 ]] || cl_die "installing ${missing[*]} needs root"
    cl_step "Installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# cl_as_root "$0" "$@": go on as root. Root goes on; another user is asked
# for sudo (keeping CINDERLIB_* and CI settings); without sudo, a clear stop.
cl_as_root() {
    [[ ${EUID} -eq 0 ]] && return 0
    command -v sudo >/dev/null 2>&1 \
        || cl_die "$(basename "$1") needs root (loop devices, LVM) and sudo is not installed: run it as root"
    cl_note "$(basename "$1") needs root (loop devices, LVM): running it through sudo"
    exec sudo --preserve-env=CI,CINDERLIB_SKIP_VM,CINDERLIB_VM_PEER_SUITE,CINDERLIB_BUILD -- "$@"
}
