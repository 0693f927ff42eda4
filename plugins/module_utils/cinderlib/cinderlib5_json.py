# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""Reading the JSON that cinderlib 5.x wrote, into state store records.

cinderlib serialized Cinder's versioned objects with their own primitive
form: ``{'versioned_object.name': 'Volume', 'versioned_object.data': {...},
...}``. A Volume's data holds its ``volume_type`` (with ``extra_specs`` and
``qos_specs``), its ``snapshots`` (a SnapshotList) and its connections
(``volume_attachment``, a VolumeAttachmentList whose ``connection_info``
holds cinderlib's ``conn``, ``connector`` and ``device``). cinderlib kept a
snapshot's backend name in its ``progress`` field.

Plain dict work: no Cinder or oslo import.
"""

from __future__ import annotations

import copy

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import InvalidRequest

_DATA = 'versioned_object.data'
_NAME = 'versioned_object.name'
# cinderlib's classes and the Cinder objects they serialized.
OVO_OF = {'Volume': 'Volume', 'Snapshot': 'Snapshot', 'Connection': 'VolumeAttachment'}

# Object fields that are not record fields (names, relations, soft-delete).
_COMMON_SKIP = {'deleted', 'deleted_at', 'created_at', 'updated_at'}
_VOLUME_SKIP = _COMMON_SKIP | {'snapshots', 'volume_attachment', 'volume_type', 'glance_metadata',
                               'consistencygroup', 'group', 'cluster'}
_SNAPSHOT_SKIP = _COMMON_SKIP | {'volume', 'progress', 'cgsnapshot', 'group_snapshot'}
_CONNECTION_SKIP = _COMMON_SKIP | {'volume', 'connection_info'}


def is_ovo(value) -> bool:
    return isinstance(value, dict) and _DATA in value


def ovo_data(value, expected: str, where: str = '') -> dict:
    """The data of a serialized versioned object named ``expected``."""
    if not is_ovo(value) or value.get(_NAME) != expected or not isinstance(value[_DATA], dict):
        raise InvalidRequest('The data to load%s is not a serialized Cinder %s as cinderlib 5.x wrote it.'
                             % (' (at %s)' % where if where else '', expected))
    return value[_DATA]


def _objects(value, expected: str, where: str) -> list:
    return list(ovo_data(value, expected, where).get('objects') or [])


def _timestamp(value):
    # cinderlib wrote UTC with a 'Z'; the store keeps naive UTC ISO strings.
    if isinstance(value, str):
        for suffix in ('Z', '+00:00'):
            if value.endswith(suffix):
                return value[:-len(suffix)]
    return value


def _record(data: dict, skip: set, backend: str) -> dict:
    record = {k: copy.deepcopy(v) for k, v in data.items() if k not in skip and v is not None and not is_ovo(v)}
    record['backend'] = backend
    for key in ('display_name', 'display_description'):
        if key in data:
            record[key] = data.get(key) or ''
    for key in ('created_at', 'updated_at'):
        if data.get(key):
            record[key] = _timestamp(data[key])
    return record


def _volume_type(value, where: str) -> dict | None:
    if value is None:
        return None
    data = ovo_data(value, 'VolumeType', where)
    vtype = {'id': data.get('id'), 'name': data.get('name') or data.get('id'), 'is_public': data.get('is_public', True),
             'extra_specs': dict(data.get('extra_specs') or {}), 'qos_specs_id': data.get('qos_specs_id')}
    if data.get('qos_specs'):
        qos = ovo_data(data['qos_specs'], 'QualityOfServiceSpecs', where + '.qos_specs')
        vtype['qos_specs'] = {'id': qos.get('id'), 'name': qos.get('name') or qos.get('id'),
                              'consumer': qos.get('consumer') or 'back-end', 'specs': dict(qos.get('specs') or {})}
        vtype['qos_specs_id'] = vtype['qos_specs_id'] or qos.get('id')
    return vtype


def volume(value, backend: str, where: str = 'ovo') -> tuple[dict, list | None, list | None]:
    """(volume record, snapshot records, connection records) of a Volume.

    A list is None when the data did not hold it (cinderlib loaded them
    lazily); then the state store is what knows them.
    """
    data = ovo_data(value, 'Volume', where)
    record = _record(data, _VOLUME_SKIP, backend)
    record.setdefault('display_name', '')
    record['metadata'] = dict(data.get('metadata') or {})
    record['admin_metadata'] = dict(data.get('admin_metadata') or {})
    host = data.get('host') or ''
    record['pool_name'] = host.partition('#')[2] or backend
    vtype = _volume_type(data.get('volume_type'), where + '.volume_type')
    if vtype:
        record['volume_type'] = vtype
    record['volume_type_id'] = vtype['id'] if vtype else None
    snapshots = connections = None
    if data.get('snapshots') is not None:
        snapshots = [snapshot(s, backend, '%s.snapshots[%d]' % (where, i))
                     for i, s in enumerate(_objects(data['snapshots'], 'SnapshotList', where + '.snapshots'))]
    if data.get('volume_attachment') is not None:
        found = _objects(data['volume_attachment'], 'VolumeAttachmentList', where + '.volume_attachment')
        connections = [connection(c, backend, '%s.volume_attachment[%d]' % (where, i)) for i, c in enumerate(found)]
    return record, snapshots, connections


def snapshot(value, backend: str, where: str = 'ovo') -> dict:
    data = ovo_data(value, 'Snapshot', where)
    record = _record(data, _SNAPSHOT_SKIP, backend)
    record['metadata'] = dict(data.get('metadata') or {})
    # cinderlib's 'progress' held the backend name, not a progress.
    if data.get('status') == 'available':
        record['progress'] = '100%'
    return record


def connection(value, backend: str, where: str = 'ovo') -> dict:
    """A connection record in the shape ``views.connection_view`` reads."""
    data = ovo_data(value, 'VolumeAttachment', where)
    info = data.get('connection_info') or {}
    conn_info = copy.deepcopy(info.get('conn') or {})
    device = copy.deepcopy(info.get('device'))
    record = _record(data, _CONNECTION_SKIP, backend)
    record.update(connector=copy.deepcopy(info.get('connector') or data.get('connector') or {}),
                  conn_info=conn_info, device=device, path=(device or {}).get('path'), attached=bool(device),
                  protocol=conn_info.get('driver_volume_type'))
    return record


def item_volume(item: dict, backend: str, where: str) -> dict | None:
    """The volume record a serialized Snapshot or Connection carries, if any."""
    nested = ovo_data(item['ovo'], OVO_OF[item['class']], where)
    if nested.get('volume') is None:
        return None
    # Its snapshot list lacks the snapshot that holds it: not the whole list.
    return volume(nested['volume'], backend, where + '.volume')[0]
