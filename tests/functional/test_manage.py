# Adopting what a backend already holds and releasing it (Cinder's manage_existing
# and unmanage), in the library, on the CI host's LVM (LVs made with lvcreate) and
# on the real Ceph cluster of the tests (an image made with rbd create): the driver
# renames the object to volume-<id>; the adopted volume extends and deletes like any;
# released, it stays on the backend; bad references fail and change nothing; an
# adopt killed half-way is settled by reconcile.
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from functional_helpers import images, lv_names, lvm_command, rbd, run_adhoc, run_python


def lvcreate(vg: str, lv: str, size: str, env: dict) -> None:
    # Inactive and not zeroed, as metadata-only LVM needs.
    lvm_command('lvcreate', '--yes', '-an', '-Zn', '-n', lv, '-L', size, vg, env=env)


def program(tmp_path, backend: dict, body: str) -> str:
    return ('import json, logging\n'
            'from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib\n'
            'cinderlib.setup(persistence_config={"storage": "db", "connection": "sqlite:///%s"})\n'
            'lvm = cinderlib.Backend(**%r)\n' % (tmp_path / 'state.db', backend) + body)


def last_json(proc) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def vg(lvm_backend_env, run_env):
    """The test VG; LVs a test left are removed."""
    before = set(lv_names(lvm_backend_env['vg'], run_env))
    yield lvm_backend_env['vg']
    for lv in set(lv_names(lvm_backend_env['vg'], run_env)) - before:
        lvm_command('lvremove', '-f', '%s/%s' % (lvm_backend_env['vg'], lv), env=run_env)


def test_an_lv_made_by_hand_is_adopted_extended_and_deleted(tmp_path, run_env, lvm_backend, vg):
    lvcreate(vg, 'legacy-data', '1g', run_env)
    got = last_json(run_python(program(tmp_path, lvm_backend, '''
listed = {entry['reference']['source-name']: entry for entry in lvm.manageable_volumes()}
vol = lvm.manage_volume('legacy-data', name='adopted', description='made by hand')
again = cinderlib.Volume.get_by_id(vol.id)
after = {entry['reference']['source-name']: entry for entry in lvm.manageable_volumes()}
print(json.dumps({'id': vol.id, 'size': again.size, 'status': again.status, 'name': again.display_name,
                  'owned': again.owned, 'listed': listed['legacy-data']['safe_to_manage'],
                  'after': after[vol.name]['safe_to_manage'], 'after_id': after[vol.name]['cinder_id']}))
'''), run_env))
    lv = 'volume-%s' % got['id']
    assert (got['size'], got['status'], got['name'], got['owned']) == (1, 'available', 'adopted', True)
    assert got['listed'] is True and got['after'] is False and got['after_id'] == got['id']
    names = lv_names(vg, run_env)
    assert lv in names and 'legacy-data' not in names  # Cinder's LVM driver renames it

    # A second process: extend, then delete (the adopted LV is the collection's now).
    done = last_json(run_python(program(tmp_path, lvm_backend, '''
vol = cinderlib.Volume.get_by_id(%r)
vol.extend(2)
size = cinderlib.Volume.get_by_id(%r).size
vol.delete()
print(json.dumps({'size': size, 'left': len(lvm.volumes)}))
''' % (got['id'], got['id'])), run_env))
    assert done == {'size': 2, 'left': 0}
    assert lv not in lv_names(vg, run_env)


def test_a_released_volume_stays_on_the_backend(tmp_path, run_env, lvm_backend, vg):
    lvcreate(vg, 'legacy-keep', '1g', run_env)
    got = last_json(run_python(program(tmp_path, lvm_backend, '''
vol = lvm.manage_volume('legacy-keep', name='kept')
vol.unmanage()
print(json.dumps({'id': vol.id, 'left': len(lvm.volumes),
                  'records': len(cinderlib.Backend.persistence.volume_records())}))
'''), run_env))
    assert got['left'] == 0 and got['records'] == 0
    assert 'volume-%s' % got['id'] in lv_names(vg, run_env)


def test_bad_references_fail_clearly_and_change_nothing(tmp_path, run_env, lvm_backend, vg):
    got = last_json(run_python(program(tmp_path, lvm_backend, '''
known = lvm.create_volume(1, name='known')
errors = {}
for label, reference in (('missing', 'no-such-lv'), ('managed', known.name), ('empty', ''),
                         ('bad_type', 42)):
    try:
        lvm.manage_volume(reference, name=label)
        errors[label] = 'adopted'
    except cinderlib.CinderlibError as exc:
        errors[label] = '%s: %s' % (type(exc).__name__, exc)
records = cinderlib.Backend.persistence.volume_records()
print(json.dumps({'errors': errors, 'records': [r['display_name'] for r in records], 'known': known.name}))
'''), run_env))
    errors = got['errors']
    assert errors['missing'].startswith('DriverOperationError: ') and 'no-such-lv' in errors['missing']
    assert 'Specified logical volume does not exist' in errors['missing']
    assert errors['managed'].startswith('InvalidRequest: ') and 'already known to the state store' in errors['managed']
    for label in ('empty', 'bad_type'):
        assert errors[label].startswith('InvalidRequest: A reference to a backend object is its name'), errors
    assert all('Traceback' not in e for e in errors.values())
    assert got['records'] == ['known']
    assert got['known'] in lv_names(vg, run_env)


@pytest.mark.parametrize('point, expected', [
    ('volume.manage.before_driver', 'removed'),
    ('volume.manage.after_driver', 'adopted'),
])
def test_an_adopt_killed_half_way_is_settled_by_reconcile(tmp_path, run_env, lvm_backend, vg, point, expected):
    lvcreate(vg, 'legacy-killed', '1g', run_env)
    code = program(tmp_path, lvm_backend, 'lvm.manage_volume("legacy-killed", name="killed")\n')
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True, text=True, env=dict(run_env, CINDERLIB_TEST_KILL_AT=point),
                          timeout=300, check=False)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    settled = last_json(run_python(program(tmp_path, lvm_backend, '''
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import reconcile
left = [(r['status'], r.get('owned')) for r in cinderlib.Backend.persistence.volume_records()]
report = reconcile.reconcile(lvm, 'resolve')
records = cinderlib.Backend.persistence.volume_records()
print(json.dumps({'left': left, 'actions': [(a['action'], a['new_status']) for a in report['actions']],
                  'records': [(r['id'], r['status'], r.get('owned')) for r in records]}))
'''), run_env))
    assert settled['left'] == [['managing', False]]
    names = lv_names(vg, run_env)
    if expected == 'adopted':
        assert settled['actions'] == [['adopted', 'available']]
        (volume_id, status, owned), = settled['records']
        assert (status, owned) == ('available', True) and 'volume-%s' % volume_id in names
    else:
        assert settled['actions'] == [['removed', None]] and settled['records'] == []
        assert 'legacy-killed' in names  # never renamed: left as it was


@pytest.mark.usefixtures('ceph_cluster')
def test_an_rbd_image_made_by_hand_is_adopted_and_released(ceph_cluster, ceph_env, tmp_path):
    pool = ceph_cluster['CEPH_POOL']
    made = rbd(ceph_cluster, 'create', '--size', '1024', '%s/legacy-image' % pool)
    assert made.returncode == 0, made.stderr
    got = last_json(run_python(program(tmp_path, ceph_cluster['backend'], '''
vol = lvm.manage_volume('legacy-image', name='adopted-image')
vol.extend(2)
size = cinderlib.Volume.get_by_id(vol.id).size
vol.unmanage()
print(json.dumps({'id': vol.id, 'size': size, 'left': len(lvm.volumes)}))
'''), ceph_env))
    assert got['size'] == 2 and got['left'] == 0
    found = images(ceph_cluster)
    assert 'volume-%s' % got['id'] in found and 'legacy-image' not in found
    assert rbd(ceph_cluster, 'rm', '%s/volume-%s' % (pool, got['id'])).returncode == 0


def test_the_volume_module_adopts_existing_and_releases_it(tmp_path, run_env, lvm_backend, vg):
    lvcreate(vg, 'legacy-module', '1g', run_env)
    store = {'storage': 'db', 'connection': 'sqlite:///%s' % (tmp_path / 's.db')}
    opts = {'backend': lvm_backend, 'persistence': store}
    task = dict(opts, name='adopted', existing='legacy-module', description='made by hand')
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', task, run_env, check=True)
    assert rc == 0 and result['changed'] is True and result['volume']['size'] == 1, out
    assert 'legacy-module' in lv_names(vg, run_env)  # check mode renamed nothing
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', task, run_env)
    assert rc == 0 and result['changed'] is True, out
    lv = 'volume-%s' % result['volume']['id']
    assert "renamed 'legacy-module' to '%s'" % lv in ' '.join(out.split())  # the task's warning
    assert lv in lv_names(vg, run_env) and 'legacy-module' not in lv_names(vg, run_env)
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', task, run_env)
    assert rc == 0 and result['changed'] is False, out  # found by name: nothing to adopt again

    release = dict(opts, name='adopted', state='unmanaged')
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', release, run_env)
    assert rc == 0 and result['changed'] is True, out
    assert 'its data stays on the backend' in ' '.join(out.split())
    assert lv in lv_names(vg, run_env)
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', release, run_env)
    assert rc == 0 and result['changed'] is False, out

    # A reference that is not there fails and records nothing.
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(task, existing='no-such-lv'), run_env)
    assert rc != 0 and 'Specified logical volume does not exist' in result['msg'] and 'Traceback' not in out, out
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts', dict(opts, refresh_stats=False), run_env)
    facts = result['ansible_facts']['cinderlib_backends'][lvm_backend['volume_backend_name']]
    assert rc == 0 and facts['volumes'] == [], out
