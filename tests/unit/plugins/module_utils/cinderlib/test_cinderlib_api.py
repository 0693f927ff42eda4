"""cinderlib 5.2.0's public API beyond its functional suite (issue 27): class
look-ups and their exceptions, save, cleanup, set_persistence and the
persistence plugins' change tracking, on the fake backend."""

from __future__ import annotations

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import Backend
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import PersistenceDriverBase


def test_look_ups_by_id_and_name_and_their_exceptions(fake_backend):
    volume = fake_backend.create_volume(1, name='data')
    snapshot = volume.create_snapshot(name='snap')
    assert cinderlib.Volume.get_by_id(volume.id) is volume
    assert cinderlib.Volume.get_by_name('data') == [volume] and cinderlib.Volume.get_by_name('none') == []
    assert cinderlib.Snapshot.get_by_id(snapshot.id) is snapshot
    assert cinderlib.Snapshot.get_by_name('snap') == [snapshot]
    missing = '0b5e8c7a-6e1e-4f7c-9d4e-4f3bd2a9b0c1'
    for cls, error in ((cinderlib.Volume, cinderlib.exception.VolumeNotFound),
                       (cinderlib.Snapshot, cinderlib.exception.SnapshotNotFound),
                       (cinderlib.Connection, cinderlib.exception.ConnectionNotFound)):
        with pytest.raises(error, match=missing) as raised:
            cls.get_by_id(missing)
        assert isinstance(raised.value, cinderlib.exception.NotFound) and isinstance(raised.value, cinderlib.NotFound)
    # A volume with snapshots can't be deleted: cinderlib's InvalidVolume, still the library's InvalidRequest.
    with pytest.raises(cinderlib.exception.InvalidVolume, match='it has snapshots'):
        volume.delete()
    with pytest.raises(cinderlib.exception.NotLocal, match='not attached on this host'):
        volume.detach()


def test_a_snapshot_read_without_its_volume_finds_it(fake_backend):
    volume = fake_backend.create_volume(1, name='data')
    snapshot = volume.create_snapshot(name='snap')
    record = Backend.persistence.snapshot_records(snapshot_id=snapshot.id)[0]
    lone = cinderlib.Snapshot.__new__(cinderlib.Snapshot)
    cinderlib.objects.Resource.__init__(lone, fake_backend, record)
    assert lone.volume is volume and lone.name_in_storage == 'snapshot-%s' % snapshot.id
    assert volume.name_in_storage == 'volume-%s' % volume.id and cinderlib.Volume.backend_class is Backend


def test_save_writes_the_record_as_it_is(fake_backend):
    volume = fake_backend.create_volume(1, name='data')
    volume._record['display_description'] = 'written by save'
    volume.save()
    assert Backend.persistence.volume_records(volume_id=volume.id)[0]['display_description'] == 'written by save'
    assert len({cinderlib.Volume.new_uuid() for _attempt in range(3)}) == 3


def test_set_persistence_moves_the_library_to_another_store(fake_backend):
    volume = fake_backend.create_volume(1, name='data')
    first = Backend.persistence
    Backend.set_persistence({'storage': 'memory'})
    assert Backend.persistence is not first and fake_backend.volumes_filtered() == []
    with pytest.raises(cinderlib.exception.VolumeNotFound):
        cinderlib.Volume.get_by_id(volume.id)
    assert fake_backend.driver.db.store is Backend.persistence
    with pytest.raises(cinderlib.exception.InvalidPersistence, match="Unknown persistence storage 'nowhere'"):
        Backend.set_persistence({'storage': 'nowhere'})


def test_change_tracking_for_persistence_plugins(fake_backend):
    volume = fake_backend.create_volume(1, name='data', extra_specs={'k': 'v'}, qos_specs={'iops': '100'})
    plugin = PersistenceDriverBase()
    found = plugin.get_fields(volume)
    assert found['id'] == volume.id and found['size'] == 1 and found['display_name'] == 'data'
    assert found['extra_specs'] == {'k': 'v'} and found['qos_specs'] == {'iops': '100'}
    assert 'backend' not in found and 'volume_type' not in found  # not Cinder fields of their own
    assert plugin.get_changed_fields(volume) == found  # never reset: everything is to write
    plugin.reset_change_tracker(volume)
    assert plugin.get_changed_fields(volume) == {}
    volume.update(display_description='d', bootable=True)
    changed = plugin.get_changed_fields(volume)
    assert changed == {'display_description': 'd', 'bootable': True, 'updated_at': volume.record['updated_at']}
    plugin.reset_change_tracker(volume, ('bootable', 'updated_at'))
    assert plugin.get_changed_fields(volume) == {'display_description': 'd'}


def test_a_connection_made_elsewhere_is_recorded_in_cinderlibs_form(fake_backend):
    # Connection(backend, volume=..., connection_info=...) then save(), as cinderlib allowed.
    volume = fake_backend.create_volume(1, name='data')
    conn_info = {'driver_volume_type': 'iscsi', 'data': {'target_iqn': 'iqn.x', 'auth_method': 'CHAP',
                                                         'auth_username': 'u', 'auth_password': 'p'}}
    connector = {'host': 'node-b', 'initiator': 'iqn.node-b'}
    device = {'type': 'block', 'path': '/dev/sdz'}
    made = cinderlib.Connection(fake_backend, volume=volume, status='attached', attached_host='node-b',
                                connection_info={'conn': conn_info, 'connector': connector, 'device': device})
    made.save()
    [read] = cinderlib.Volume.get_by_id(volume.id).connections
    assert read.id == made.id and read.connected and read.attached and read.path == '/dev/sdz'
    assert read.conn_info == conn_info and read.connector_info == connector and read.protocol == 'iscsi'
    assert read.connection_info == {'conn': conn_info, 'connector': connector, 'device': device}
    assert read.record['attached_host'] == 'node-b'
    by_id = cinderlib.Connection(None, volume_id=volume.id, connection_info={'connector': connector})
    assert by_id.volume is volume and not by_id.connected
    with pytest.raises(cinderlib.InvalidRequest, match='needs its volume'):
        cinderlib.Connection(fake_backend, connection_info={'connector': connector})
    with pytest.raises(cinderlib.InvalidRequest, match="is on backend 'fake'"):
        cinderlib.Connection('other', volume=volume, connection_info={'connector': connector})
