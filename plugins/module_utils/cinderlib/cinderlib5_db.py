# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""Reading a database that cinderlib 5.x's ``db`` persistence wrote, into
state store records.

cinderlib kept its objects in Cinder's own schema (``volumes``,
``snapshots``, ``volume_attachment``, ``volume_types`` with their extra and
QoS specs, the metadata tables) plus ``cinderlib_persistence_key_value``.
The rows are Cinder's versioned objects as columns, so each is read as the
object's data and turned into a record by ``cinderlib5_json``, the reader of
what cinderlib 5.x serialized: one mapping for both.

Read-only and cinder-free (plain SQL through the connection it is given):
``persistence.SQLStore`` calls it once, when it first opens such a database,
and writes the records to its own tables beside Cinder's, which it never
changes (see ``SQLStore._migrate``).
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import cinderlib5_json

KEY_VALUE_TABLE = 'cinderlib_persistence_key_value'
VOLUMES_TABLE = 'volumes'

DEFAULT_TYPE = '__DEFAULT__'
"""The volume type Cinder's schema makes and cinderlib gave every volume
created without specs: the library's volumes without a type."""

QOS_NAME_KEY = 'QoS_Specs_Name'  # Cinder's row that names a QoS specs entry

# Columns that SQLite gives back as 0/1.
_BOOLEANS = {'deleted', 'bootable', 'multiattach', 'shared_targets', 'use_quota', 'is_public'}


def is_cinderlib5_db(table_names: set[str]) -> bool:
    """Whether a database with these tables is one cinderlib 5.x's ``db``
    persistence wrote (Cinder's schema and cinderlib's key/value table)."""
    return {VOLUMES_TABLE, KEY_VALUE_TABLE} <= table_names


def _value(column: str, value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, str) and column.endswith(('_at', '_time')) and ' ' in value:
        return value.replace(' ', 'T', 1)  # SQLite's text timestamps, in the store's ISO form
    if column in _BOOLEANS and isinstance(value, int):
        return bool(value)
    return value


def _rows(conn, sa, table: str, tables: set[str]) -> list[dict]:
    """The rows of ``table`` that are not soft-deleted (cinderlib's
    ``soft_deletes``), as dicts; none when the table does not exist."""
    if table not in tables:
        return []
    rows = conn.execute(sa.text('SELECT * FROM %s' % table)).mappings().all()
    found = [{column: _value(column, value) for column, value in row.items()} for row in rows]
    return [row for row in found if not row.get('deleted')]


def _ovo(name: str, data: dict) -> dict:
    return {'versioned_object.name': name, 'versioned_object.data': data}


def _pairs(rows: list[dict], owner: str) -> dict[str, dict]:
    """{owner id: {key: value}} of a Cinder key/value table (metadata, specs)."""
    found: dict[str, dict] = {}
    for row in rows:
        found.setdefault(row[owner], {})[row['key']] = row['value']
    return found


def _qos_specs(rows: list[dict]) -> dict[str, dict]:
    """Cinder keeps a QoS specs entry as a row naming it (``specs_id`` NULL)
    and one row per spec pointing at that row."""
    specs = {row['id']: {'id': row['id'], 'name': row['value'], 'consumer': 'back-end', 'specs': {}}
             for row in rows if row.get('specs_id') is None and row['key'] == QOS_NAME_KEY}
    for row in rows:
        entry = specs.get(row.get('specs_id'))
        if entry is None:
            continue
        if row['key'] == 'consumer':
            entry['consumer'] = row['value']
        else:
            entry['specs'][row['key']] = row['value']
    return specs


def _volume_types(conn, sa, tables: set[str]) -> dict[str, dict | None]:
    """Serialized VolumeTypes by id, with their extra and QoS specs (None
    for Cinder's default type)."""
    extra = _pairs(_rows(conn, sa, 'volume_type_extra_specs', tables), 'volume_type_id')
    qos = _qos_specs(_rows(conn, sa, 'quality_of_service_specs', tables))
    types: dict[str, dict | None] = {}
    for row in _rows(conn, sa, 'volume_types', tables):
        if row.get('name') == DEFAULT_TYPE:
            types[row['id']] = None
            continue
        data = {'id': row['id'], 'name': row.get('name'), 'is_public': row.get('is_public', True),
                'extra_specs': extra.get(row['id'], {}), 'qos_specs_id': row.get('qos_specs_id')}
        if row.get('qos_specs_id') in qos:
            data['qos_specs'] = _ovo('QualityOfServiceSpecs', qos[row['qos_specs_id']])
        types[row['id']] = _ovo('VolumeType', data)
    return types


def _json_column(value: Any) -> Any:
    # Cinder keeps an attachment's connection_info and connector as JSON text.
    if isinstance(value, str) and value:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def backend_of(host: str | None) -> str:
    """The backend name in a volume's ``host`` (``<host>@<backend>#<pool>``),
    which is how cinderlib told its backends' volumes apart."""
    return (host or '').split('@')[-1].split('#')[0]


def read(conn, sa, tables: set[str]) -> tuple[list[tuple[str, dict]], dict[str, str]]:
    """([(kind, record)...], key/values) of a cinderlib 5.x database, each
    volume before its snapshots and connections."""
    types = _volume_types(conn, sa, tables)
    metadata = _pairs(_rows(conn, sa, 'volume_metadata', tables), 'volume_id')
    admin_metadata = _pairs(_rows(conn, sa, 'volume_admin_metadata', tables), 'volume_id')
    snapshot_metadata = _pairs(_rows(conn, sa, 'snapshot_metadata', tables), 'snapshot_id')
    snapshots: dict[str, list] = {}
    for row in _rows(conn, sa, 'snapshots', tables):
        row['metadata'] = snapshot_metadata.get(row['id'], {})
        if row.get('volume_type_id') in types and types[row['volume_type_id']] is None:
            row['volume_type_id'] = None  # Cinder's default type: none
        snapshots.setdefault(row['volume_id'], []).append(row)
    attachments: dict[str, list] = {}
    for row in _rows(conn, sa, 'volume_attachment', tables):
        row['connection_info'] = _json_column(row.get('connection_info'))
        row['connector'] = _json_column(row.get('connector'))
        attachments.setdefault(row['volume_id'], []).append(row)
    records = []
    for row in _rows(conn, sa, VOLUMES_TABLE, tables):
        backend = backend_of(row.get('host'))
        where = '%s %s' % (VOLUMES_TABLE, row['id'])
        row.update(metadata=metadata.get(row['id'], {}), admin_metadata=admin_metadata.get(row['id'], {}),
                   volume_type=types.get(row.get('volume_type_id')))
        volume = cinderlib5_json.volume(_ovo('Volume', row), backend, where)[0]
        records.append(('volume', volume))
        records.extend(('snapshot', cinderlib5_json.snapshot(_ovo('Snapshot', s), backend, where))
                       for s in snapshots.get(row['id'], []))
        records.extend(('connection', cinderlib5_json.connection(_ovo('VolumeAttachment', a), backend, where))
                       for a in attachments.get(row['id'], []))
    key_values = {row['key']: row['value'] for row in _rows(conn, sa, KEY_VALUE_TABLE, tables)}
    return records, key_values
