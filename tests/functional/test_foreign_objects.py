# What the collection did not make is never removed, shrunk or overwritten
# (issue 26), on real LVM and the real Ceph cluster: a backend object that
# already carries the name a create computes (a hand-made LV or RBD image, an
# old Cinder's) is refused before anything is recorded, and a record whose
# object the collection did not make only loses its record. Each object is
# checked afterwards: still there, the same size.
from __future__ import annotations

import json
import subprocess
import uuid

import pytest
from functional_helpers import images, lvm_command, rbd, run_adhoc, run_python

TAKEN = "already has an object named '%s', which this collection did not make"


def lv_size(vg: str, lv: str, env: dict) -> int | None:
    """An LV's size in bytes, None when the VG has no such LV."""
    proc = subprocess.run(['lvs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'lv_size', '%s/%s' % (vg, lv)],
                          capture_output=True, text=True, env=env, check=False)
    return int(proc.stdout.strip()) if proc.returncode == 0 else None


def lvcreate(vg: str, lv: str, size: str, env: dict) -> None:
    # Inactive and not zeroed, as metadata-only LVM needs.
    lvm_command('lvcreate', '--yes', '-an', '-Zn', '-n', lv, '-L', size, vg, env=env)


def lvremove(vg: str, lv: str, env: dict) -> None:
    lvm_command('lvremove', '-f', '%s/%s' % (vg, lv), env=env)


@pytest.fixture
def opts(tmp_path, lvm_backend) -> dict:
    return {'backend': lvm_backend,
            'persistence': {'storage': 'db', 'connection': 'sqlite:///%s' % (tmp_path / 'state.db')}}


def known_volumes(opts: dict, env: dict) -> list[dict]:
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts', opts, env)
    assert rc == 0, out
    return result['ansible_facts']['cinderlib_backends'][opts['backend']['volume_backend_name']]['volumes']


def test_a_hand_made_lv_of_the_computed_name_is_refused_and_survives(opts, run_env, lvm_backend_env):
    vg, volume_id = lvm_backend_env['vg'], str(uuid.uuid4())
    lv = 'volume-%s' % volume_id
    lvcreate(vg, lv, '1g', run_env)
    try:
        size = lv_size(vg, lv, run_env)
        task = dict(opts, name='legacy', id=volume_id, size=1)
        for check in (True, False):
            rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', task, run_env, check=check)
            assert rc != 0, out
            assert TAKEN % lv in result['msg'] and 'Nothing was recorded or changed' in result['msg'], out
            assert 'Traceback' not in result['msg']
        assert known_volumes(opts, run_env) == []
        # Following the module's advice of old (state=absent) now finds nothing to remove.
        for check in (True, False):
            rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume',
                                        dict(opts, name='legacy', id=volume_id, state='absent'), run_env, check=check)
            assert rc == 0 and result['changed'] is False, out
        # A clone, and the library's own create, of that id are refused the same way.
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(opts, name='src', size=1), run_env)
        assert rc == 0, out
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume',
                                    dict(opts, name='copy', id=volume_id, source_volume='src'), run_env)
        assert rc != 0 and TAKEN % lv in result['msg'], out
        proc = run_python('''
from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    BackendObjectExists, InvalidRequest)
cinderlib.setup(persistence_config=%r)
lvm = cinderlib.Backend(**%r)
try:
    lvm.create_volume(1, name='lib', id=%r)
except BackendObjectExists as exc:
    print('refused', isinstance(exc, InvalidRequest), exc.name, sorted(v.display_name for v in lvm.volumes))
''' % (opts['persistence'], opts['backend'], volume_id), run_env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ['refused', 'True', lv, "['src']"]
        # Reconcile reports it as drift and settles nothing.
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_reconcile', opts, run_env)
        assert rc == 0 and result['changed'] is False and result['actions'] == [], out
        assert [u['backend_name'] for u in result['drift']['unknown_on_backend']] == [lv]
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(opts, name='src', state='absent'),
                                    run_env)
        assert rc == 0, out
        assert lv_size(vg, lv, run_env) == size
    finally:
        lvremove(vg, lv, run_env)


def test_a_failed_create_recorded_by_an_earlier_version_loses_only_its_record(
        opts, run_env, lvm_backend_env, module_runner):
    # What the steps left in the store before this fix: a record 'error',
    # with nothing saying whether the hand-made LV of its name was the collection's.
    vg, volume_id = lvm_backend_env['vg'], str(uuid.uuid4())
    lv = 'volume-%s' % volume_id
    run_module = module_runner(run_env)
    lvcreate(vg, lv, '1g', run_env)
    try:
        size = lv_size(vg, lv, run_env)
        code = '''
from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
cinderlib.setup(persistence_config=%r)
lvm = cinderlib.Backend(**%r)
for name in ('legacy', 'library'):
    vid = %r if name == 'legacy' else %r
    cinderlib.Backend.persistence.put('volume', {
        'id': vid, 'backend': 'lvm', 'display_name': name, 'size': 1, 'status': 'error', 'pool_name': 'lvm',
        'host': 'cinderlib@lvm#lvm', 'attach_status': 'detached', 'deleted': False, 'metadata': {}})
[volume] = lvm.volumes_filtered(volume_name='library')
print('owned', volume.owned)
volume.delete()
print('left', sorted(v.display_name for v in lvm.volumes))
'''
        library_id = str(uuid.uuid4())
        library_lv = 'volume-%s' % library_id
        lvcreate(vg, library_lv, '1g', run_env)
        proc = run_python(code % (opts['persistence'], opts['backend'], volume_id, library_id), run_env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ['owned', 'False', 'left', "['legacy']"]
        assert lv_size(vg, library_lv, run_env) == size  # Volume.delete() forgot the record only

        absent = dict(opts, name='legacy', state='absent', _ansible_diff=True)
        result, _heavy = run_module(absent, check_mode=True)
        assert result['changed'] is True, result
        assert result['diff']['before']['backend_objects'] == [lv]
        assert result['diff']['after'] == {'backend_objects': [lv]}
        warnings = json.dumps(result['warnings'])
        assert "the backend's object named '%s'" % lv in warnings and 'this collection did not make it' in warnings
        result, _heavy = run_module(absent)
        assert result['changed'] is True and result['diff']['after'] == {'backend_objects': [lv]}, result
        assert 'is left as it is' in json.dumps(result['warnings']), result
        assert known_volumes(opts, run_env) == []
        assert lv_size(vg, lv, run_env) == size
    finally:
        lvremove(vg, lv, run_env)
        lvremove(vg, 'volume-%s' % library_id, run_env)


def test_the_diff_of_a_delete_names_what_goes_on_the_backend(opts, run_env, lvm_backend_env, module_runner):
    run_module = module_runner(run_env)
    result, _heavy = run_module(dict(opts, name='mine', size=1))
    lv = 'volume-%s' % result['volume']['id']
    absent = dict(opts, name='mine', state='absent', _ansible_diff=True)
    for check_mode in (True, False):
        result, _heavy = run_module(absent, check_mode=check_mode)
        assert result['changed'] and result['diff']['before']['backend_objects'] == [lv], result
        assert result['diff']['after'] == {} and not result.get('warnings')
    assert lv_size(lvm_backend_env['vg'], lv, run_env) is None


# -- facts against vgs --------------------------------------------------------------------------
def vgs(vg: str, env: dict) -> tuple[float, int]:
    """(free GiB, LV count) as vgs shows them."""
    proc = subprocess.run(['vgs', '--noheadings', '--units', 'g', '--nosuffix', '-o', 'vg_free,lv_count', vg],
                          capture_output=True, text=True, env=env, check=True)
    free, count = proc.stdout.split()
    return float(free), int(count)


def pool_stats(opts: dict, env: dict, **args) -> tuple[float, int, int]:
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts', dict(opts, **args), env)
    assert rc == 0, out
    facts = result['ansible_facts']['cinderlib_backends']['lvm']
    [pool] = facts['stats']['pools']
    return pool['free_capacity_gb'], pool['total_volumes'], facts['stats_age']


@pytest.mark.parametrize('worker', [False, True], ids=['without-worker', 'worker'])
def test_backend_facts_match_vgs_after_each_operation(opts, run_env, lvm_backend_env, worker, worker_root):
    vg = lvm_backend_env['vg']
    env = dict(run_env, CINDERLIB_WORKER='1' if worker else '0', CINDERLIB_WORKER_DIR=str(worker_root))

    def volume(**args) -> None:
        rc, _result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(opts, **args), env)
        assert rc == 0, out

    def facts_are_vgs(**args) -> int:
        free, count, age = pool_stats(opts, env, **args)
        assert (free, count) == vgs(vg, env)
        return age

    facts_are_vgs()
    for step in (dict(name='a', size=1), dict(name='a', size=2), dict(name='b', size=1),
                 dict(name='a', state='absent')):
        volume(**step)
        assert facts_are_vgs() == 0
        # Cached stats are read again after an operation on this node changed the backend.
        facts_are_vgs(refresh_stats=False)
    # A change the collection did not make (by hand) is seen by default, in the worker too.
    lvcreate(vg, 'by-hand', '1g', env)
    try:
        facts_are_vgs()
    finally:
        lvremove(vg, 'by-hand', env)
    volume(name='b', state='absent')
    facts_are_vgs()


# -- Ceph RBD -----------------------------------------------------------------------------------
@pytest.mark.usefixtures('ceph_cluster')
def test_hand_made_rbd_images_and_snapshots_of_computed_names_are_refused_and_survive(ceph_cluster, ceph_env,
                                                                                      tmp_path):
    pool = ceph_cluster['CEPH_POOL']
    opts = {'backend': ceph_cluster['backend'],
            'persistence': {'storage': 'db', 'connection': 'sqlite:///%s' % (tmp_path / 'state.db')}}
    image_id, snapshot_id = str(uuid.uuid4()), str(uuid.uuid4())
    image = 'volume-%s' % image_id

    def size_of(spec: str) -> int | None:
        proc = rbd(ceph_cluster, 'info', '--format', 'json', '%s/%s' % (pool, spec))
        return json.loads(proc.stdout)['size'] if proc.returncode == 0 else None

    proc = rbd(ceph_cluster, 'create', '--size', '1G', '%s/%s' % (pool, image))
    assert proc.returncode == 0, proc.stderr
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(opts, name='mine', size=1), ceph_env)
    assert rc == 0, out
    mine = 'volume-%s' % result['volume']['id']
    snap = '%s@snapshot-%s' % (mine, snapshot_id)
    proc = rbd(ceph_cluster, 'snap', 'create', '%s/%s' % (pool, snap))
    assert proc.returncode == 0, proc.stderr
    try:
        for check in (True, False):
            for module, args, name in (
                    ('cinderlib_volume', dict(name='legacy', id=image_id, size=1), image),
                    ('cinderlib_volume', dict(name='legacy', id=image_id, source_volume='mine'), image),
                    ('cinderlib_snapshot', dict(volume='mine', name='s', id=snapshot_id), snap)):
                rc, result, out = run_adhoc('cinderlib.storage.' + module, dict(opts, **args), ceph_env, check=check)
                assert rc != 0 and TAKEN % name in result['msg'], out
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts', opts, ceph_env)
        assert rc == 0, out
        [volume] = result['ansible_facts']['cinderlib_backends'][opts['backend']['volume_backend_name']]['volumes']
        assert volume['name'] == 'mine' and volume['snapshots'] == []
        # The snapshot the collection did not make stays when its volume is deleted by it.
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_snapshot',
                                    dict(opts, volume='mine', name='s', id=snapshot_id, state='absent'), ceph_env)
        assert rc == 0 and result['changed'] is False, out
        assert size_of(image) == 1024 ** 3 and size_of(snap) == 1024 ** 3
        assert sorted(images(ceph_cluster)) == sorted([image, mine])
    finally:
        rbd(ceph_cluster, 'snap', 'rm', '%s/%s' % (pool, snap))
        rbd(ceph_cluster, 'rm', '%s/%s' % (pool, image))
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(opts, name='mine', state='absent'),
                                ceph_env)
    assert rc == 0, out
    assert mine not in images(ceph_cluster)
