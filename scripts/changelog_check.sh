#!/usr/bin/env bash
# The changelog stage of scripts/test.sh; runs alone too: scripts/changelog_check.sh
# From antsibull-changelog's own venv (.build/venv-antsibull-changelog, the pins of
# requirements/antsibull-changelog.txt, made again when they change):
#   - `antsibull-changelog lint`: every fragment in changelogs/fragments/ parses, with
#     known sections, each a list (release_summary a string);
#   - `antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml`;
#   - a trial release in a throwaway copy of the files git would commit, as a maintainer
#     cuts one (CONTRIBUTING.md, Releases): `antsibull-changelog release` with galaxy.yml's
#     version and a fixed date, whose CHANGELOG.md must hold every non-trivial fragment's
#     text. The repository itself is not touched (a release there would consume the
#     fragments).
# The release lists new modules and plugins with ansible-doc: the harness venv's (on PATH
# after env.sh), so that venv's ansible-core needs no second copy here.
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# shellcheck source=scripts/pinned_venv.sh
source "${CINDERLIB_REPO}/scripts/pinned_venv.sh"
cd "${CINDERLIB_REPO}"

venv="${CINDERLIB_BUILD}/venv-antsibull-changelog"
cl_pinned_venv "${venv}" python3 requirements/antsibull-changelog.txt || cl_die "could not make ${venv}"
changelog="${venv}/bin/antsibull-changelog"
cl_note "antsibull-changelog $("${changelog}" --version)"

rc=0
"${changelog}" lint || rc=1
"${changelog}" lint-changelog-yaml changelogs/changelog.yaml || rc=1
[[ ${rc} -eq 0 ]] && cl_note "the fragments and changelogs/changelog.yaml lint clean"

# The trial release. ansible-doc finds the copy's plugins only under
# .../ansible_collections/NAMESPACE/NAME; the repo's own path settings are dropped.
version="$(python3 -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')"
if ! compgen -G 'changelogs/fragments/*.y*ml' >/dev/null; then
    cl_note "no fragments: nothing to release"
    exit "${rc}"
fi
if python3 -c 'import sys, yaml; sys.exit(sys.argv[1] not in (yaml.safe_load(open("changelogs/changelog.yaml"))["releases"] or {}))' \
    "${version}"; then
    printf 'galaxy.yml version %s is already released in changelogs/changelog.yaml: bump it for the fragments to go into a new release\n' \
        "${version}" >&2
    exit 1
fi
tmp="$(mktemp -d /tmp/cinderlib-changelog.XXXXXX)"
trap 'rm -rf "${tmp}"' EXIT
copy="${tmp}/ansible_collections/cinderlib/storage"
mkdir -p "${copy}"
git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' file; do if [[ -e ${file} ]]; then printf '%s\0' "${file}"; fi; done \
    | tar --null --no-recursion -T - -cf - | tar -C "${copy}" -xf -
output="$(sed -n 's/^changelog_filename_template: *\.\.\/\(.*\)$/\1/p' changelogs/config.yaml)"
[[ -n ${output} ]] || cl_die "changelogs/config.yaml has no changelog_filename_template ../NAME"
if (cd "${copy}" && env -u PYTHONPATH -u ANSIBLE_COLLECTIONS_PATH "${changelog}" release \
    --version "${version}" --date 2000-01-01); then
    cl_note "a trial release ${version} in a throwaway copy wrote ${output} ($(wc -l <"${copy}/${output}") lines)"
    "${venv}/bin/python" scripts/changelog_check.py changelogs/fragments "${copy}/${output}" trivial || rc=1
else
    printf 'antsibull-changelog release %s failed in a throwaway copy of the repository (above)\n' "${version}" >&2
    rc=1
fi
exit "${rc}"
