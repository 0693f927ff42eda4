# The Cinder DB API subset drivers call, answered from the state store.
from __future__ import annotations

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.dbapi import DriverDB, backend_of_host
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import MemoryStore


@pytest.fixture
def db():
    store = MemoryStore()
    store.put('volume', {'id': 'v1', 'backend': 'lvm', 'name': 'a', 'size': 1, 'status': 'available',
                         'metadata': {'k': 'v'}, 'admin_metadata': {},
                         'volume_type': {'id': 't1', 'name': 't1', 'extra_specs': {'thin': 'true'},
                                         'qos_specs': {'id': 'q1', 'name': 't1', 'consumer': 'back-end',
                                                       'specs': {'maxIOPS': '100'}}}})
    store.put('volume', {'id': 'v2', 'backend': 'other', 'name': 'b', 'size': 2, 'status': 'available'})
    store.put('snapshot', {'id': 's1', 'volume_id': 'v1', 'name': 'snap', 'status': 'available'})
    return DriverDB(store)


def test_volume_get_reads_like_a_row(db):
    row = db.volume_get(None, 'v1')
    assert row['size'] == 1 and row.size == 1 and row.name == 'a'


def test_volume_update_persists(db):
    db.volume_update(None, 'v1', {'provider_location': 'here', 'id': 'ignored'})
    assert db.volume_get(None, 'v1').provider_location == 'here'
    assert db.store.volume_records(volume_id='v1')[0]['provider_location'] == 'here'


def test_volumes_by_host_use_the_backend_part(db):
    assert [v.id for v in db.volume_get_all_by_host(None, 'node@lvm#pool')] == ['v1']
    assert backend_of_host('node@lvm#pool') == 'lvm' and backend_of_host('lvm') == 'lvm'


def test_metadata_and_admin_metadata(db):
    assert db.volume_metadata_get(None, 'v1') == {'k': 'v'}
    assert db.volume_metadata_update(None, 'v1', {'x': 'y'}, False) == {'k': 'v', 'x': 'y'}
    assert db.volume_metadata_update(None, 'v1', {'only': '1'}, True) == {'only': '1'}
    db.volume_admin_metadata_update(None, 'v1', {'readonly': 'True'}, False)
    assert db.volume_admin_metadata_get(None, 'v1') == {'readonly': 'True'}
    db.volume_admin_metadata_delete(None, 'v1', 'readonly')
    assert db.volume_admin_metadata_get(None, 'v1') == {}


def test_snapshots(db):
    assert db.snapshot_get(None, 's1').volume_id == 'v1'
    db.snapshot_update(None, 's1', {'progress': '100%'})
    assert [s.progress for s in db.snapshot_get_all_for_volume(None, 'v1')] == ['100%']


def test_volume_types_come_from_the_volumes_that_carry_them(db):
    assert db.volume_type_get(None, 't1').name == 't1'
    assert db.volume_type_extra_specs_get(None, 't1') == {'thin': 'true'}
    assert db.qos_specs_get(None, 'q1').specs == {'maxIOPS': '100'}


@pytest.mark.parametrize('call, args', [
    ('volume_get', ('nope',)),
    ('snapshot_get', ('nope',)),
    ('volume_type_get', ('nope',)),
    ('qos_specs_get', ('nope',)),
])
def test_missing_records_raise_not_found(db, call, args):
    with pytest.raises(LookupError, match='not found'):
        getattr(db, call)(None, *args)


def test_an_unsupported_call_names_itself(db):
    with pytest.raises(NotImplementedError, match="Cinder DB API function 'service_get_all'"):
        db.service_get_all(None)
