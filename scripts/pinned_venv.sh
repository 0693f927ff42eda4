# shellcheck shell=bash
# Sourced: cl_pinned_venv, a venv that holds exactly the pins of a requirements file.

# cl_pinned_venv VENV PYTHON REQUIREMENTS: make VENV with PYTHON and install
# REQUIREMENTS (every package pinned) into it, unless it was already made from
# the same Python and the same file: a sha256 of both (`python -VV` and the
# file's text) is kept in VENV/.cinderlib-requirements.sha256, and a venv whose
# stamp differs is removed and made again. pip's warnings about this machine's
# missing local indexes are dropped; its errors stay.
cl_pinned_venv() {
    local venv=$1 python=$2 req=$3 stamp
    stamp="$({ "${python}" -VV; cat "${req}"; } | sha256sum | cut -d' ' -f1)" || return 1
    [[ "$(cat "${venv}/.cinderlib-requirements.sha256" 2>/dev/null)" == "${stamp}" ]] && return 0
    rm -rf "${venv}"
    "${python}" -m venv "${venv}" || return 1
    "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check -r "${req}" 2>&1 \
        | { grep -v -e 'is ignored: it is neither a file nor a directory' -e '^Looking in ' || true; }
    [[ ${PIPESTATUS[0]} -eq 0 ]] || return 1
    printf '%s\n' "${stamp}" >"${venv}/.cinderlib-requirements.sha256"
}
