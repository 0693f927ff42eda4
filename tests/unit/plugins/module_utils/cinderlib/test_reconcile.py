# reconcile, the crash hook and the transitional-status messages, over fake drivers
# (real LVM, real crashes: tests/functional/test_reliability.py).
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils import volume_state
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import locks, objects, operations
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import Backend
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import InvalidRequest
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.reconcile import actions_diff, reconcile


def left_as(backend, name: str, status: str, on_array: bool = True, size: int = 1):
    """A volume record that a run killed in ``status`` left."""
    volume = backend.create_volume(size, name=name)
    if not on_array:
        backend.driver.volumes.pop('volume-%s' % volume.id)
    volume._save(status=status)
    return volume


def statuses(backend) -> dict:
    return {r['display_name']: (r['status'], r['size']) for r in Backend.persistence.volume_records(backend=backend.id)}


def test_resolve_settles_each_transitional_record_from_what_the_backend_has(fake_backend):
    left_as(fake_backend, 'created', 'creating')
    left_as(fake_backend, 'never-created', 'creating', on_array=False)
    grown = left_as(fake_backend, 'grown', 'extending')
    fake_backend.driver.volumes['volume-%s' % grown.id] = 3  # the driver extended it, then the run died
    left_as(fake_backend, 'kept', 'deleting')
    left_as(fake_backend, 'gone', 'deleting', on_array=False)
    left_as(fake_backend, 'vanished', 'extending', on_array=False)

    report = reconcile(fake_backend, 'resolve')
    assert {a['name']: (a['action'], a['new_status'], a['reason']) for a in report['actions']} == {
        'created': ('adopted', 'available', 'the backend has it'),
        'never-created': ('removed', None, 'the backend does not have it'),
        'grown': ('adopted', 'available', 'the backend has it'),
        'kept': ('adopted', 'available', 'the backend has it'),
        'gone': ('removed', None, 'the backend does not have it'),
        'vanished': ('marked_error', 'error', 'the backend does not have it'),
    }
    assert statuses(fake_backend) == {'created': ('available', 1), 'grown': ('available', 3),
                                      'kept': ('available', 1), 'vanished': ('error', 1)}
    # This fake VG can look volumes up but not list them: no drift check.
    assert report['drift']['status'] == 'unsupported' and report['drift']['unknown_on_backend'] is None
    assert reconcile(fake_backend, 'resolve')['actions'] == []

    # cinderlib_reconcile's diff: each settled record's status before and after; a removed one has no after.
    ids = {a['name']: a['id'] for a in report['actions']}
    diff = actions_diff(report['actions'])
    assert diff['before'] == {'volume %s (%s)' % (n, ids[n]): s for n, s in (
        ('created', 'creating'), ('never-created', 'creating'), ('grown', 'extending'), ('kept', 'deleting'),
        ('gone', 'deleting'), ('vanished', 'extending'))}
    assert diff['after'] == {'volume %s (%s)' % (n, ids[n]): s for n, s in (
        ('created', 'available'), ('grown', 'available'), ('kept', 'available'), ('vanished', 'error'))}


def test_report_and_check_mode_change_nothing(fake_backend):
    left_as(fake_backend, 'created', 'creating')
    left_as(fake_backend, 'never-created', 'creating', on_array=False)
    before = statuses(fake_backend)
    report = reconcile(fake_backend, 'report')
    assert report['actions'] == []
    assert {t['name']: (t['on_backend'], t['in_progress']) for t in report['transitional']} == {
        'created': (True, False), 'never-created': (False, False)}
    planned = reconcile(fake_backend, 'resolve', dry_run=True)
    assert sorted(a['action'] for a in planned['actions']) == ['adopted', 'removed']
    assert statuses(fake_backend) == before
    assert reconcile(fake_backend, 'none') is None


def test_a_driver_that_cant_tell_gets_error_records(fake_backend):
    del fake_backend.driver.vg
    left_as(fake_backend, 'a', 'creating')
    left_as(fake_backend, 'b', 'extending')
    left_as(fake_backend, 'c', 'deleting')
    report = reconcile(fake_backend, 'resolve')
    assert {a['name']: (a['action'], a['new_status']) for a in report['actions']} == {
        'a': ('marked_error', 'error'), 'b': ('marked_error', 'error_extending'),
        'c': ('marked_error', 'error_deleting')}
    assert report['drift']['status'] == 'unsupported'
    assert 'FakeDriver' in report['drift']['reason']


def test_a_run_in_progress_is_left_alone(fake_backend):
    volume = left_as(fake_backend, 'busy', 'creating')
    with locks.locked(locks.volume_lock_name(volume.id), 'busy'):
        report = reconcile(fake_backend, 'resolve')
        [action] = report['actions']
        assert action['action'] == 'skipped' and report['transitional'][0]['in_progress'] is True
        with pytest.raises(InvalidRequest, match=r"Volume 'busy' on backend 'fake' is being created by another "
                                                 r"run right now \(status 'creating'\)"):
            volume_state.ensure_volume_present(fake_backend, {'name': 'busy', 'size': 1}, False)
    assert statuses(fake_backend) == {'busy': ('creating', 1)}


def test_modules_point_at_reconcile_for_a_leftover(fake_backend):
    left_as(fake_backend, 'left', 'extending')
    with pytest.raises(InvalidRequest) as error:
        volume_state.ensure_volume_present(fake_backend, {'name': 'left', 'size': 2}, False)
    assert error.value.message == (
        "Volume 'left' on backend 'fake' has status 'extending' in the state store: the run that was extending "
        "it ended before it finished (killed, or the host went down). Run cinderlib.storage."
        "cinderlib_reconcile to settle it from what the backend has (in check mode it shows what it would do), "
        "then run again.")


def test_snapshots_are_settled_too(fake_backend):
    volume = fake_backend.create_volume(1, name='v')
    kept = volume.create_snapshot(name='kept')
    kept._save(status='deleting')
    fake_backend.driver.volumes['snapshot-%s' % kept.id] = 1  # what FakeVG looks snapshots up in
    lost = objects.Snapshot(volume, name='lost')
    lost._save(status='creating')
    report = reconcile(fake_backend, 'resolve')
    assert {a['name']: a['action'] for a in report['actions']} == {'kept': 'adopted', 'lost': 'removed'}
    assert [(s.display_name, s.status) for s in volume.snapshots] == [('kept', 'available')]


@pytest.mark.parametrize('setting', [None, 'volume.create.after_driver'])
def test_the_crash_hook_is_inert_unless_it_names_the_point(setting, monkeypatch):
    if setting is None:
        monkeypatch.delenv(operations.TEST_KILL_AT_ENV, raising=False)
    else:
        monkeypatch.setenv(operations.TEST_KILL_AT_ENV, setting)
    operations._test_kill_point('volume.create.before_driver')  # still alive


def test_the_crash_hook_kills_the_process_at_its_point():
    code = ('from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import operations\n'
            "operations._test_kill_point('volume.delete.after_driver')\nprint('survived')\n")
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=False, timeout=60,
                          env=dict(os.environ, CINDERLIB_TEST_KILL_AT='volume.delete.after_driver'))
    assert proc.returncode == -signal.SIGKILL and 'survived' not in proc.stdout


# -- locks -------------------------------------------------------------------------------------
def test_a_lock_held_too_long_fails_with_a_message(fake_backend):
    name = locks.volume_lock_name('0b5e8c7a-6e1e-4f7c-9d4e-4f3bd2a9b0c1')
    assert name == 'cinderlib-volume-0b5e8c7a-6e1e-4f7c-9d4e-4f3bd2a9b0c1'
    with locks.locked(name, 'Volume data01'):
        with pytest.raises(InvalidRequest, match=r"^Volume data01 is locked by another run \(lock "
                                                 r"cinderlib-volume-0b5e8c7a-6e1e-4f7c-9d4e-4f3bd2a9b0c1\) for more "
                                                 r"than 0.05 seconds; nothing was changed"):
            with locks.locked(name, 'Volume data01', timeout=0.05):
                pass


def test_lock_names_are_safe_file_names():
    assert locks.volume_lock_name('../etc/passwd').startswith('cinderlib-volume-')
    assert '/' not in locks.volume_lock_name('../etc/passwd')
    assert locks.name_lock_name('lvm', 'données/01') != locks.name_lock_name('lvm2', 'données/01')
    assert '/' not in locks.name_lock_name('lvm', 'données/01')


def test_a_volume_its_snapshots_and_connections_share_one_lock(fake_backend):
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.connections import Connection
    volume = fake_backend.create_volume(1, name='data01')
    snapshot = volume.create_snapshot(name='snap')
    connection = Connection(volume, {'host': 'node-a'})
    assert {locks.resource_lock_name(r) for r in (volume, snapshot, connection)} == {
        locks.volume_lock_name(volume.id)}
    with locks.resource_locked(snapshot) as taken:
        assert taken
        # reconcile and check mode only try: they see a run in progress without waiting for it.
        with locks.resource_locked(connection, wait=False) as free:
            assert not free
        with pytest.raises(InvalidRequest, match=r"^Volume 'data01' is locked by another run"):
            with locks.resource_locked(volume, timeout=0.05):
                pass
    with locks.resource_locked(volume, wait=False) as free:
        assert free


def test_a_coordination_url_without_its_python_package_says_which():
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import loader
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
        MissingDependencyError,
    )
    runtime = loader.CinderRuntime.__new__(loader.CinderRuntime)
    runtime.settings = loader.make_settings({'coordination_url': 'zookeeper://user:pw@127.0.0.1:2181'})
    with pytest.raises(MissingDependencyError, match=r"coordination_url zookeeper://user:\*{8}@127.0.0.1:2181 "
                                                     r"needs the Python package 'kazoo'"):
        runtime._start_coordination()
