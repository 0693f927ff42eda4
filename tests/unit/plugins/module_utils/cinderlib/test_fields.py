# The library objects' attributes: Cinder's fields, as cinderlib showed them.
from __future__ import annotations

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import fields


@pytest.mark.parametrize('kind, cinder_class', [
    ('volume', 'Volume'), ('snapshot', 'Snapshot'), ('connection', 'VolumeAttachment')])
def test_the_tables_list_every_field_of_cinders_objects_with_its_default(kind, cinder_class):
    from cinder import objects
    from oslo_versionedobjects import fields as ovo_fields
    objects.register_all()
    cls = getattr(objects, cinder_class)
    plain = {name for name, field in cls.fields.items() if not isinstance(field, ovo_fields.ObjectField)}
    assert set(fields.DEFAULTS[kind]) == plain
    assert set(fields.OBJECT_FIELDS[kind]) == set(cls.fields) - plain
    for name in plain:
        default = cls.fields[name].default
        expected = None if default is ovo_fields.UnspecifiedDefault else default
        assert fields.DEFAULTS[kind][name] == expected, name


def test_records_of_earlier_versions_get_cinders_names():
    record = {'id': 'v1', 'name': 'data01', 'description': 'old'}
    assert fields.with_display_fields(record) == {'id': 'v1', 'display_name': 'data01', 'display_description': 'old'}
    kept = {'id': 'v1', 'display_name': 'new', 'name': 'stale'}
    assert fields.with_display_fields(kept) == {'id': 'v1', 'display_name': 'new'}


def test_volume_attributes_as_cinderlib(fake_backend):
    volume = fake_backend.create_volume(2, name='data01', description='logs')
    assert (volume.display_name, volume.display_description, volume.description) == ('data01', 'logs', 'logs')
    assert volume.name == 'volume-%s' % volume.id and volume.size == 2 and volume.status == 'available'
    assert volume.deleted is False and volume.deleted_at is None and volume.terminated_at is None
    assert volume.attach_status == 'detached' and volume.source_volid is None and volume.snapshot_id is None
    assert volume.host.endswith('@fake#pool1') and volume.pool_name == 'pool1'
    assert volume.availability_zone is None and volume.volume_type_id is None and volume.multiattach is False
    with pytest.raises(AttributeError):
        volume.no_such_field  # noqa: B018 - the attribute access is the test
    snapshot = volume.create_snapshot(name='nightly')
    assert (snapshot.display_name, snapshot.name, snapshot.volume_size) == ('nightly', 'snapshot-%s' % snapshot.id, 2)
    assert snapshot.deleted is False and snapshot.volume is volume
    # Display names are labels: another volume may carry the same one.
    other = fake_backend.create_volume(1, name='data01')
    assert sorted(v.id for v in fake_backend.volumes_filtered(volume_name='data01')) == sorted([volume.id, other.id])
    # A clone and a volume from a snapshot take their source's display name unless given one.
    clone = volume.clone(name='copy', description='a clone')
    assert (clone.display_name, clone.display_description, clone.source_volid) == ('copy', 'a clone', volume.id)
    assert volume.clone().display_name == 'data01'
    from_snap = snapshot.create_volume(name='restored')
    assert (from_snap.display_name, from_snap.snapshot_id) == ('restored', snapshot.id)


def test_delete_marks_the_object_deleted_and_extend_returns_bytes(fake_backend):
    volume = fake_backend.create_volume(1, name='data')
    assert volume.extend(3) == 3 * 1024 ** 3 and volume.size == 3
    volume.delete()
    assert volume.status == 'deleted' and volume.deleted is True and volume.deleted_at
    assert volume not in fake_backend.volumes


def test_one_live_object_per_resource(fake_backend):
    volume = fake_backend.create_volume(1, name='data')
    store = type(fake_backend).persistence
    [again] = store.get_volumes(volume.id)
    assert again is volume
    again.extend(2)
    assert volume.size == 2  # what cinderlib's test_extend checks
    snapshot = volume.create_snapshot(name='s')
    assert store.get_snapshots(snapshot_name='s') == [snapshot] and snapshot in volume.snapshots
    assert snapshot.to_json()['record']['id'] == snapshot.id and 'volume' not in snapshot.to_json()
    assert 'volume' in snapshot.to_json(simplified=False) and snapshot.to_jsons().startswith('{')
