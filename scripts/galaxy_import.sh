#!/usr/bin/env bash
# The galaxy-importer stage of scripts/test.sh; runs alone too: scripts/galaxy_import.sh
# Builds the collection tarball as a publisher does (ansible-galaxy collection build,
# into a throwaway directory) and runs galaxy-importer on it, the checks Galaxy runs on
# an upload: galaxy.yml and meta/runtime.yml, a README for every role, ansible-doc on
# every plugin, ansible-lint on the content (offline). It fails when the import fails.
# galaxy-importer runs from its own venv (.build/venv-galaxy-importer, the pins of
# requirements/galaxy-importer.txt, made again when they change), with its own
# ansible-core and ansible-lint.
# Its settings (scripts/galaxy-importer.cfg): run_ansible_test off (Galaxy's
# ansible-test step runs sanity in a container image it pulls; the sanity stages run
# ansible-test sanity here, on 2.19, 2.20 and 2.21); ansible-lint on, offline (a few
# seconds, and its findings are what Galaxy shows).
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# shellcheck source=scripts/pinned_venv.sh
source "${CINDERLIB_REPO}/scripts/pinned_venv.sh"
cd "${CINDERLIB_REPO}"

venv="${CINDERLIB_BUILD}/venv-galaxy-importer"
cl_pinned_venv "${venv}" python3 requirements/galaxy-importer.txt || cl_die "could not make ${venv}"

tmp="$(mktemp -d /tmp/cinderlib-galaxy-import.XXXXXX)"
trap 'rm -rf "${tmp}"' EXIT
ansible-galaxy collection build --output-path "${tmp}" "${CINDERLIB_REPO}" >/dev/null
tarball="$(find "${tmp}" -maxdepth 1 -name 'cinderlib-storage-*.tar.gz' -print -quit)"
[[ -n ${tarball} ]] || cl_die "ansible-galaxy collection build made no tarball in ${tmp}"
cl_note "built $(basename "${tarball}")"

# Its own venv first on PATH (its ansible-doc and ansible-lint), none of the
# repo's paths (Ansible would see the repo's own copy of the collection); it
# writes importer_result.json into the current directory.
# Its "Loading <plugin>" lines, one per file, are left out of the output.
rc=0
(cd "${tmp}" && env -u PYTHONPATH -u ANSIBLE_COLLECTIONS_PATH PATH="${venv}/bin:${PATH}" \
    GALAXY_IMPORTER_CONFIG="${CINDERLIB_REPO}/scripts/galaxy-importer.cfg" ANSIBLE_LOCAL_TEMP="${tmp}/ansible-tmp" \
    "${venv}/bin/python" -m galaxy_importer.main "${tarball}") >"${tmp}/import.log" 2>&1 || rc=$?
grep -v -e '^Loading ' "${tmp}/import.log" || true
if [[ ${rc} -eq 0 ]]; then
    cl_note "galaxy-importer $("${venv}/bin/python" -c 'from importlib.metadata import version; print(version("galaxy-importer"))') imports $(basename "${tarball}")"
fi
exit "${rc}"
