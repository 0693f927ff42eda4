"""Unit tests of the volume/snapshot state logic over a fake driver.

The ``fake_backend`` fixture (tests/unit/conftest.py) runs each test with a
``memory`` and a ``memory_db`` state store.
"""

from __future__ import annotations

import uuid

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils import volume_state
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    BackendObjectExists,
    DriverOperationError,
    InvalidRequest,
    NotFound,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.volume_state import (
    check_snapshot_params,
    ensure_snapshot_absent,
    ensure_snapshot_present,
    ensure_volume_absent,
    ensure_volume_present,
    parse_size,
)

VOLUME_FIELDS = {'id', 'name', 'description', 'size', 'status', 'backend', 'pool_name', 'bootable',
                 'attach_status', 'source', 'metadata', 'extra_specs', 'qos_specs', 'snapshots',
                 'connections', 'attached_hosts', 'created_at', 'updated_at'}
SNAPSHOT_FIELDS = {'id', 'name', 'description', 'volume_id', 'volume_size', 'status', 'backend',
                   'created_at', 'updated_at'}


def vol(**params):
    base = {'name': None, 'id': None, 'size': None, 'source_volume': None, 'source_snapshot': None,
            'description': None, 'bootable': None, 'metadata': None, 'extra_specs': None,
            'qos_specs': None, 'pool_name': None, 'cascade': False}
    base.update(params)
    return base


def snap(**params):
    base = {'volume': None, 'name': None, 'description': None}
    base.update(params)
    return base


def vol_present(backend, check_mode=False, **params):
    return ensure_volume_present(backend, vol(**params), check_mode)


def vol_absent(backend, check_mode=False, **params):
    return ensure_volume_absent(backend, vol(**params), check_mode)


def snap_present(backend, check_mode=False, **params):
    return ensure_snapshot_present(backend, snap(**params), check_mode)


def snap_absent(backend, check_mode=False, **params):
    return ensure_snapshot_absent(backend, snap(**params), check_mode)


def records(backend, kind='volume'):
    return type(backend).persistence.get(kind)


# -- parse_size -----------------------------------------------------------------------------
@pytest.mark.parametrize('value, gib, rounded', [
    (10, 10, False),
    ('10', 10, False),
    ('10G', 10, False),
    ('10GiB', 10, False),
    ('10gib', 10, False),
    ('10g', 10, False),
    ('10 g', 10, False),
    (' 3 G ', 3, False),
    ('2048M', 2, False),
    ('1T', 1024, False),
    ('1073741824B', 1, False),
    ('1073741825B', 2, True),
    ('512M', 1, True),
    ('1.5G', 2, True),
    ('.5T', 512, False),
    (1.5, 2, True),
    ('1048576K', 1, False),
])
def test_parse_size(value, gib, rounded):
    size, note = parse_size(value)
    assert size == gib
    assert (note is not None) == rounded
    if rounded:
        assert 'rounded up to %d GiB' % gib in note


# Decimal units are powers of 10 (10 GB = 10 * 10^9 bytes = 9.31 GiB), rounded up to
# whole GiB, always with a note saying the size in GiB the volume gets.
@pytest.mark.parametrize('value, gib, size_bytes, in_gib', [
    ('10 GB', 10, '10000000000', '9.31'),
    ('10gb', 10, '10000000000', '9.31'),
    ('10GB', 10, '10000000000', '9.31'),
    ('10000MB', 10, '10000000000', '9.31'),
    ('1TB', 932, '1000000000000', '931.32'),
    ('1.5 TB', 1397, '1500000000000', '1396.98'),
    ('0.5GB', 1, '500000000', '0.47'),
    ('1073741824KB', 1000, '1073741824000', '1000.00'),
    ('2 kB', 1, '2000', '0.00'),
    ('1PB', 931323, '1000000000000000', '931322.57'),
])
def test_parse_size_decimal_units(value, gib, size_bytes, in_gib):
    size, note = parse_size(value)
    assert size == gib
    assert note.startswith('size %r is in decimal units' % value)
    assert '%s bytes, %s GiB, so the volume gets %d GiB' % (size_bytes, in_gib, gib) in note
    assert '\n' not in note


def test_parse_size_decimal_note_says_how_to_write_binary():
    _size, note = parse_size('20 MB')
    assert '(MB = 10^6 bytes)' in note and note.endswith('Write 20M or 20MiB for binary units.')


@pytest.mark.parametrize('value', [0, -1, '0G', '0.0', 'abc', '10X', '1.2.3G', '', '10iB', 'G', True, None, [10],
                                   '-5G', '0GB', 'GB', '10 GBB', '10 XB'])
def test_parse_size_invalid(value):
    with pytest.raises(InvalidRequest) as err:
        parse_size(value)
    message = str(err.value)
    assert message.startswith('Invalid size')
    assert '\n' not in message
    assert ('10G' in message) or ('at least 1 GiB' in message)


# -- volumes: create / re-run / extend / shrink ---------------------------------------------
def test_create_check_mode_predicts_and_changes_nothing(fake_backend):
    changed, before, after, messages = vol_present(fake_backend, name='v1', size='1.5G', check_mode=True)
    assert changed and before is None
    assert set(after) == VOLUME_FIELDS
    assert (after['name'], after['size'], after['status'], after['backend']) == ('v1', 2, 'available', 'fake')
    assert after['pool_name'] == 'pool1'
    assert len(messages) == 1 and 'rounded up to 2 GiB' in messages[0]
    assert records(fake_backend) == [] and fake_backend.driver.calls == []


def test_create_then_idempotent(fake_backend):
    params = dict(name='v1', size=1, description='d', metadata={'k': 'v'}, extra_specs={'thin': 'true'})
    changed, before, after, _m = vol_present(fake_backend, **params)
    assert changed and before is None
    assert after['status'] == 'available' and after['metadata'] == {'k': 'v'}
    assert after['extra_specs'] == {'thin': 'true'}
    assert fake_backend.driver.volumes == {'volume-%s' % after['id']: 1}
    for check_mode in (True, False):
        changed, before2, after2, messages = vol_present(fake_backend, **params, check_mode=check_mode)
        assert not changed and before2 == after2 == after and messages == []
    # by id only
    changed, _b, found, _m = vol_present(fake_backend, id=after['id'])
    assert not changed and found['name'] == 'v1'


def test_create_with_given_id(fake_backend):
    volume_id = str(uuid.uuid4())
    _c, _b, predicted, _m = vol_present(fake_backend, name='v1', id=volume_id, size=1, check_mode=True)
    _c, _b, after, _m = vol_present(fake_backend, name='v1', id=volume_id, size=1)
    assert predicted['id'] == after['id'] == volume_id


def test_extend(fake_backend):
    _c, _b, created, _m = vol_present(fake_backend, name='v1', size=1)
    changed, before, after, _m = vol_present(fake_backend, name='v1', size='2G', check_mode=True)
    assert changed and before['size'] == 1 and after['size'] == 2
    assert records(fake_backend)[0]['size'] == 1 and 'extend_volume' not in fake_backend.driver.calls
    changed, before, after, _m = vol_present(fake_backend, name='v1', size='2G')
    assert changed and after['size'] == 2 and after['status'] == 'available'
    assert fake_backend.driver.volumes['volume-%s' % created['id']] == 2
    changed, _b, _a, _m = vol_present(fake_backend, name='v1', size=2)
    assert not changed


@pytest.mark.parametrize('check_mode', [True, False])
def test_shrink_refused(fake_backend, check_mode):
    vol_present(fake_backend, name='v1', size=2)
    with pytest.raises(InvalidRequest, match=r"Volume 'v1' on backend 'fake' is 2 GiB; size=1G would shrink it"):
        vol_present(fake_backend, name='v1', size='1G', check_mode=check_mode)
    assert records(fake_backend)[0]['size'] == 2
    assert fake_backend.driver.calls == ['create_volume']


@pytest.mark.parametrize('check_mode', [True, False])
def test_shrink_refused_names_size_policy(fake_backend, check_mode):
    vol_present(fake_backend, name='v1', size=2)
    with pytest.raises(InvalidRequest, match=r'or size_policy=at_least to only grow volumes smaller than size'):
        vol_present(fake_backend, name='v1', size=1, size_policy='exact', check_mode=check_mode)


def test_at_least_creates_grows_and_leaves_a_larger_volume(fake_backend):
    # Created at 1 GiB, grown to 2 GiB, then the first play again with at_least: unchanged.
    changed, _b, created, _m = vol_present(fake_backend, name='v1', size='1G', size_policy='at_least')
    assert changed and created['size'] == 1
    changed, before, after, _m = vol_present(fake_backend, name='v1', size='2G', size_policy='at_least',
                                             check_mode=True)
    assert changed and (before['size'], after['size']) == (1, 2)
    assert vol_present(fake_backend, name='v1', size='2G', size_policy='at_least')[0]
    assert fake_backend.driver.volumes['volume-%s' % created['id']] == 2
    calls = list(fake_backend.driver.calls)
    for check_mode in (True, False):
        changed, before, after, messages = vol_present(fake_backend, name='v1', size='1G', size_policy='at_least',
                                                       check_mode=check_mode)
        assert not changed and before == after and after['size'] == 2 and messages == []
    assert fake_backend.driver.calls == calls
    # Other changes still apply to a larger volume.
    changed, before, after, _m = vol_present(fake_backend, name='v1', size=1, size_policy='at_least',
                                             description='d')
    assert changed and after['size'] == 2 and after['description'] == 'd'


@pytest.mark.parametrize('size, current, policy, differs', [
    (None, 2, 'exact', False),
    (None, 2, 'at_least', False),
    (2, 2, 'exact', False),
    (1, 2, 'exact', True),
    (3, 2, 'exact', True),
    (2, 2, 'at_least', False),
    (1, 2, 'at_least', False),
    (3, 2, 'at_least', True),
    (1, None, 'at_least', True),
])
def test_size_differs(size, current, policy, differs):
    assert volume_state._size_differs(size, current, {'size_policy': policy}) is differs


def test_at_least_clone_and_from_snapshot_take_the_larger_size(fake_backend):
    vol_present(fake_backend, name='src', size=2)
    snap_present(fake_backend, volume='src', name='s1')
    for option, source in (('source_volume', 'src'), ('source_snapshot', 's1')):
        for check_mode in (True, False):
            changed, _b, after, _m = vol_present(fake_backend, name='c-' + option, size=1, size_policy='at_least',
                                                 check_mode=check_mode, **{option: source})
            assert changed and after['size'] == 2
        changed, _b, after, _m = vol_present(fake_backend, name='c-' + option, size=1, size_policy='at_least',
                                             **{option: source})
        assert not changed and after['size'] == 2


def test_quick_at_least(fake_backend):
    vol_present(fake_backend, name='v1', size=2)
    full = vol_present(fake_backend, name='v1', size=1, size_policy='at_least')
    assert full[0] is False
    assert quick(fake_backend, name='v1', size=1, size_policy='at_least') == full
    assert quick(fake_backend, name='v1', size=2, size_policy='at_least') is not None
    assert quick(fake_backend, name='v1', size=3, size_policy='at_least') is None
    assert quick(fake_backend, name='v1', size=1) is None  # exact: the full path refuses it


def test_size_required_to_create(fake_backend):
    with pytest.raises(InvalidRequest, match="size is required"):
        vol_present(fake_backend, name='v1')


def test_record_only_updates(fake_backend):
    vol_present(fake_backend, name='v1', size=1, metadata={'a': '1'})
    params = dict(name='v1', description='new', bootable=True, metadata={'b': '2'})
    changed, before, after, _m = vol_present(fake_backend, **params, check_mode=True)
    assert changed and before['description'] == '' and after['description'] == 'new'
    assert records(fake_backend)[0]['display_description'] == ''
    changed, _b, after, _m = vol_present(fake_backend, **params)
    assert changed and after['bootable'] is True and after['metadata'] == {'b': '2'}
    assert not vol_present(fake_backend, **params)[0]


def test_creation_only_options_warn(fake_backend):
    vol_present(fake_backend, name='v1', size=1)
    changed, _b, _a, messages = vol_present(fake_backend, name='v1', extra_specs={'x': 'y'})
    assert not changed
    assert len(messages) == 1 and 'extra_specs' in messages[0] and 'retype' in messages[0]


def test_unknown_pool(fake_backend):
    with pytest.raises(InvalidRequest, match="no pool 'nope'"):
        vol_present(fake_backend, name='v1', size=1, pool_name='nope', check_mode=True)


# -- volumes: failures and leftovers --------------------------------------------------------
def test_driver_error_mid_create_is_rolled_back_and_a_rerun_creates(fake_backend):
    fake_backend.driver.fail['create_volume'] = RuntimeError('array on fire')
    with pytest.raises(DriverOperationError) as err:
        vol_present(fake_backend, name='v1', size=1)
    assert str(err.value) == ("Failed to create volume 'v1' on backend 'fake': array on fire. "
                              "Nothing was left behind.")
    # The driver's delete removes whatever the array made of the failed create.
    assert fake_backend.driver.calls == ['create_volume', 'delete_volume']
    assert records(fake_backend) == []

    del fake_backend.driver.fail['create_volume']
    changed, _before, after, _m = vol_present(fake_backend, name='v1', size=1)
    assert changed and after['status'] == 'available'
    assert [r['status'] for r in records(fake_backend)] == ['available']


def test_failed_create_whose_clean_up_fails_too_is_left_for_state_absent(fake_backend):
    fake_backend.driver.fail['create_volume'] = RuntimeError('array on fire')
    fake_backend.driver.fail['delete_volume'] = RuntimeError('array still on fire')
    with pytest.raises(DriverOperationError) as err:
        vol_present(fake_backend, name='v1', size=1)
    message = str(err.value)
    assert message.startswith("Failed to create volume 'v1' on backend 'fake': array on fire. Cleaning up failed "
                              "too (Failed to delete volume 'v1' on backend 'fake': array still on fire)")
    assert message.endswith("volume 'v1' is recorded with status 'error_deleting' and state=absent removes it.")
    assert [r['status'] for r in records(fake_backend)] == ['error_deleting']
    del fake_backend.driver.fail['create_volume'], fake_backend.driver.fail['delete_volume']
    for check_mode in (True, False):
        with pytest.raises(InvalidRequest, match="has status 'error_deleting' in the state store.*state=absent"):
            vol_present(fake_backend, name='v1', size=1, check_mode=check_mode)
    changed, before, after, _m = vol_absent(fake_backend, name='v1')
    assert changed and before['status'] == 'error_deleting' and after is None
    assert records(fake_backend) == []


def test_a_given_id_whose_name_the_backend_has_is_refused_and_nothing_is_recorded(fake_backend):
    # A hand-made LV (or an old Cinder's) carries the name this id computes.
    volume_id = '1b6a8e2c-4f3d-4c1e-9a7b-2d5e6f708192'
    fake_backend.driver.volumes['volume-%s' % volume_id] = 3
    for check_mode in (False, True):
        with pytest.raises(BackendObjectExists, match="already has an object named 'volume-%s', which this "
                           'collection did not make.*Nothing was recorded or changed' % volume_id):
            vol_present(fake_backend, name='legacy', id=volume_id, size=1, check_mode=check_mode)
    assert records(fake_backend) == [] and fake_backend.driver.calls == []
    assert vol_absent(fake_backend, name='legacy', id=volume_id) == (False, None, None, [])
    assert fake_backend.driver.volumes == {'volume-%s' % volume_id: 3}


def test_a_snapshot_id_whose_name_the_backend_has_is_refused_and_nothing_is_recorded(fake_backend):
    vol_present(fake_backend, name='v1', size=1)
    snapshot_id = '2c7b9f3d-5e4a-4d2f-8b8c-3e6f7a819203'
    fake_backend.driver.volumes['snapshot-%s' % snapshot_id] = 1  # the fake lists snapshots as volumes
    fake_backend.driver.calls.clear()
    for check_mode in (False, True):
        with pytest.raises(BackendObjectExists, match="already has an object named 'snapshot-%s'" % snapshot_id):
            snap_present(fake_backend, volume='v1', name='s1', id=snapshot_id, check_mode=check_mode)
    assert records(fake_backend, 'snapshot') == [] and fake_backend.driver.calls == []


def test_a_failed_create_with_a_given_id_the_backend_did_not_have_is_rolled_back(fake_backend):
    # The name was free when the create began: what the driver left of it is the collection's.
    fake_backend.driver.fail['create_volume'] = RuntimeError('array busy')
    with pytest.raises(DriverOperationError, match='array busy. Nothing was left behind.'):
        vol_present(fake_backend, name='v1', id='1b6a8e2c-4f3d-4c1e-9a7b-2d5e6f708192', size=1)
    assert fake_backend.driver.calls == ['create_volume', 'delete_volume'] and records(fake_backend) == []


def test_a_driver_that_cant_list_keeps_a_failed_create_with_a_given_id_and_absent_leaves_the_object(fake_backend):
    # The backend may hold an object of that name that this create did not make.
    del fake_backend.driver.vg
    volume_id = '1b6a8e2c-4f3d-4c1e-9a7b-2d5e6f708192'
    name = 'volume-%s' % volume_id
    fake_backend.driver.volumes[name] = 3
    fake_backend.driver.fail['create_volume'] = RuntimeError('already exists')
    with pytest.raises(DriverOperationError) as err:
        vol_present(fake_backend, name='v1', id=volume_id, size=1)
    assert ("Volume 'v1' is recorded with status 'error'; state=absent removes the record and leaves what the "
            "backend has under the name '%s'" % name) in str(err.value)
    assert fake_backend.driver.calls == ['create_volume']
    assert [(r['status'], r['owned']) for r in records(fake_backend)] == [('error', False)]
    del fake_backend.driver.fail['create_volume']
    with pytest.raises(InvalidRequest, match="has status 'error' in the state store.*state=absent"):
        vol_present(fake_backend, name='v1', id=volume_id, size=1)
    # Check mode and diff say that the record goes and the object stays.
    changed, before, after, messages = vol_absent(fake_backend, name='v1', check_mode=True)
    assert changed and before['backend_objects'] == [name] and after == {'backend_objects': [name]}
    assert messages == ["Volume 'v1' on backend 'fake': only its record is removed; the backend's object named "
                        "'%s', if there is one, is left as it is: this collection did not make it." % name]
    assert vol_absent(fake_backend, name='v1')[0]
    assert records(fake_backend) == [] and fake_backend.driver.volumes == {name: 3}
    assert fake_backend.driver.calls == ['create_volume']


def test_a_record_from_before_ownership_was_recorded(fake_backend):
    # Records without 'owned': a failed create ('error') can't tell whose its name is.
    _c, _b, kept, _m = vol_present(fake_backend, name='kept', size=1)
    _c, _b, failed, _m = vol_present(fake_backend, name='failed', size=1)
    for volume in (kept, failed):
        [record] = fake_backend.persistence.volume_records(volume_id=volume['id'])
        record.pop('owned')
        fake_backend.persistence.put('volume', dict(record, status='error' if volume is failed else 'available'))
    for volume in (kept, failed):
        assert vol_absent(fake_backend, name=volume['name'])[0]
    assert fake_backend.driver.volumes == {'volume-%s' % failed['id']: 1} and records(fake_backend) == []


@pytest.mark.parametrize('status', ['creating', 'extending', 'error_deleting'])
def test_leftover_status_refused(fake_backend, status):
    vol_present(fake_backend, name='v1', size=1)
    record = records(fake_backend)[0]
    record['status'] = status
    type(fake_backend).persistence.put('volume', record)
    with pytest.raises(InvalidRequest, match="has status '%s'" % status):
        vol_present(fake_backend, name='v1', size=2)
    assert 'extend_volume' not in fake_backend.driver.calls


def test_missing_on_backend_is_never_recreated(fake_backend):
    _c, _b, created, _m = vol_present(fake_backend, name='v1', size=1)
    fake_backend.driver.volumes.clear()  # removed behind the collection's back
    for check_mode in (True, False):
        with pytest.raises(InvalidRequest, match="in the state store but not on backend 'fake'"):
            vol_present(fake_backend, name='v1', size=1, check_mode=check_mode)
    assert fake_backend.driver.calls == ['create_volume']
    assert records(fake_backend)[0]['id'] == created['id']
    assert vol_absent(fake_backend, name='v1')[0]
    assert records(fake_backend) == []


def test_driver_that_cannot_tell(fake_backend):
    vol_present(fake_backend, name='v1', size=1)
    del fake_backend.driver.vg
    fake_backend.driver.volumes.clear()
    assert vol_present(fake_backend, name='v1', size=1)[0] is False


# -- volumes: keys that clash ----------------------------------------------------------------
def test_name_with_another_id(fake_backend):
    vol_present(fake_backend, name='v1', size=1)
    with pytest.raises(InvalidRequest, match="Volume 'v1' on backend 'fake' has id .*, not "):
        vol_present(fake_backend, name='v1', id=str(uuid.uuid4()), size=1, check_mode=True)


def test_id_of_another_name(fake_backend):
    _c, _b, v1, _m = vol_present(fake_backend, name='v1', size=1)
    with pytest.raises(InvalidRequest, match="already belongs to volume 'v1'"):
        vol_present(fake_backend, name='v2', id=v1['id'], size=1)
    with pytest.raises(InvalidRequest, match="already belongs to volume 'v1'"):
        vol_absent(fake_backend, name='v2', id=v1['id'])
    assert len(records(fake_backend)) == 1


def test_id_on_another_backend(fake_backend, other_backend):
    _c, _b, v1, _m = vol_present(other_backend, name='v1', size=1)
    with pytest.raises(InvalidRequest, match="belongs to a volume on backend 'other'"):
        vol_present(fake_backend, id=v1['id'], size=1)
    # names are per backend
    assert vol_present(fake_backend, name='v1', size=1)[0]


def test_a_display_name_several_library_volumes_share_is_refused_with_their_ids(fake_backend):
    # The library (as cinderlib) lets volumes share a display name; the modules key by it.
    first = fake_backend.create_volume(1, name='dup')
    second = fake_backend.create_volume(2, name='dup')
    ids = ', '.join(sorted((first.id, second.id)))
    for call in (lambda: vol_present(fake_backend, name='dup', size=1),
                 lambda: vol_absent(fake_backend, name='dup')):
        with pytest.raises(InvalidRequest, match=r"Several volumes are named 'dup' on backend 'fake' \(ids %s\); "
                                                 r"give id to choose one" % ids):
            call()
    assert len(records(fake_backend)) == 2
    # The id says which.
    changed, before, _a, _m = vol_present(fake_backend, name='dup', id=second.id, size=2)
    assert not changed and before['id'] == second.id and before['name'] == 'dup'
    assert vol_absent(fake_backend, name='dup', id=first.id)[0]
    assert [r['id'] for r in records(fake_backend)] == [second.id]


class _FileLock:
    """An inter-process lock (flock) with tooz's acquire(blocking): what the
    Cinder runtime's locks are, without Cinder."""

    def __init__(self, path):
        self._path = path
        self._file = None

    def acquire(self, blocking=True):
        import fcntl
        self._file = open(self._path, 'a')  # noqa: SIM115 - held until release
        fcntl.flock(self._file, fcntl.LOCK_EX)
        return True

    def release(self):
        self._file.close()


def _race_for_a_name(url, lock_dir, barrier, results):
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import locks, persistence
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import Backend
    try:
        Backend.persistence = persistence.SQLStore(url)  # a store of this process's own
        locks._lock = lambda name: _FileLock(str(lock_dir / name.replace('/', '_')))
        # Each process has a FakeDriver of its own, which can't know what the other made.
        Backend.backends['fake'].driver.vg = None
        barrier.wait()
        changed, _b, after, _m = vol_present(Backend.backends['fake'], name='race', size=1)
        results.put(('ok', changed, after['id']))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put(('error', repr(exc), None))


@pytest.mark.parametrize('fake_backend', ['memory'], indirect=True)
def test_two_processes_racing_on_one_name_make_one_volume(fake_backend, tmp_path):
    import multiprocessing

    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import persistence
    url = 'sqlite:///%s' % (tmp_path / 'state.db')
    persistence.SQLStore(url).close()
    ctx = multiprocessing.get_context('fork')
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race_for_a_name, args=(url, tmp_path, barrier, results)) for _n in range(2)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=60) for _proc in procs]
    for proc in procs:
        proc.join(timeout=30)
    assert [o[0] for o in outcomes] == ['ok', 'ok'], outcomes
    # One created it; the other, waiting on the name's lock, found it.
    assert sorted(o[1] for o in outcomes) == [False, True] and outcomes[0][2] == outcomes[1][2]
    store = persistence.SQLStore(url)
    assert [r['display_name'] for r in store.volume_records(backend='fake')] == ['race']
    store.close()


def test_non_uuid_id(fake_backend):
    with pytest.raises(InvalidRequest, match="id 'abc' is not a UUID"):
        vol_present(fake_backend, name='v1', id='abc', size=1, check_mode=True)


# -- volumes: sources ------------------------------------------------------------------------
@pytest.mark.parametrize('option, match', [
    ('source_volume', "source_volume: volume 'nope' is not known on backend 'fake'"),
    ('source_snapshot', "source_snapshot: snapshot 'nope' is not known on backend 'fake'"),
])
def test_missing_source(fake_backend, option, match):
    for check_mode in (True, False):
        with pytest.raises(NotFound, match=match):
            vol_present(fake_backend, name='v2', **{option: 'nope'}, check_mode=check_mode)
    assert records(fake_backend) == []


def test_clone(fake_backend):
    _c, _b, src, _m = vol_present(fake_backend, name='src', size=2, description='s')
    with pytest.raises(InvalidRequest, match="can't be smaller than its 2 GiB"):
        vol_present(fake_backend, name='c1', source_volume='src', size=1, check_mode=True)
    changed, _b, predicted, _m = vol_present(fake_backend, name='c1', source_volume=src['id'], check_mode=True)
    assert changed and predicted['size'] == 2 and predicted['source'] == {'type': 'volume', 'id': src['id']}
    assert len(records(fake_backend)) == 1
    changed, _b, after, _m = vol_present(fake_backend, name='c1', source_volume='src')
    assert changed and after['size'] == 2 and after['source'] == predicted['source']
    assert after['description'] == 's' and 'create_cloned_volume' in fake_backend.driver.calls
    assert not vol_present(fake_backend, name='c1', source_volume='src')[0]


def test_from_snapshot(fake_backend):
    vol_present(fake_backend, name='src', size=1)
    _c, _b, s1, _m = snap_present(fake_backend, volume='src', name='s1')
    vol_present(fake_backend, name='src', size=3)  # the snapshot stays 1 GiB
    changed, _b, predicted, _m = vol_present(fake_backend, name='r1', source_snapshot='s1', check_mode=True)
    assert changed and predicted['size'] == 1 and predicted['source'] == {'type': 'snapshot', 'id': s1['id']}
    changed, _b, after, _m = vol_present(fake_backend, name='r1', source_snapshot=s1['id'], size=2)
    assert changed and after['size'] == 2 and 'create_volume_from_snapshot' in fake_backend.driver.calls


# -- volumes: absent -------------------------------------------------------------------------
def test_absent(fake_backend):
    for check_mode in (True, False):
        assert vol_absent(fake_backend, name='v1', check_mode=check_mode) == (False, None, None, [])
    _c, _b, created, _m = vol_present(fake_backend, name='v1', size=1)
    changed, before, after, _m = vol_absent(fake_backend, name='v1', check_mode=True)
    assert changed and before == dict(created, backend_objects=['volume-%s' % created['id']]) and after is None
    assert len(records(fake_backend)) == 1
    changed, _b, _a, _m = vol_absent(fake_backend, name='v1')
    assert changed and records(fake_backend) == [] and fake_backend.driver.volumes == {}
    assert not vol_absent(fake_backend, name='v1')[0]


def test_absent_with_snapshots(fake_backend):
    vol_present(fake_backend, name='v1', size=1)
    snap_present(fake_backend, volume='v1', name='s1')
    for check_mode in (True, False):
        with pytest.raises(InvalidRequest, match=r"has snapshots \(s1\). Delete them first or set cascade=true"):
            vol_absent(fake_backend, name='v1', check_mode=check_mode)
    assert vol_absent(fake_backend, name='v1', cascade=True, check_mode=True)[0]
    assert len(records(fake_backend, 'snapshot')) == 1
    assert vol_absent(fake_backend, name='v1', cascade=True)[0]
    assert records(fake_backend) == [] and records(fake_backend, 'snapshot') == []
    assert fake_backend.driver.snapshots == set() and fake_backend.driver.volumes == {}


# -- snapshots ---------------------------------------------------------------------------------
def test_snapshot_lifecycle(fake_backend):
    _c, _b, v1, _m = vol_present(fake_backend, name='v1', size=1)
    params = dict(volume='v1', name='s1', description='d')
    changed, before, predicted, _m = snap_present(fake_backend, **params, check_mode=True)
    assert changed and before is None and set(predicted) == SNAPSHOT_FIELDS
    assert predicted['status'] == 'available' and records(fake_backend, 'snapshot') == []
    changed, _b, after, _m = snap_present(fake_backend, **params)
    assert changed and after['volume_id'] == v1['id'] and after['status'] == 'available'
    assert snap_present(fake_backend, volume=v1['id'], name='s1', description='d', check_mode=True)[0] is False
    assert snap_present(fake_backend, **params)[0] is False
    changed, _b, updated, _m = snap_present(fake_backend, volume='v1', name='s1', description='e')
    assert changed and updated['description'] == 'e'
    _c, _b, listed, _m = vol_present(fake_backend, name='v1')
    assert [s['id'] for s in listed['snapshots']] == [after['id']]
    assert snap_absent(fake_backend, **params, check_mode=True)[0]
    assert len(records(fake_backend, 'snapshot')) == 1
    assert snap_absent(fake_backend, **params)[0]
    assert records(fake_backend, 'snapshot') == [] and fake_backend.driver.snapshots == set()
    assert not snap_absent(fake_backend, **params)[0]


def test_snapshots_by_id(fake_backend):
    _c, _b, v1, _m = vol_present(fake_backend, name='v1', size=1)
    vol_present(fake_backend, name='v2', size=1)
    sid = str(uuid.uuid4())
    changed, _b, made, _m = snap_present(fake_backend, volume='v1', name='s1', id=sid)
    assert changed and made['id'] == sid
    # By id alone, and by name and id; unchanged either way.
    assert snap_present(fake_backend, volume='v1', id=sid)[0] is False
    assert snap_present(fake_backend, volume='v1', name='s1', id=sid)[0] is False
    with pytest.raises(InvalidRequest, match="Snapshot id %s of volume 'v1' is named 's1', not 'other'" % sid):
        snap_present(fake_backend, volume='v1', name='other', id=sid)
    with pytest.raises(InvalidRequest, match="Snapshot id %s belongs to a snapshot of volume %s, not of volume 'v2'"
                       % (sid, v1['id'])):
        snap_present(fake_backend, volume='v2', name='s1', id=sid)
    # Library snapshots may share a name: the name alone is refused with their ids, the id chooses.
    [volume] = fake_backend.volumes_filtered(volume_name='v1')
    twin = volume.create_snapshot(name='s1')
    with pytest.raises(InvalidRequest, match=r"has several snapshots named 's1' \(ids %s\); give id to choose one"
                       % ', '.join(sorted((sid, twin.id)))):
        snap_present(fake_backend, volume='v1', name='s1')
    assert snap_absent(fake_backend, volume='v1', id=twin.id)[0]
    assert [r['id'] for r in records(fake_backend, 'snapshot')] == [sid]
    with pytest.raises(InvalidRequest, match="id 'nope' is not a UUID"):
        check_snapshot_params(snap(volume='v1', id='nope'))


def test_snapshot_of_missing_volume(fake_backend):
    with pytest.raises(NotFound, match="Can't snapshot volume 'nope': it is not known on backend 'fake'"):
        snap_present(fake_backend, volume='nope', name='s1', check_mode=True)
    assert snap_absent(fake_backend, volume='nope', name='s1') == (False, None, None, [])


def test_snapshot_driver_error_leaves_nothing(fake_backend):
    vol_present(fake_backend, name='v1', size=1)
    fake_backend.driver.fail['create_snapshot'] = RuntimeError('no device-mapper')
    with pytest.raises(DriverOperationError) as err:
        snap_present(fake_backend, volume='v1', name='s1')
    assert str(err.value) == ("Failed to create snapshot 's1' on backend 'fake': no device-mapper. "
                              "Nothing was left behind.")
    assert records(fake_backend, 'snapshot') == []
    assert fake_backend.driver.calls[-2:] == ['create_snapshot', 'delete_snapshot']


def test_snapshot_rollback_failure_is_reported(fake_backend):
    vol_present(fake_backend, name='v1', size=1)
    fake_backend.driver.fail['create_snapshot'] = RuntimeError('no device-mapper')
    fake_backend.driver.fail['delete_snapshot'] = RuntimeError('busy')
    with pytest.raises(DriverOperationError, match="Cleaning up failed too .*busy.*status 'error_deleting'"):
        snap_present(fake_backend, volume='v1', name='s1')
    assert [r['status'] for r in records(fake_backend, 'snapshot')] == ['error_deleting']
    fake_backend.driver.fail.clear()
    with pytest.raises(InvalidRequest, match="Snapshot 's1' on backend 'fake' has status 'error_deleting'"):
        snap_present(fake_backend, volume='v1', name='s1')
    assert snap_absent(fake_backend, volume='v1', name='s1')[0]
    assert records(fake_backend, 'snapshot') == []


def test_snapshot_of_volume_in_error(fake_backend):
    del fake_backend.driver.vg  # a driver that can't tell: the failed create with a given id is kept as 'error'
    fake_backend.driver.fail['create_volume'] = RuntimeError('boom')
    with pytest.raises(DriverOperationError):
        vol_present(fake_backend, name='v1', id=VALID_ID, size=1)
    with pytest.raises(InvalidRequest, match="Can't snapshot: volume 'v1' on backend 'fake' has status 'error'"):
        snap_present(fake_backend, volume='v1', name='s1', check_mode=True)


# -- the modules' own options, checked before anything is opened ------------------------------
VALID_ID = '0b5e8c7a-6e1e-4f7c-9d4e-4f3bd2a9b0c1'


@pytest.mark.parametrize('params', [
    {'name': 'data01'},
    {'id': VALID_ID},
    {'name': 'x' * 255, 'size': '10G', 'source_volume': 'src'},
    {'name': 'données', 'source_snapshot': VALID_ID, 'pool_name': 'pool1'},
    {'id': 'my-volume', 'non_uuid_ids': True},
])
def test_check_volume_params_accepts(params):
    volume_state.check_volume_params(params)


@pytest.mark.parametrize('params, message', [
    ({'name': ''}, r'^name is empty; give a name such as data01, or leave name out\.$'),
    ({'name': '   '}, r'^name is empty'),
    ({'name': 'x' * 256}, r'^name is 256 characters long; use at most 255\.$'),
    ({'name': 'data\n01'}, r"^name 'data\\n01' contains the control character '\\n' \(a newline, tab\.\.\.\); "
                           r"remove it\.$"),
    ({'name': 'a\tb'}, r"contains the control character '\\t'"),
    ({'id': 'not-a-uuid'}, r"^id 'not-a-uuid' is not a UUID \(such as .*\); give a UUID, or set non_uuid_ids=true"),
    ({'id': 'x\x00', 'non_uuid_ids': True}, r'control character'),
    ({'name': 'v', 'source_volume': ''}, r'^source_volume is empty'),
    ({'name': 'v', 'source_snapshot': 's' * 300}, r'^source_snapshot is 300 characters long'),
    ({'name': 'v', 'source_volume': 'a', 'source_snapshot': 'b'}, r'^source_volume and source_snapshot are mutually'),
    ({'name': 'v', 'size': 0}, r'^Invalid size 0: a volume needs at least 1 GiB\.$'),
    ({'name': 'v', 'size': '-1G'}, r"^Invalid size '-1G'"),
    ({'name': 'v', 'size': '10Q'}, r"^Invalid size '10Q': use a whole number of GiB"),
])
def test_check_volume_params_refuses(params, message):
    with pytest.raises(InvalidRequest, match=message):
        volume_state.check_volume_params(params)


@pytest.mark.parametrize('params, message', [
    ({'volume': '', 'name': 's'}, r'^volume is empty'),
    ({'volume': 'v', 'name': 'x' * 256}, r'^name is 256 characters long'),
    ({'volume': 'v', 'name': 'snap\r'}, r'control character'),
])
def test_check_snapshot_params_refuses(params, message):
    with pytest.raises(InvalidRequest, match=message):
        volume_state.check_snapshot_params(params)


# -- the fast path: quick_volume_state ---------------------------------------------------------
def on_fake_array(backend):
    """The cheap look at the backend, here at the fake driver's array."""
    return lambda record: ('volume-%s' % record['id']) in backend.driver.volumes


def quick(backend, **params):
    params.setdefault('state', 'present')
    return volume_state.quick_volume_state(type(backend).persistence, backend.id, vol(**params),
                                           on_fake_array(backend))


def test_quick_answers_as_the_full_path_for_an_unchanged_volume(fake_backend):
    params = dict(name='v1', size='1G', description='d', metadata={'k': 'v'}, extra_specs={'thin': 'true'})
    _c, _b, created, _m = vol_present(fake_backend, **params)
    snap_present(fake_backend, volume='v1', name='s1')
    full = vol_present(fake_backend, **params)
    assert full[0] is False
    calls = list(fake_backend.driver.calls)
    assert quick(fake_backend, **params) == full
    assert quick(fake_backend, id=created['id']) == vol_present(fake_backend, id=created['id'])
    assert fake_backend.driver.calls == calls  # the driver was not asked anything


def test_quick_gives_the_full_paths_warnings(fake_backend):
    vol_present(fake_backend, name='v1', size=1)
    params = dict(name='v1', size='1000M', extra_specs={'thin': 'true'}, pool_name='pool1')
    full = vol_present(fake_backend, **params)
    assert len(full[3]) == 2
    assert quick(fake_backend, **params) == full


@pytest.mark.parametrize('change', [
    {'size': 2},
    {'size': '1.5G'},
    {'description': 'new'},
    {'bootable': True},
    {'metadata': {'k': 'other'}},
    {'name': 'unknown'},
    {'id': str(uuid.uuid4())},
])
def test_quick_leaves_anything_to_change_to_the_full_path(fake_backend, change):
    vol_present(fake_backend, name='v1', size=1, metadata={'k': 'v'})
    assert quick(fake_backend, **dict(dict(name='v1', size=1), **change)) is None


def test_quick_leaves_a_volume_gone_from_the_backend_to_the_full_path(fake_backend):
    vol_present(fake_backend, name='v1', size=1)
    fake_backend.driver.volumes.clear()  # removed behind the collection's back
    assert quick(fake_backend, name='v1', size=1) is None
    with pytest.raises(InvalidRequest, match="in the state store but not on backend 'fake'"):
        vol_present(fake_backend, name='v1', size=1)


@pytest.mark.parametrize('status', ['error', 'creating', 'extending', 'deleting'])
def test_quick_leaves_unusable_records_to_the_full_path(fake_backend, status):
    _c, _b, created, _m = vol_present(fake_backend, name='v1', size=1)
    record = records(fake_backend)[0]
    record['status'] = status
    type(fake_backend).persistence.put('volume', record)
    assert quick(fake_backend, name='v1', size=1) is None
    assert quick(fake_backend, id=created['id']) is None


def test_quick_volume_of_another_backend_goes_to_the_full_path(fake_backend, other_backend):
    _c, _b, created, _m = vol_present(other_backend, name='v1', size=1)
    assert quick(fake_backend, id=created['id']) is None
    assert quick(fake_backend, name='v1', id=created['id']) is None


def test_quick_absent(fake_backend):
    assert quick(fake_backend, name='v1', state='absent') == vol_absent(fake_backend, name='v1')
    assert quick(fake_backend, id=str(uuid.uuid4()), state='absent') == (False, None, None, [])
    _c, _b, created, _m = vol_present(fake_backend, name='v1', size=1)
    assert quick(fake_backend, name='v1', state='absent') is None
    assert quick(fake_backend, id=created['id'], state='absent') is None
    assert quick(fake_backend, name='v2', id=created['id'], state='absent') is None


# -- the volumes list: volume_items ---------------------------------------------------------------
def batch(volumes, **task):
    params = vol(state='present', **task)
    params['volumes'] = volumes
    return params


def test_volume_items_take_the_tasks_options_as_defaults():
    items = volume_state.volume_items(batch(
        [{'name': 'a', 'size': None}, {'name': 'b', 'size': 5, 'state': 'absent'}, {'id': str(uuid.uuid4())}],
        size=1, metadata={'k': 'v'}))
    assert [(i['name'], i['size'], i['state'], i['metadata']) for i in items] == [
        ('a', 1, 'present', {'k': 'v'}), ('b', 5, 'absent', {'k': 'v'}), (None, 1, 'present', {'k': 'v'})]
    assert all('volumes' not in i for i in items)
    assert volume_state.volume_items(batch([])) == []


def test_volume_items_take_the_tasks_size_policy_unless_they_give_one(fake_backend):
    items = volume_state.volume_items(batch(
        [{'name': 'a', 'size_policy': None}, {'name': 'b', 'size_policy': 'exact'}], size=1, size_policy='at_least'))
    assert [i['size_policy'] for i in items] == ['at_least', 'exact']
    for name in ('a', 'b'):
        vol_present(fake_backend, name=name, size=2)
    assert ensure_volume_present(fake_backend, items[0], False)[0] is False
    with pytest.raises(InvalidRequest, match="Volume 'b' on backend 'fake' is 2 GiB; size=1 would shrink it"):
        ensure_volume_present(fake_backend, items[1], False)


@pytest.mark.parametrize('volumes, message', [
    ([{'name': 'a'}, {'name': 'b', 'size': '0'}], "volumes[1] 'b': Invalid size '0'"),
    ([{'name': 'a'}, {'size': 1}], 'volumes[1]: give the name or the id of the volume.'),
    ([{'name': 'a'}, {'name': 'a'}], "volumes[1] 'a': volume 'a' is already volumes[0]; list each volume once."),
    ([{'name': 'a\n'}], "volumes[0] 'a\n': name 'a\\n' contains the control character"),
    ([{'name': 'a', 'id': 'not-a-uuid'}], "volumes[0] 'a': id 'not-a-uuid' is not a UUID"),
    ([{'name': 'a', 'source_volume': 'x', 'source_snapshot': 'y'}], "volumes[0] 'a': source_volume and"),
    (['a'], "volumes[0] is 'a', not a dict of volume options"),
])
def test_volume_items_refuse_bad_items_naming_them(volumes, message):
    with pytest.raises(InvalidRequest) as err:
        volume_state.check_volume_params(batch(volumes))
    assert str(err.value).startswith(message)


def quick_snap(backend, **params):
    params.setdefault('state', 'present')
    return volume_state.quick_snapshot_state(type(backend).persistence, backend.id, snap(**params),
                                             on_fake_array(backend))


def test_quick_snapshot_answers_as_the_full_path(fake_backend):
    _c, _b, volume, _m = vol_present(fake_backend, name='v1', size=1)
    snap_present(fake_backend, volume='v1', name='s1', description='d')
    calls = list(fake_backend.driver.calls)
    for ref in ('v1', volume['id']):
        full = snap_present(fake_backend, volume=ref, name='s1', description='d')
        assert full[0] is False
        assert quick_snap(fake_backend, volume=ref, name='s1', description='d') == full
        assert quick_snap(fake_backend, volume=ref, name='s1') == full
    assert quick_snap(fake_backend, volume='v1', name='s2', state='absent') == \
        snap_absent(fake_backend, volume='v1', name='s2')
    assert quick_snap(fake_backend, volume='nowhere', name='s1', state='absent') == (False, None, None, [])
    assert fake_backend.driver.calls == calls


def test_quick_snapshot_leaves_anything_else_to_the_full_path(fake_backend, other_backend):
    vol_present(fake_backend, name='v1', size=1)
    snap_present(fake_backend, volume='v1', name='s1')
    assert quick_snap(fake_backend, volume='v1', name='s1', description='new') is None
    assert quick_snap(fake_backend, volume='v1', name='s2') is None
    assert quick_snap(fake_backend, volume='nowhere', name='s1') is None
    assert quick_snap(fake_backend, volume='v1', name='s1', state='absent') is None
    vol_present(other_backend, name='v1', size=1)
    assert quick_snap(other_backend, volume='v1', name='s1', state='absent') == (False, None, None, [])
    record = records(fake_backend, 'snapshot')[0]
    type(fake_backend).persistence.put('snapshot', dict(record, status='error'))
    assert quick_snap(fake_backend, volume='v1', name='s1') is None
    type(fake_backend).persistence.put('snapshot', record)
    fake_backend.driver.volumes.clear()  # the volume is gone from the backend
    assert quick_snap(fake_backend, volume='v1', name='s1') is None


# -- adopt (existing) and release (state=unmanaged) -------------------------------------------
def test_existing_is_adopted_once_renamed_and_then_found_by_name(fake_backend):
    fake_backend.driver.volumes['legacy-lv'] = 3
    predicted = vol_present(fake_backend, check_mode=True, name='legacy', existing='legacy-lv')
    assert predicted[0] is True and predicted[2]['size'] == 3 and records(fake_backend) == []
    assert 'manage_existing' not in fake_backend.driver.calls  # check mode only sized it up
    changed, before, after, messages = vol_present(fake_backend, name='legacy', existing='legacy-lv')
    assert changed is True and before == {'backend_objects': ['legacy-lv']}
    assert after['size'] == 3 and after['backend_objects'] == ['volume-%s' % after['id']]
    assert "renamed 'legacy-lv' to 'volume-%s'" % after['id'] in messages[0]
    assert fake_backend.driver.volumes == {'volume-%s' % after['id']: 3}
    (record,) = records(fake_backend)
    assert (record['status'], record['owned'], record['manage_reference']) == (
        'available', True, {'source-name': 'legacy-lv'})
    again = vol_present(fake_backend, name='legacy', existing='legacy-lv')
    assert again[0] is False


@pytest.mark.parametrize('check_mode', [True, False])
def test_a_missing_or_known_reference_is_refused_and_nothing_is_recorded(fake_backend, check_mode):
    _c, _b, known, _m = vol_present(fake_backend, name='known', size=1)
    with pytest.raises(DriverOperationError, match="invalid backend reference"):
        vol_present(fake_backend, check_mode=check_mode, name='new', existing='no-such-lv')
    with pytest.raises(InvalidRequest, match="already known to the state store"):
        vol_present(fake_backend, check_mode=check_mode, name='new', existing='volume-%s' % known['id'])
    assert [r['display_name'] for r in records(fake_backend)] == ['known']


def test_a_failed_adopt_records_nothing(fake_backend):
    fake_backend.driver.volumes['legacy-lv'] = 1
    fake_backend.driver.fail['manage_existing'] = RuntimeError('rename failed')
    with pytest.raises(DriverOperationError, match='rename failed'):
        vol_present(fake_backend, name='legacy', existing='legacy-lv')
    assert records(fake_backend) == [] and fake_backend.driver.volumes == {'legacy-lv': 1}


@pytest.mark.parametrize('params, message', [
    ({'name': 'v', 'existing': 'lv', 'size': 1}, r'^existing adopts an object as it is on the backend.*: size cannot'),
    ({'name': 'v', 'existing': 'lv', 'source_volume': 'a'}, r'source_volume cannot go with it'),
    ({'name': 'v', 'existing': ''}, r'^existing is empty'),
])
def test_existing_refuses_what_it_cannot_take(params, message):
    with pytest.raises(InvalidRequest, match=message):
        volume_state.check_volume_params(params)


def test_unmanaged_forgets_the_volume_and_leaves_its_data(fake_backend):
    _c, _b, made, _m = vol_present(fake_backend, name='v1', size=1)
    name = 'volume-%s' % made['id']
    predicted = vol_absent(fake_backend, check_mode=True, name='v1', state='unmanaged')
    assert predicted[0] is True and predicted[2] == {'backend_objects': [name]} and len(records(fake_backend)) == 1
    changed, before, after, messages = vol_absent(fake_backend, name='v1', state='unmanaged')
    assert changed is True and before['backend_objects'] == [name] and after == {'backend_objects': [name]}
    assert 'its data stays on the backend' in messages[0]
    assert records(fake_backend) == [] and name in fake_backend.driver.volumes
    assert vol_absent(fake_backend, name='v1', state='unmanaged')[0] is False
    assert quick(fake_backend, name='v1', state='unmanaged') == (False, None, None, [])


def test_unmanaged_refuses_a_volume_with_snapshots(fake_backend):
    vol_present(fake_backend, name='v1', size=1)
    snap_present(fake_backend, volume='v1', name='s1')
    with pytest.raises(InvalidRequest, match="Can't release volume 'v1'.*it has snapshots"):
        vol_absent(fake_backend, name='v1', state='unmanaged')
    assert quick(fake_backend, name='v1', state='unmanaged') is None  # known: the full path decides
