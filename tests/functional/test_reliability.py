# Reliability on real LVM: concurrent playbooks on one backend and one state store,
# processes killed half-way (CINDERLIB_TEST_KILL_AT) and what reconcile makes of
# them, drift between the store and the volume group.
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from functional_helpers import (
    assert_drift_only_reported,
    library,
    lv_names,
    lvm_command,
    run_adhoc,
    run_python,
    store_volumes,
    wait_for_files,
)

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKERS = 4
# Volumes per worker: every volume is two module runs (~2 s of CPU each), so the
# PostgreSQL run, which shows the same on another store, makes fewer.
VOLUMES_PER_WORKER = {'sqlite': 10, 'postgresql': 3}


@pytest.fixture(params=['sqlite', 'postgresql'])
def store(request, tmp_path) -> tuple[str, int]:
    """(URL of an empty state store, volumes per worker)."""
    if request.param == 'sqlite':
        url = 'sqlite:///%s' % (tmp_path / 'state.db')
    else:
        url = request.getfixturevalue('postgresql_store_url')
    return url, VOLUMES_PER_WORKER[request.param]


def test_concurrent_playbooks_on_one_backend_and_store(tmp_path, run_env, lvm_big_vg, store):
    store_url, count = store
    backend = dict(volume_driver='cinder.volume.drivers.lvm.LVMVolumeDriver', volume_group=lvm_big_vg,
                   target_protocol='iscsi', target_helper='lioadm', volume_backend_name='lvm-big',
                   lvm_type='default', volume_clear='none')
    barrier = tmp_path / 'barrier'
    barrier.mkdir()
    procs = []
    for worker in range(WORKERS):
        extra = {'cl_worker': 'w%d' % worker, 'cl_count': count, 'cl_backend': backend,
                 'cl_persistence': {'storage': 'db', 'connection': store_url}, 'cl_barrier': str(barrier)}
        procs.append(subprocess.Popen(
            [str(BIN / 'ansible-playbook'), '-i', 'localhost,', str(REPO / 'tests/playbooks/concurrent_volumes.yml'),
             '-e', json.dumps(extra)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=run_env))
    try:
        wait_for_files([barrier / ('created-w%d' % w) for w in range(WORKERS)], procs, timeout=400)
        # Every worker's create phase is over: each volume is recorded once and is an LV.
        records = store_volumes(store_url)
        names = sorted(r['display_name'] for r in records)
        assert names == sorted('w%d-%d' % (w, n) for w in range(WORKERS) for n in range(count))
        assert {r['status'] for r in records} == {'available'}
        assert sorted(lv_names(lvm_big_vg, run_env)) == sorted('volume-%s' % r['id'] for r in records)
    finally:
        (barrier / 'release').touch()
        outputs = [p.communicate(timeout=400)[0] for p in procs]
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out[-6000:]
        assert 'failed=0' in out
    assert store_volumes(store_url) == []
    assert lv_names(lvm_big_vg, run_env) == []


# -- crashes ---------------------------------------------------------------------------------
BIG_BACKEND = dict(volume_driver='cinder.volume.drivers.lvm.LVMVolumeDriver', target_protocol='iscsi',
                   target_helper='lioadm', volume_backend_name='lvm-big', lvm_type='default', volume_clear='none')


@pytest.fixture
def big(tmp_path, lvm_big_vg) -> dict:
    """Module options for the big VG, with a state store of the test's own."""
    return {'backend': dict(BIG_BACKEND, volume_group=lvm_big_vg),
            'persistence': {'storage': 'db', 'connection': 'sqlite:///%s' % (tmp_path / 'state.db')}}


def adhoc_cmd(module: str, args: dict) -> list[str]:
    return [str(BIN / 'ansible'), 'localhost', '-c', 'local', '-e', 'ansible_python_interpreter=%s' % sys.executable,
            '-m', module, '-a', json.dumps(args)]


def by_name(url: str) -> dict[str, dict]:
    return {r['display_name']: r for r in store_volumes(url)}


def url_of(big: dict) -> str:
    return big['persistence']['connection']


# Each run is killed at its point; all run at once (they work on different volumes).
KILLS = [
    ('volume.create.before_driver', 'cinderlib_volume', {'name': 'new-before', 'size': 1}),
    ('volume.create.after_driver', 'cinderlib_volume', {'name': 'new-after', 'size': 1}),
    ('volume.extend.before_driver', 'cinderlib_volume', {'name': 'ext-before', 'size': 2}),
    ('volume.extend.after_driver', 'cinderlib_volume', {'name': 'ext-after', 'size': 2}),
    ('volume.delete.before_driver', 'cinderlib_volume', {'name': 'del-before', 'state': 'absent'}),
    ('volume.delete.after_driver', 'cinderlib_volume', {'name': 'del-after', 'state': 'absent'}),
    ('snapshot.create.before_driver', 'cinderlib_snapshot', {'volume': 'snap-vol', 'name': 'snap'}),
]

# What resolve does with each: (action, status after, size after); None: the record is gone.
RESOLVED = {
    'new-before': ('removed', None, None),
    'new-after': ('adopted', 'available', 1),
    'ext-before': ('adopted', 'available', 1),
    'ext-after': ('adopted', 'available', 2),
    'del-before': ('adopted', 'available', 1),
    'del-after': ('removed', None, None),
}


def test_runs_killed_half_way_are_settled_by_reconcile(run_env, big, lvm_big_vg):
    proc = run_python(library(big, '''
        for name in ('ext-before', 'ext-after', 'del-before', 'del-after', 'snap-vol'):
            lvm.create_volume(1, name=name)
        '''), run_env)
    assert proc.returncode == 0, proc.stderr

    procs = [subprocess.Popen(adhoc_cmd('cinderlib.storage.' + module, dict(big, **args)), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=dict(run_env, CINDERLIB_TEST_KILL_AT=point))
             for point, module, args in KILLS]
    for proc, kill in zip(procs, KILLS, strict=True):
        point = kill[0]
        out = proc.communicate(timeout=300)[0]
        assert proc.returncode != 0 and 'FAILED' in out, (point, out)
    url = url_of(big)
    statuses = {name: r['status'] for name, r in by_name(url).items()}
    assert statuses == {'new-before': 'creating', 'new-after': 'creating', 'ext-before': 'extending',
                        'ext-after': 'extending', 'del-before': 'deleting', 'del-after': 'deleting',
                        'snap-vol': 'available'}
    lvs_after_kills = set(lv_names(lvm_big_vg, run_env))

    # A module run on such a volume says what to do.
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(big, name='new-after', size=1), run_env)
    assert rc != 0, out
    assert "Volume 'new-after' on backend 'lvm-big' has status 'creating'" in result['msg']
    assert 'Run cinderlib.storage.cinderlib_reconcile' in result['msg']

    # report: lists everything, changes nothing.
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts', dict(big, reconcile='report'), run_env)
    assert rc == 0, out
    report = result['reconcile']
    assert result['changed'] is False and report['mode'] == 'report' and report['actions'] == []
    found = {(t['kind'], t['name']): t for t in report['transitional']}
    assert {k: (t['status'], t['on_backend'], t['in_progress']) for k, t in found.items()} == {
        ('volume', 'new-before'): ('creating', False, False),
        ('volume', 'new-after'): ('creating', True, False),
        ('volume', 'ext-before'): ('extending', True, False),
        ('volume', 'ext-after'): ('extending', True, False),
        ('volume', 'del-before'): ('deleting', True, False),
        ('volume', 'del-after'): ('deleting', False, False),
        ('snapshot', 'snap'): ('creating', False, False),
    }
    assert report['drift'] == {'status': 'checked', 'reason': '', 'unknown_on_backend': [], 'missing_on_backend': []}
    assert {name: r['status'] for name, r in by_name(url).items()} == statuses
    assert set(lv_names(lvm_big_vg, run_env)) == lvs_after_kills

    # resolve: settles each from what the backend has, and says what it did.
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_reconcile', big, run_env)
    assert rc == 0, out
    report = result
    assert result['changed'] is True
    actions = {a['name']: a for a in report['actions'] if a['kind'] == 'volume'}
    assert {n: (a['action'], a['new_status'], a.get('size') if a['action'] == 'adopted' else None)
            for n, a in actions.items()} == RESOLVED
    [snapshot_action] = [a for a in report['actions'] if a['kind'] == 'snapshot']
    assert snapshot_action['action'] == 'removed' and snapshot_action['name'] == 'snap'
    assert report['drift']['unknown_on_backend'] == [] and report['drift']['missing_on_backend'] == []
    assert sorted((v['name'], v['status'], v['size']) for v in result['volumes']) == sorted(
        [(n, s, size) for n, (_action, s, size) in RESOLVED.items() if s] + [('snap-vol', 'available', 1)])

    # No ghost records, no orphan LVs: the store and the VG agree.
    records = by_name(url)
    assert sorted(records) == sorted([n for n, resolved in RESOLVED.items() if resolved[1]] + ['snap-vol'])
    assert {r['status'] for r in records.values()} == {'available'}
    assert sorted(lv_names(lvm_big_vg, run_env)) == sorted('volume-%s' % r['id'] for r in records.values())
    assert by_name(url)['ext-after']['size'] == 2

    # Every adopted volume works again: the modules delete them.
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_reconcile', big, run_env)
    assert rc == 0 and result['changed'] is False and result['actions'] == [], out
    proc = run_python(library(big, '''
        for volume in lvm.volumes:
            volume.delete()
        '''), run_env)
    assert proc.returncode == 0, proc.stderr
    assert store_volumes(url) == [] and lv_names(lvm_big_vg, run_env) == []


# -- drift -------------------------------------------------------------------------------------
def test_drift_is_reported_and_never_resolved(run_env, big, lvm_big_vg):
    proc = run_python(library(big, '''
        import json
        print(json.dumps({n: lvm.create_volume(1, name=n).id for n in ('kept', 'vanished')}))
        '''), run_env)
    assert proc.returncode == 0, proc.stderr
    ids = json.loads(proc.stdout.strip().splitlines()[-1])
    by_hand = str(uuid.uuid4())
    lvm_command('lvcreate', '--yes', '-an', '-Zn', '-n', 'volume-%s' % by_hand, '-L', '1g', lvm_big_vg, env=run_env)
    lvm_command('lvremove', '-f', '%s/volume-%s' % (lvm_big_vg, ids['vanished']), env=run_env)
    lvs = sorted(lv_names(lvm_big_vg, run_env))
    url = url_of(big)
    records = by_name(url)

    def unchanged():
        # Nothing deleted, nothing recorded.
        assert sorted(lv_names(lvm_big_vg, run_env)) == lvs
        assert by_name(url) == records

    assert_drift_only_reported(big, run_env, by_hand, ids['vanished'], unchanged)

    lvm_command('lvremove', '-f', '%s/volume-%s' % (lvm_big_vg, by_hand), env=run_env)
    proc = run_python(library(big, '''
        for volume in lvm.volumes:
            volume.delete()
        '''), run_env)
    assert proc.returncode == 0, proc.stderr
    assert store_volumes(url) == [] and lv_names(lvm_big_vg, run_env) == []
    # A deleted volume's lock file goes with it (root's default locks directory).
    assert not [i for i in ids.values() if Path('/var/lib/cinderlib/locks/cinder-cinderlib-volume-%s' % i).exists()]


@pytest.mark.requires_device_mapper
def test_snapshot_runs_killed_after_the_driver_are_adopted_or_removed(run_env, big, lvm_big_vg):
    proc = run_python(library(big, 'lvm.create_volume(1, name="origin").create_snapshot(name="old")\n'), run_env)
    assert proc.returncode == 0, proc.stderr
    for point, args in (('snapshot.create.after_driver', {'name': 'new'}),
                        ('snapshot.delete.after_driver', {'name': 'old', 'state': 'absent'})):
        proc = subprocess.run(adhoc_cmd('cinderlib.storage.cinderlib_snapshot', dict(big, volume='origin', **args)),
                              capture_output=True, text=True, env=dict(run_env, CINDERLIB_TEST_KILL_AT=point),
                              timeout=300, check=False)
        assert proc.returncode != 0, proc.stdout
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_reconcile', big, run_env)
    assert rc == 0, out
    assert {a['name']: a['action'] for a in result['actions']} == {'new': 'adopted', 'old': 'removed'}
    [volume] = result['volumes']
    assert [(s['name'], s['status']) for s in volume['snapshots']] == [('new', 'available')]
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume',
                                dict(big, name='origin', state='absent', cascade=True), run_env)
    assert rc == 0, out
    assert store_volumes(url_of(big)) == [] and lv_names(lvm_big_vg, run_env) == []
