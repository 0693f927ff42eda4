#!/usr/bin/env bash
# Runs an array API simulator (tests/simulators) on 127.0.0.1 and the playbook
# beside this script against it: present, grown and absent, each twice
# (changed, then unchanged), then a wrong password at -vvv, which
# must fail with a clear message and never show the password. The first
# present run (which exports a volume) runs at -vvv too: neither the array's
# password nor the CHAP passwords the XtremIO driver makes (its simulator
# requires CHAP) may show.
#   run.sh xtremio|kaminario
set -euo pipefail

array=$1
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The simulators are Python modules of the collection: find the directory holding
# ansible_collections/ (ansible-test runs a copy of the targets elsewhere, with
# ANSIBLE_COLLECTIONS_PATH naming the collection's tree).
collections=
IFS=: read -r -a paths <<<"${ANSIBLE_COLLECTIONS_PATH:-}"
for path in "${paths[@]}" "${here}/../../../../../../.."; do
    if [[ -n ${path} && -d ${path}/ansible_collections/cinderlib/storage/tests/simulators ]]; then
        collections="$(cd "${path}" && pwd)"
        break
    fi
done
[[ -n ${collections} ]] || { echo "FAIL: cinderlib.storage's tests/simulators not found" >&2; exit 1; }
work="$(mktemp -d "/tmp/cinderlib-it-${array}.XXXXXX")"
log="${OUTPUT_DIR:-${work}}/${array}-simulator.log"
password="sim-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
sim_pid=

cleanup() {
    if [[ -n ${sim_pid} ]]; then
        kill "${sim_pid}" 2>/dev/null || true
        wait "${sim_pid}" 2>/dev/null || true
    fi
    rm -rf "${work}"
}
trap cleanup EXIT

case ${array} in
    xtremio) login=xtremio_user; sim_options=(--chap) ;;
    kaminario) login=kaminario_user; sim_options=() ;;
    *) echo "usage: $0 xtremio|kaminario" >&2; exit 2 ;;
esac

SIMULATOR_PASSWORD=${password} PYTHONPATH="${collections}${PYTHONPATH:+:${PYTHONPATH}}" \
    python -m "ansible_collections.cinderlib.storage.tests.simulators.${array}" \
    --login "${login}" --port-file "${work}/port" --cert-dir "${work}/cert" "${sim_options[@]}" \
    >"${work}/simulator.out" 2>&1 &
sim_pid=$!
for _ in $(seq 1 300); do
    [[ -s ${work}/port ]] && break
    kill -0 "${sim_pid}" 2>/dev/null || { cat "${work}/simulator.out"; echo "FAIL: the simulator did not start" >&2; exit 1; }
    sleep 0.2
done
[[ -s ${work}/port ]] || { echo "FAIL: the simulator wrote no port" >&2; exit 1; }
address="127.0.0.1:$(cat "${work}/port")"

# Secrets go in a vars file, not on the command line.
vars_file="${work}/vars.json"
write_vars() {
    printf '{"array": "%s", "array_address": "%s", "array_password": "%s", "state_db": "%s", "array_state": "%s"}\n' \
        "${array}" "${address}" "$1" "${work}/state.db" "$2" >"${vars_file}"
}

# The shared helpers first: this target's play and expect below replace theirs.
# shellcheck source=tests/integration/targets/setup_recap/recap.sh
source "${here}/../setup_recap/recap.sh"

# The modules need the Python that has Cinder: the one running the tests.
interpreter="${ANSIBLE_TEST_PYTHON_INTERPRETER:-$(command -v python)}"
play() {
    ansible-playbook -i "${INVENTORY_PATH:-localhost,}" -c local "${here}/playbook.yml" -e "@${vars_file}" \
        -e "ansible_python_interpreter=${interpreter}" "$@" >"${log}" 2>&1
}

# expect CHANGED(yes|no) STATE [ANSIBLE-PLAYBOOK OPTIONS]: run the playbook and check its recap.
expect() {
    write_vars "${password}" "$2"
    expect_recap "$1" "${array} $2" "${log}" play "${@:3}"
}

# The CHAP passwords the array keeps for its initiators (XtremIO), one a line.
chap_passwords() {
    SIMULATOR_PASSWORD=${password} python - "${address}" "${login}" <<'EOF'
import json, os, ssl, sys, urllib.request
address, login = sys.argv[1:]
context = ssl.create_default_context()
context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
manager.add_password(None, 'https://' + address, login, os.environ['SIMULATOR_PASSWORD'])
opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context),
                                     urllib.request.HTTPBasicAuthHandler(manager))
with opener.open('https://%s/api/json/v2/types/initiators?full=1' % address, timeout=60) as answer:
    for initiator in json.load(answer)['initiators']:
        for key in ('chap-authentication-initiator-password', 'chap-discovery-initiator-password'):
            if initiator.get(key):
                print(initiator[key])
EOF
}

expect yes present -vvv
secrets=("${password}")
if [[ ${array} == xtremio ]]; then
    mapfile -t chap < <(chap_passwords)
    [[ ${#chap[@]} -eq 2 ]] || { echo "FAIL: expected 2 CHAP passwords on the array, got ${#chap[@]}" >&2; exit 1; }
    secrets+=("${chap[@]}")
fi
for secret in "${secrets[@]}"; do
    if grep -q -F -e "${secret}" "${log}"; then
        echo "FAIL: a password shows in the -vvv output of ${array} present" >&2
        exit 1
    fi
done
grep -q '"conn_info"' "${log}" || { cat "${log}"; echo "FAIL: no conn_info in the -vvv output" >&2; exit 1; }
echo "ok: ${array} present at -vvv shows no password (${#secrets[@]} checked)"
expect no present
expect yes grown
expect no grown
expect yes absent
expect no absent

wrong="Wr0ng-${password}"
write_vars "${wrong}" present
if play -vvv; then
    cat "${log}"
    echo "FAIL: ${array} accepted a wrong password" >&2
    exit 1
fi
grep -q "could not be initialised by its driver" "${log}" || { cat "${log}"; exit 1; }
if grep -q -e "${wrong}" -e "${password}" "${log}"; then
    echo "FAIL: a password shows in the -vvv output of ${array}" >&2
    exit 1
fi
echo "ok: ${array} wrong password refused clearly, no password in the -vvv output"
