# Reading Cinder's schema as cinderlib 5.x's db persistence wrote it: the rules
# real cinderlib-made databases do not all reach (soft-deleted rows, QoS rows,
# SQLite's text timestamps). The databases cinderlib 5.2.0 made itself are
# opened in tests/functional/test_cinderlib5_databases.py.
from __future__ import annotations

import os
import sqlite3

import pytest
import sqlalchemy as sa

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import cinderlib5_db, persistence

SCHEMA = '''
CREATE TABLE volumes (id TEXT PRIMARY KEY, host TEXT, size INTEGER, status TEXT, display_name TEXT,
    volume_type_id TEXT, provider_auth TEXT, bootable BOOLEAN, deleted BOOLEAN, created_at DATETIME,
    updated_at DATETIME, deleted_at DATETIME);
CREATE TABLE volume_metadata (id INTEGER PRIMARY KEY, volume_id TEXT, key TEXT, value TEXT, deleted BOOLEAN);
CREATE TABLE volume_types (id TEXT PRIMARY KEY, name TEXT, is_public BOOLEAN, qos_specs_id TEXT, deleted BOOLEAN);
CREATE TABLE volume_type_extra_specs (id INTEGER PRIMARY KEY, volume_type_id TEXT, key TEXT, value TEXT,
    deleted BOOLEAN);
CREATE TABLE quality_of_service_specs (id TEXT PRIMARY KEY, specs_id TEXT, key TEXT, value TEXT, deleted BOOLEAN);
CREATE TABLE snapshots (id TEXT PRIMARY KEY, volume_id TEXT, status TEXT, display_name TEXT, volume_type_id TEXT,
    deleted BOOLEAN);
CREATE TABLE volume_attachment (id TEXT PRIMARY KEY, volume_id TEXT, attach_status TEXT, connection_info TEXT,
    connector TEXT, deleted BOOLEAN);
CREATE TABLE cinderlib_persistence_key_value (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO volume_types VALUES ('t-default', '__DEFAULT__', 1, NULL, 0);
INSERT INTO volume_types VALUES ('t-gold', 't-gold', 1, 'q-1', 0);
INSERT INTO volume_type_extra_specs VALUES (1, 't-gold', 'thin', 'true', 0);
INSERT INTO volume_type_extra_specs VALUES (2, 't-gold', 'gone', 'x', 1);
INSERT INTO quality_of_service_specs VALUES ('q-1', NULL, 'QoS_Specs_Name', 't-gold', 0);
INSERT INTO quality_of_service_specs VALUES ('q-1a', 'q-1', 'total_iops_sec', '100', 0);
INSERT INTO quality_of_service_specs VALUES ('q-1b', 'q-1', 'consumer', 'front-end', 0);
INSERT INTO volumes VALUES ('v-plain', 'cinderlib@lvm1#lvm1', 1, 'in-use', 'plain', 't-default',
    'CHAP user s3cret', 0, 0, '2024-01-02 03:04:05.000006', NULL, NULL);
INSERT INTO volumes VALUES ('v-gold', 'cinderlib@lvm2', 2, 'available', 'gold', 't-gold', NULL, 1, 0,
    '2024-01-02 03:04:06', NULL, NULL);
INSERT INTO volumes VALUES ('v-gone', 'cinderlib@lvm1', 1, 'deleted', 'gone', 't-default', NULL, 0, 1, NULL, NULL,
    '2024-02-01 00:00:00');
INSERT INTO volume_metadata VALUES (1, 'v-plain', 'team', 'db', 0);
INSERT INTO snapshots VALUES ('s-1', 'v-plain', 'available', 'snap', 't-default', 0);
INSERT INTO volume_attachment VALUES ('c-1', 'v-plain', 'attached',
    '{"conn": {"driver_volume_type": "iscsi", "data": {"auth_password": "s3cret"}},
      "connector": {"host": "node-a"}, "device": {"path": "/dev/sdx"}}', '{"host": "node-a"}', 0);
INSERT INTO cinderlib_persistence_key_value VALUES ('driver-key', 'driver-value');
'''


@pytest.fixture
def cinderlib5_file(tmp_path):
    path = tmp_path / 'cinderlib.db'
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA)
    os.chmod(path, 0o644)
    return path


def dump(path) -> list[str]:
    """The SQL of a SQLite file's tables and rows (its header changes with WAL)."""
    with sqlite3.connect(path) as db:
        return [line for line in db.iterdump() if not line.startswith(('BEGIN', 'COMMIT'))]


def read(path):
    engine = sa.create_engine('sqlite:///%s' % path)
    with engine.connect() as conn:
        return cinderlib5_db.read(conn, sa, set(sa.inspect(conn).get_table_names()))


def test_records_are_read_as_cinderlib_objects_with_types_specs_and_metadata(cinderlib5_file):
    records, key_values = read(cinderlib5_file)
    assert [(kind, record['id']) for kind, record in records] == [
        ('volume', 'v-plain'), ('snapshot', 's-1'), ('connection', 'c-1'), ('volume', 'v-gold')]
    plain, snap, conn, gold = (pair[1] for pair in records)
    assert plain['backend'] == 'lvm1' and plain['pool_name'] == 'lvm1'
    assert plain['volume_type_id'] is None and 'volume_type' not in plain  # Cinder's default type: none
    assert plain['metadata'] == {'team': 'db'} and plain['bootable'] is False
    assert plain['created_at'] == '2024-01-02T03:04:05.000006'
    assert plain['provider_auth'] == 'CHAP user s3cret'
    assert snap['backend'] == 'lvm1' and snap.get('volume_type_id') is None and snap['progress'] == '100%'
    assert conn['conn_info'] == {'driver_volume_type': 'iscsi', 'data': {'auth_password': 's3cret'}}
    assert conn['connector'] == {'host': 'node-a'} and conn['path'] == '/dev/sdx' and conn['attached'] is True
    assert gold['backend'] == 'lvm2' and gold['bootable'] is True
    assert gold['volume_type'] == {
        'id': 't-gold', 'name': 't-gold', 'is_public': True, 'extra_specs': {'thin': 'true'}, 'qos_specs_id': 'q-1',
        'qos_specs': {'id': 'q-1', 'name': 't-gold', 'consumer': 'front-end', 'specs': {'total_iops_sec': '100'}}}
    assert key_values == {'driver-key': 'driver-value'}


def test_the_store_imports_once_beside_cinders_tables_and_keeps_a_backup(cinderlib5_file):
    before = dump(cinderlib5_file)
    url = 'sqlite:///%s' % cinderlib5_file
    store = persistence.open_store({'storage': 'db', 'connection': url, 'soft_deletes': True,
                                    'sqlite_synchronous': False})
    try:
        summary = store.cinderlib5_import
        assert {k: summary[k] for k in ('volume', 'snapshot', 'connection', 'key_values')} == {
            'volume': 2, 'snapshot': 1, 'connection': 1, 'key_values': 1}
        backup = str(cinderlib5_file) + persistence.CINDERLIB5_BACKUP_SUFFIX
        assert summary['backup'] == backup
        assert dump(backup) == before
        assert os.stat(backup).st_mode & 0o777 == 0o600
        assert os.stat(cinderlib5_file).st_mode & 0o777 == 0o600
        assert [r['id'] for r in store.volume_records(backend='lvm1')] == ['v-plain']
        assert store.key_values() == {'driver-key': 'driver-value'}
        store.put('volume', dict(store.volume_records(volume_id='v-gold')[0], size=3))
    finally:
        store.close()
    # Opened again: nothing imported a second time, the change kept.
    again = persistence.open_store({'storage': 'db', 'connection': url})
    try:
        assert again.volume_records(volume_id='v-gold')[0]['size'] == 3
        assert again.cinderlib5_import == summary
    finally:
        again.close()
    # Cinder's tables as cinderlib left them.
    assert [line for line in dump(cinderlib5_file) if 'cinderlib_' not in line or 'persistence' in line] == before


def test_a_database_that_is_not_cinderlibs_gets_no_import(tmp_path):
    path = tmp_path / 'other.db'
    with sqlite3.connect(path) as db:
        db.execute('CREATE TABLE volumes (id TEXT)')  # Cinder's name, but no cinderlib key/value table
    store = persistence.open_store({'storage': 'db', 'connection': 'sqlite:///%s' % path})
    try:
        assert store.cinderlib5_import is None
        assert not os.path.exists(str(path) + persistence.CINDERLIB5_BACKUP_SUFFIX)
    finally:
        store.close()


@pytest.mark.parametrize('option', ['soft_deletes', 'sqlite_synchronous'])
def test_cinderlibs_db_flags_must_be_booleans(tmp_path, option):
    with pytest.raises(persistence.PersistenceError, match='persistence.%s must be true or false' % option):
        persistence.open_store({'storage': 'db', 'connection': 'sqlite:///%s' % (tmp_path / 'x.db'), option: 'yes'})
