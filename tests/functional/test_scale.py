# Issue 19: many hosts at once on one shared backend and state store. An
# inventory of CINDERLIB_SCALE_HOSTS hosts (20), each running its tasks in a
# process of its own (ansible-playbook --forks = the host count), creates,
# extends and deletes CINDERLIB_SCALE_VOLUMES volumes per host (1 here; 10
# in bench/scale.sh) on one LVM backend, with a PostgreSQL store and Redis
# locks, or with one SQLite store and file locks (all the hosts are on this
# node, as a SQLite store must be). Between the phases the test checks that
# each volume is recorded once, with its LV, at the right size; at the end,
# that nothing is left. The figures (wall time per phase, tasks per second)
# go to CINDERLIB_SCALE_REPORT when set; no timing is asserted.
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from functional_helpers import lv_names, store_volumes, wait_for_files

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HOSTS = int(os.environ.get('CINDERLIB_SCALE_HOSTS', '20'))
VOLUMES = int(os.environ.get('CINDERLIB_SCALE_VOLUMES', '1'))
# Which stores run (bench/scale.sh runs both); CI runs the shared one.
STORES = os.environ.get('CINDERLIB_SCALE_STORES', 'postgresql').split(',')
BACKEND = dict(volume_driver='cinder.volume.drivers.lvm.LVMVolumeDriver', target_protocol='iscsi',
               target_helper='lioadm', volume_backend_name='lvm-scale', lvm_type='default', volume_clear='none')
PHASE_TIMEOUT = 3600


def lv_sizes(vg: str, env: dict) -> dict[str, int]:
    """LV name -> size in GiB."""
    out = subprocess.run(['lvs', '--noheadings', '--units', 'g', '--nosuffix', '-o', 'lv_name,lv_size', vg],
                         capture_output=True, text=True, env=env, check=True)
    return {name: round(float(size)) for name, size in (line.split() for line in out.stdout.splitlines() if line)}


@pytest.fixture(params=['postgresql', 'sqlite'])
def shared_store(request, tmp_path) -> dict:
    """Module options for the store and locks every host shares."""
    if request.param not in STORES:
        pytest.skip('CINDERLIB_SCALE_STORES=%s leaves the %s store out (bench/scale.sh runs both)'
                    % (','.join(STORES), request.param))
    if request.param == 'sqlite':
        return {'cl_persistence': {'storage': 'db', 'connection': 'sqlite:///%s' % (tmp_path / 'state.db')}}
    return {'cl_persistence': {'storage': 'db', 'connection': request.getfixturevalue('postgresql_store_url')},
            'cl_coordination_url': request.getfixturevalue('redis_url')}


def test_many_hosts_create_extend_and_delete_on_one_backend(lvm_big_vg, run_env, shared_store, tmp_path):
    hosts = ['scale-%02d' % n for n in range(1, HOSTS + 1)]
    inventory = tmp_path / 'inventory.yml'
    inventory.write_text(json.dumps({'all': {'hosts': {h: {} for h in hosts}, 'vars': {
        'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}}}), encoding='utf-8')
    barrier = tmp_path / 'barrier'
    barrier.mkdir()
    extra = dict(shared_store, cl_count=VOLUMES, cl_backend=dict(BACKEND, volume_group=lvm_big_vg),
                 cl_barrier=str(barrier))
    (tmp_path / 'extra.json').write_text(json.dumps(extra), encoding='utf-8')
    url = extra['cl_persistence']['connection']
    names = sorted('%s-%d' % (h, n) for h in hosts for n in range(VOLUMES))

    def check(size: int) -> None:
        records = store_volumes(url)
        assert sorted(r['display_name'] for r in records) == names  # none lost, none twice
        assert {(r['status'], r['size']) for r in records} == {('available', size)}
        assert lv_sizes(lvm_big_vg, run_env) == {'volume-%s' % r['id']: size for r in records}

    started = time.monotonic()
    proc = subprocess.Popen([str(BIN / 'ansible-playbook'), '-i', str(inventory), '--forks', str(HOSTS),
                             str(REPO / 'tests/playbooks/scale_volumes.yml'), '-e', '@%s' % (tmp_path / 'extra.json')],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=run_env)
    phases = {}
    try:
        for phase, size in (('created', 1), ('extended', 2)):
            wait_for_files([barrier / phase], [proc], timeout=PHASE_TIMEOUT)
            phases[phase] = time.monotonic() - started
            check(size)
            paused = time.monotonic()
            (barrier / ('release-' + phase)).touch()
            started += time.monotonic() - paused  # the checks are not the hosts' time
        out = proc.communicate(timeout=PHASE_TIMEOUT)[0]
    finally:
        for phase in ('created', 'extended'):
            (barrier / ('release-' + phase)).touch()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    total = time.monotonic() - started
    assert proc.returncode == 0, out[-8000:]
    recap = [line for line in out.splitlines() if line.startswith('scale-')]
    assert len(recap) == HOSTS and all('failed=0' in line and 'unreachable=0' in line for line in recap), out[-8000:]
    assert store_volumes(url) == []
    assert lv_names(lvm_big_vg, run_env) == []

    tasks = 3 * HOSTS * VOLUMES
    report = {'store': 'postgresql+redis' if 'cl_coordination_url' in extra else 'sqlite+file locks',
              'hosts': HOSTS, 'forks': HOSTS, 'volumes_per_host': VOLUMES, 'changing_tasks': tasks,
              'failures': 0, 'lost_or_duplicated': 0, 'lvs_left': 0,
              'create_s': round(phases['created'], 1), 'extend_s': round(phases['extended'] - phases['created'], 1),
              'delete_s': round(total - phases['extended'], 1), 'wall_s': round(total, 1),
              'tasks_per_s': round(tasks / total, 2), 'cpus': os.cpu_count(),
              'load_at_end': open('/proc/loadavg', encoding='ascii').read().split()[0]}
    print('scale run: %s' % json.dumps(report))
    if os.environ.get('CINDERLIB_SCALE_REPORT'):
        with open(os.environ['CINDERLIB_SCALE_REPORT'], 'a', encoding='utf-8') as handle:
            handle.write(json.dumps(report) + '\n')
