# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""The fields of Cinder's versioned objects that cinderlib showed as
attributes of its Volume, Snapshot and Connection, with the value a field
has when a record does not hold it (as a new row of Cinder's DB would).

Kept here, cinder-free, so that reading an attribute never imports Cinder;
tests/unit/.../test_fields.py checks the tables against Cinder's own objects.
Fields that hold other objects (``volume_type``, ``snapshots``...) are the
library objects' own properties, not listed here.
"""

from __future__ import annotations

_DB_ROW = {'created_at': None, 'updated_at': None, 'deleted_at': None, 'deleted': False}

VOLUME = dict(_DB_ROW, **{
    'id': None, '_name_id': None, 'ec2_id': None, 'user_id': None, 'project_id': None, 'snapshot_id': None,
    'cluster_name': None, 'host': None, 'size': None, 'availability_zone': None, 'status': None,
    'attach_status': None, 'migration_status': None, 'scheduled_at': None, 'launched_at': None,
    'terminated_at': None, 'display_name': None, 'display_description': None, 'provider_id': None,
    'provider_location': None, 'provider_auth': None, 'provider_geometry': None, 'volume_type_id': None,
    'source_volid': None, 'encryption_key_id': None, 'consistencygroup_id': None, 'group_id': None,
    'bootable': False, 'multiattach': False, 'replication_status': None, 'replication_extended_status': None,
    'replication_driver_data': None, 'previous_status': None, 'metadata': None, 'admin_metadata': None,
    'glance_metadata': None, 'service_uuid': None, 'shared_targets': True, 'use_quota': True,
})
"""Cinder's Volume fields (besides object fields) and their defaults."""

SNAPSHOT = dict(_DB_ROW, **{
    'id': None, 'user_id': None, 'project_id': None, 'use_quota': True, 'volume_id': None,
    'cgsnapshot_id': None, 'group_snapshot_id': None, 'status': None, 'progress': None, 'volume_size': None,
    'display_name': None, 'display_description': None, 'encryption_key_id': None, 'volume_type_id': None,
    'provider_location': None, 'provider_id': None, 'metadata': None, 'provider_auth': None,
})
"""Cinder's Snapshot fields (besides object fields) and their defaults."""

CONNECTION = dict(_DB_ROW, **{
    'id': None, 'volume_id': None, 'instance_uuid': None, 'attached_host': None, 'mountpoint': None,
    'attach_time': None, 'detach_time': None, 'attach_status': None, 'attach_mode': None,
    'connection_info': None, 'connector': None,
})
"""Cinder's VolumeAttachment fields (what a cinderlib Connection wraps)."""

OBJECT_FIELDS = {
    'volume': ('cluster', 'consistencygroup', 'group', 'snapshots', 'volume_attachment', 'volume_type'),
    'snapshot': ('cgsnapshot', 'group_snapshot', 'volume'),
    'connection': ('volume',),
}
"""Fields holding other objects: the library objects' own properties (or
not offered), listed so the test can tell them from forgotten fields."""

DEFAULTS = {'volume': VOLUME, 'snapshot': SNAPSHOT, 'connection': CONNECTION}

NAME_TEMPLATES = {'volume': 'volume-%s', 'snapshot': 'snapshot-%s'}
"""Cinder's ``volume_name_template``/``snapshot_name_template`` defaults:
``name`` is the name on the backend, as in Cinder (an LV ``volume-<id>``)."""

_RENAMED = {'name': 'display_name', 'description': 'display_description'}


def with_display_fields(record: dict) -> dict:
    """``name`` and ``description`` as the Cinder fields they mean,
    ``display_name`` and ``display_description`` (which win when both are
    there): for cinderlib's arguments (``create_volume(name=...)``,
    ``update(description=...)``) and for records this collection wrote
    before it held Cinder's field names (state store schema < 4, serialized
    format 1). Changes ``record`` and returns it."""
    for old, new in _RENAMED.items():
        if old in record:
            value = record.pop(old)
            record.setdefault(new, value)
    return record
