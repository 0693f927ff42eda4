#!/usr/bin/env bash
# Ceph RBD against LVM (issue 16), in one run in the VM of scripts/vm.sh (the
# LVM clone copies its data through device-mapper; the CI host's kernel has
# none):   sudo ./bench/rbd_vm.sh
# 1. clone of a 10 GiB volume: RBD (a copy-on-write child) vs the LVM driver
#    (thick: dd of every byte), with a raw dd of the same size as the floor;
# 2. creates and deletes per second of 1 GiB volumes, RBD vs LVM.
# Boots the VM (building its image first unless cached), runs
# bench/playbooks/rbd_vm.yml on it, powers it off. Output: a table on stdout,
# bench/out/rbd.json (raw) and bench/out/rbd.md. Takes a while under CPU
# emulation: the LVM clone writes 10 GiB.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR/.. source=scripts/env.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
cd "${CINDERLIB_REPO}"
[[ ${EUID} -eq 0 ]] || cl_die "needs root (the VM's image and qemu): sudo $0"
OUT="${CINDERLIB_REPO}/bench/out"
mkdir -p "${OUT}"
rm -f "${OUT}/rbd.json"

scripts/vm.sh start
trap 'scripts/vm.sh stop >/dev/null 2>&1 || true' EXIT
status="$(scripts/vm.sh status)"
port="$(sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"${status}")"
key="$(sed -n 's/.*key=\([^ ]*\).*/\1/p' <<<"${status}")"

cl_step "bench: RBD against LVM in the VM"
start=${SECONDS}
# A named host: with 127.0.0.1 in the inventory, the play's delegate_to
# localhost would mean the VM; host variables, not extra vars, so that the
# tasks delegated to the controller keep its own connection and Python.
inventory="${OUT}/rbd-vm.inventory"
printf 'cinderlib-bench-vm ansible_host=127.0.0.1 ansible_port=%s ansible_user=root ansible_ssh_private_key_file=%s ansible_python_interpreter=/usr/bin/python3\n' \
    "${port}" "${key}" >"${inventory}"
ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_NOCOLOR=1 ansible-playbook -i "${inventory}" bench/playbooks/rbd_vm.yml \
    >"${OUT}/rbd-vm.log" 2>&1 \
    || { tail -n 40 "${OUT}/rbd-vm.log" >&2; cl_die "the benchmark play failed (${OUT}/rbd-vm.log)"; }
cl_note "measured in $((SECONDS - start)) s"

"${VENV}/bin/python" - "${OUT}/rbd.json" "${OUT}/rbd.md" <<'PY'
import json
import sys

r = json.load(open(sys.argv[1]))
gib = r['clone_gib']
rows = [
    ('clone of a %d GiB volume (median)' % gib, r['rbd_clone_median_s'], r['lvm_clone_median_s'], 's'),
    ('creates per second (1 GiB, %d)' % r['rbd_creates']['count'], r['rbd_creates']['creates_per_s'],
     r['lvm_creates']['creates_per_s'], '/s'),
    ('deletes per second (1 GiB, %d)' % r['rbd_creates']['count'], r['rbd_creates']['deletes_per_s'],
     r['lvm_creates']['deletes_per_s'], '/s'),
]
lines = ['| benchmark | RBD | LVM | RBD / LVM |', '|---|---|---|---|']
for name, rbd, lvm, unit in rows:
    lines.append('| %s | %.3f %s | %.3f %s | %.3f |' % (name, rbd, unit, lvm, unit, rbd / lvm))
lines.append('')
lines.append('RBD clones (s): %s; every clone a copy-on-write child of its source: %s' % (
    ', '.join('%.3f' % t for t in r['rbd_clone_s']), r['rbd_clones_are_children']))
lines.append('LVM clones (s): %s; raw dd of %d GiB from the source LV into the clone LV (the floor): %.3f s' % (
    ', '.join('%.3f' % t for t in r['lvm_clone_s']), gib, r['raw_dd_s']))
text = '\n'.join(lines) + '\n'
open(sys.argv[2], 'w').write(text)
print(text)
if not r['rbd_clones_are_children']:
    sys.exit('an RBD clone was not a copy-on-write child of its source')
PY
