# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""Friendly, flat views of stored records: what modules return, facts hold
and the inventory shows. Pure functions over dicts; cinder-free.

A view's ``name`` and ``description`` are the record's ``display_name`` and
``display_description``: what the user named the resource (the modules'
``name`` option), not Cinder's ``volume-<id>``."""

from __future__ import annotations

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import secrets


def source_of(record: dict) -> dict | None:
    """Where a volume came from: a volume (clone) or a snapshot, or None."""
    if record.get('source_volid'):
        return {'type': 'volume', 'id': record['source_volid']}
    if record.get('snapshot_id'):
        return {'type': 'snapshot', 'id': record['snapshot_id']}
    return None


def snapshot_view(record: dict) -> dict:
    return {'id': record['id'], 'name': record.get('display_name') or '',
            'description': record.get('display_description') or '',
            'volume_id': record.get('volume_id'), 'volume_size': record.get('volume_size'),
            'status': record.get('status'), 'backend': record.get('backend'),
            'created_at': record.get('created_at'), 'updated_at': record.get('updated_at')}


def connection_view(record: dict, full: bool = False) -> dict:
    """A connection; ``full`` adds what a host needs to attach (``conn_info``
    without secrets: a record loaded from serialized output may hold them),
    the connector and the local device."""
    connector = record.get('connector') or {}
    view = {'id': record['id'], 'volume_id': record.get('volume_id'), 'status': record.get('status'),
            'host': record.get('host') or connector.get('host'), 'node_id': record.get('node_id'),
            'protocol': record.get('protocol'), 'attach_mode': record.get('attach_mode'),
            'attached': bool(record.get('attached')), 'attached_host': record.get('attached_host'),
            'path': record.get('path')}
    if full:
        view.update(conn_info=secrets.without_secrets(record.get('conn_info')), connector=connector,
                    device=record.get('device'), created_at=record.get('created_at'),
                    updated_at=record.get('updated_at'))
    return view


def volume_view(record: dict, snapshots: list[dict] = (), connections: list[dict] = ()) -> dict:
    vtype = record.get('volume_type') or {}
    conns = [connection_view(c) for c in connections]
    return {
        'id': record['id'],
        'name': record.get('display_name') or '',
        'description': record.get('display_description') or '',
        'size': record.get('size'),
        'status': record.get('status'),
        'backend': record.get('backend'),
        'pool_name': record.get('pool_name'),
        'bootable': record.get('bootable', False),
        'attach_status': record.get('attach_status'),
        'source': source_of(record),
        'metadata': dict(record.get('metadata') or {}),
        'extra_specs': dict(vtype.get('extra_specs') or {}),
        'qos_specs': dict((vtype.get('qos_specs') or {}).get('specs') or {}),
        'snapshots': [snapshot_view(s) for s in snapshots],
        'connections': conns,
        'attached_hosts': sorted({c['host'] for c in conns if c['host']}),
        'created_at': record.get('created_at'),
        'updated_at': record.get('updated_at'),
    }


def backend_volume_views(store, backend: str | None = None) -> list[dict]:
    """Views of every volume in ``store`` (of one backend, or all), reading
    snapshots and connections once rather than per volume."""
    volumes = store.volume_records(backend=backend)
    snapshots: dict[str, list] = {}
    for snap in store.get('snapshot'):
        snapshots.setdefault(snap.get('volume_id'), []).append(snap)
    connections: dict[str, list] = {}
    for conn in store.get('connection'):
        connections.setdefault(conn.get('volume_id'), []).append(conn)
    return [volume_view(v, snapshots.get(v['id'], []), connections.get(v['id'], [])) for v in volumes]
