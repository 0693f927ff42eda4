# The crash-safe operation runner (operations.run_operation) over a real SQLite store: the
# order of its saves and crash points, its error path, its final save; and the crash points
# every volume and snapshot operation goes through (real crashes: tests/functional/test_reliability.py).
from __future__ import annotations

import os
import signal
import time

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import context, loader, operations
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import Backend
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    CinderlibError,
    DriverOperationError,
    PersistenceError,
    SetupError,
)

# The in-memory SQLite store of fake_backend: every save goes through SQLAlchemy.
sqlite = pytest.mark.parametrize('fake_backend', ['memory_db'], indirect=True)


def stored(resource) -> dict | None:
    found = Backend.persistence.get(resource.kind, id=resource.id)
    return found[0] if found else None


@pytest.fixture
def trace(monkeypatch):
    """The crash points reached, in order."""
    events: list[str] = []
    monkeypatch.setattr(operations, '_test_kill_point', events.append)
    return events


class Killed(BaseException):
    """Stands for SIGKILL at a crash point: no handler of the library runs."""


@sqlite
def test_the_transitional_record_is_stored_before_the_driver_and_the_final_one_after(fake_backend, monkeypatch):
    volume = fake_backend.create_volume(1, name='data')
    events = []
    monkeypatch.setattr(operations, '_test_kill_point', lambda point: events.append((point, stored(volume)['status'])))

    def driver():
        events.append(('driver', stored(volume)['status']))
        return {'provider_location': 'vg/lv', 'id': 'not-this', 'status': 'bogus'}

    result = operations.run_operation(volume, 'create', transitional={'status': 'creating'}, call=driver,
                                      on_error={'status': 'error'}, final={'status': 'available'}, model_update=True)
    assert events == [('volume.create.before_driver', 'creating'), ('driver', 'creating'),
                      ('volume.create.after_driver', 'creating')]
    # The model update is saved with the final status; its id and status are the library's.
    record = stored(volume)
    assert (record['id'], record['status'], record['provider_location']) == (volume.id, 'available', 'vg/lv')
    assert result['provider_location'] == 'vg/lv'


@sqlite
def test_a_failed_driver_call_stores_the_error_status_and_raises_its_error(fake_backend, trace):
    volume = fake_backend.create_volume(1, name='data')
    trace.clear()

    def failing(volume_ovo, size):
        raise ValueError('array on fire')

    with pytest.raises(DriverOperationError) as error:
        operations.run_operation(
            volume, 'extend', transitional={'status': 'extending'},
            call=lambda: operations.driver_call(volume, 'extend', failing, volume._ovo, 2),
            on_error={'status': 'error_extending'}, final={'status': 'available', 'size': 2})
    assert str(error.value) == "Failed to extend volume 'data' on backend 'fake': array on fire"
    assert isinstance(error.value.__cause__, ValueError)
    assert trace == ['volume.extend.before_driver']  # never after_driver
    assert (stored(volume)['status'], stored(volume)['size']) == ('error_extending', 1)


@sqlite
def test_what_is_not_a_library_error_leaves_the_transitional_record_as_a_crash_would(fake_backend, trace):
    volume = fake_backend.create_volume(1, name='data')
    with pytest.raises(KeyError):
        operations.run_operation(volume, 'extend', transitional={'status': 'extending'}, call=lambda: {}['bug'],
                                 on_error={'status': 'error_extending'}, final={'status': 'available'})
    assert stored(volume)['status'] == 'extending'


@sqlite
def test_final_may_be_computed_from_the_driver_result_and_wins_over_the_model_update(fake_backend, trace):
    volume = fake_backend.create_volume(1, name='data')
    snapshot = volume.create_snapshot(name='snap')
    trace.clear()
    operations.run_operation(snapshot, 'create', transitional={'status': 'creating'},
                             call=lambda: {'progress': '50%', 'provider_id': 'p1'}, on_error={'status': 'error'},
                             final=lambda update: {'status': 'available', 'progress': '100%',
                                                   'display_description': 'on %s' % update['provider_id']},
                             model_update=True)
    record = stored(snapshot)
    assert (record['status'], record['progress'], record['provider_id'], record['display_description']) == (
        'available', '100%', 'p1', 'on p1')

    def removed(_result) -> None:
        Backend.persistence.remove('snapshot', snapshot.id)
    # A final that removes the record itself returns None: nothing more is saved.
    operations.run_operation(snapshot, 'delete', transitional={'status': 'deleting'}, call=lambda: None,
                             on_error={'status': 'error_deleting'}, final=removed)
    assert stored(snapshot) is None
    assert trace == ['snapshot.create.before_driver', 'snapshot.create.after_driver',
                     'snapshot.delete.before_driver', 'snapshot.delete.after_driver']


def test_model_updates_keep_what_the_record_can_hold():
    import datetime
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    assert operations.model_update_changes({'id': 'x', 'status': 'y', 'provider_location': 'p', 'launched_at': when}
                                           ) == {'provider_location': 'p', 'launched_at': '2024-01-02T03:04:05'}
    assert operations.model_update_changes(None) == {}


# -- every operation goes through the runner: the crash points and statuses reconcile expects --
def _volume(backend):
    return backend.create_volume(1, name='data')


def _snapshot(backend):
    return _volume(backend).create_snapshot(name='snap')


OPERATIONS = [
    # (crash points, driver method, what exists before, the operation, status a crash leaves, status a failure leaves)
    ('volume.create', 'create_volume', lambda b: b, lambda b: b.create_volume(1, name='new'), 'creating', 'error'),
    ('volume.extend', 'extend_volume', _volume, lambda v: v.extend(2), 'extending', 'error_extending'),
    ('volume.delete', 'delete_volume', _volume, lambda v: v.delete(), 'deleting', 'error_deleting'),
    ('snapshot.create', 'create_snapshot', _volume, lambda v: v.create_snapshot(name='new'), 'creating', 'error'),
    ('snapshot.delete', 'delete_snapshot', _snapshot, lambda s: s.delete(), 'deleting', 'error_deleting'),
]
IDS = [o[0] for o in OPERATIONS]


def statuses(kind: str) -> list:
    return [r['status'] for r in Backend.persistence.get(kind)]


@sqlite
@pytest.mark.parametrize('when', ['before_driver', 'after_driver'])
@pytest.mark.parametrize('op, method, prepare, run, left, _failed', OPERATIONS, ids=IDS)
def test_a_crash_at_each_point_of_each_operation_leaves_its_transitional_record(
        fake_backend, monkeypatch, op, method, prepare, run, left, _failed, when):
    point = '%s.%s' % (op, when)

    def crash(at):
        if at == point:
            raise Killed(at)
    resource = prepare(fake_backend)
    fake_backend.driver.calls.clear()
    monkeypatch.setattr(operations, '_test_kill_point', crash)
    with pytest.raises(Killed):
        run(resource)
    assert left in statuses(op.split('.')[0])
    assert fake_backend.driver.calls == ([method] if when == 'after_driver' else [])


@sqlite
@pytest.mark.parametrize('op, method, prepare, run, _left, failed', OPERATIONS, ids=IDS)
def test_a_driver_failure_in_each_operation_leaves_its_error_status(fake_backend, op, method, prepare, run, _left,
                                                                    failed):
    resource = prepare(fake_backend)
    fake_backend.driver.fail[method] = RuntimeError('array on fire')
    with pytest.raises(CinderlibError, match=r"^Failed to %s .* on backend 'fake': array on fire$" % op.split('.')[1]):
        run(resource)
    assert failed in statuses(op.split('.')[0])


# -- the state store failing around the driver call (a store that is down: tests/functional/test_store_outage.py) --
STORE_DOWN = ("Can't write volume v to the state store postgresql+psycopg2://u:********@db/c: it is unreachable "
              'after 2 s (persistence.retry_window): connection refused')


@pytest.fixture
def store_down_for(monkeypatch):
    """``store_down_for(status)``: from then on, writing a record with that
    status fails as an unreachable store does (other writes still work)."""
    def fail_when(status: str) -> None:
        store = Backend.persistence
        put = store.put

        def failing_put(kind, record):
            if record.get('status') == status:
                raise PersistenceError(STORE_DOWN)
            return put(kind, record)
        monkeypatch.setattr(store, 'put', failing_put)
    return fail_when


def extend(volume, driver):
    return operations.run_operation(volume, 'extend', transitional={'status': 'extending'}, call=driver,
                                    on_error={'status': 'error_extending'}, final={'status': 'available', 'size': 2})


@sqlite
def test_a_store_that_cant_take_the_transitional_record_stops_before_the_driver(fake_backend, trace, store_down_for):
    volume = fake_backend.create_volume(1, name='data')
    trace.clear()
    calls = []
    store_down_for('extending')
    with pytest.raises(PersistenceError) as error:
        extend(volume, lambda: calls.append('driver'))
    assert str(error.value) == STORE_DOWN + ". The driver was not called: backend 'fake' is unchanged."
    assert calls == [] and trace == [] and stored(volume)['status'] == 'available'


@sqlite
def test_a_store_that_cant_take_the_final_record_says_what_the_driver_did_and_what_settles_it(
        fake_backend, trace, store_down_for):
    volume = fake_backend.create_volume(1, name='data')
    trace.clear()
    store_down_for('available')
    with pytest.raises(PersistenceError) as error:
        extend(volume, lambda: None)
    assert str(error.value) == (
        "Volume 'data' on backend 'fake' was extended by the driver, but the state store could not record it, so its "
        "record may still say status 'extending': once the state store is reachable, settle it as after an "
        'interrupted run (cinderlib.storage.cinderlib_reconcile), then run again. Cause: ' + STORE_DOWN + '.')
    # What a crash after the driver leaves, which reconcile settles.
    assert trace == ['volume.extend.before_driver', 'volume.extend.after_driver']
    assert stored(volume)['status'] == 'extending'


@sqlite
def test_a_store_that_cant_take_the_error_status_keeps_the_drivers_error_first(fake_backend, store_down_for):
    volume = fake_backend.create_volume(1, name='data')
    store_down_for('error_extending')

    def failing():
        raise DriverOperationError("Failed to extend volume 'data' on backend 'fake': array on fire")
    with pytest.raises(PersistenceError) as error:
        extend(volume, failing)
    assert str(error.value) == (
        "Failed to extend volume 'data' on backend 'fake': array on fire. The state store could not record this "
        "failure either, so its record may still say status 'extending': once the state store is reachable, settle "
        'it as after an interrupted run (cinderlib.storage.cinderlib_reconcile), then run again. Cause: '
        + STORE_DOWN + '.')
    assert isinstance(error.value.__cause__, DriverOperationError)
    assert stored(volume)['status'] == 'extending'


@pytest.mark.parametrize('operation, past', [('create', 'created'), ('extend', 'extended'),
                                             ('disconnect', 'disconnected'), ('detach', 'detached')])
def test_operations_in_the_past_tense(operation, past):
    assert operations._past(operation) == past


# -- driver_timeout: a driver call that does not return is interrupted --------------------
@sqlite
def test_a_driver_call_past_driver_timeout_is_interrupted_and_stored_as_its_error(fake_backend, monkeypatch):
    volume = fake_backend.create_volume(1, name='data')
    monkeypatch.setattr(context.STATE.settings, 'driver_timeout', 0.2)

    finished = []

    def hung(*_args):
        try:
            time.sleep(60)
        except Exception:  # noqa: BLE001 - as drivers do: the interruption must not be swallowed
            pytest.fail('the interruption reached the driver as an Exception')
        finished.append(True)

    with pytest.raises(DriverOperationError) as error:
        operations.run_operation(volume, 'extend', transitional={'status': 'extending'},
                                 call=lambda: operations.driver_call(volume, 'extend', hung, volume._ovo, 2),
                                 on_error={'status': 'error_extending'}, final={'status': 'available', 'size': 2})
    assert not finished  # interrupted, not waited out
    assert str(error.value) == ("Failed to extend volume 'data' on backend 'fake': the driver did not return within "
                                "0.2 seconds (driver_timeout); what it had done by then on the backend is unknown.")
    assert stored(volume)['status'] == 'error_extending'
    # The alarm is off again and the previous handler back.
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
    assert signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.default_int_handler, None)


@sqlite
def test_a_driver_call_within_driver_timeout_returns_its_result(fake_backend, monkeypatch):
    volume = fake_backend.create_volume(1, name='data')
    monkeypatch.setattr(context.STATE.settings, 'driver_timeout', 5)
    assert operations.driver_call(volume, 'look up', lambda: 'found') == 'found'
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0


@pytest.mark.parametrize('value', [-1, 'soon', True])
def test_driver_timeout_must_be_a_number_of_seconds(value):
    with pytest.raises(SetupError, match='driver_timeout must be a number of seconds'):
        loader.make_settings({'driver_timeout': value})
    assert loader.make_settings({'driver_timeout': 0}).driver_timeout is None


def test_operations_that_change_capacity_mark_the_cached_stats_outdated(fake_backend):
    fake_backend.driver.get_volume_stats = lambda refresh: {'pools': [{'pool_name': 'pool1', 'free': 3}]}
    fresh = fake_backend.stats(refresh=True)
    assert not fake_backend.stats_outdated
    volume = fake_backend.create_volume(1, name='data')
    assert fake_backend.stats_outdated and fake_backend.stats() == fresh  # cinderlib's cache, as it was
    fake_backend.stats(refresh=True)
    # A failed one may have changed part of what the backend holds.
    fake_backend.driver.fail['extend_volume'] = RuntimeError('array busy')
    with pytest.raises(DriverOperationError):
        volume.extend(2)
    assert fake_backend.stats_outdated
    fake_backend.stats(refresh=True)
    volume.update(display_description='no driver call')
    assert not fake_backend.stats_outdated
    volume.create_snapshot(name='s').delete()
    assert fake_backend.stats_outdated


def test_a_stamp_that_cant_be_written_fails_no_operation(fake_backend):
    # A full or read-only disk under the state directory: the operation still completes, and this
    # process reads its stats again.
    state = context.setting('file_locks_path')
    os.makedirs(state, exist_ok=True)
    with open(os.path.join(state, 'capacity'), 'w', encoding='ascii'):
        pass  # a file where the directory of stamps would go
    fake_backend.driver.get_volume_stats = lambda refresh: {'pools': [{'pool_name': 'pool1'}]}
    fake_backend.stats(refresh=True)
    volume = fake_backend.create_volume(1, name='data')
    assert volume.status == 'available' and fake_backend.stats_outdated
