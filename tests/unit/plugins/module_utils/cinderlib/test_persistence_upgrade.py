# State store upgrades and many processes on one store, on SQLite and PostgreSQL.
from __future__ import annotations

import json
import multiprocessing
import os
import traceback

import pytest
import sqlalchemy as sa

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import context, persistence
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import PersistenceError

# The DDL of schema version 1 (cinderlib.storage 0.1), as SQLAlchemy emitted it.
V1_DDL = [
    '''CREATE TABLE cinderlib_meta ("key" VARCHAR(64) NOT NULL, value TEXT NOT NULL, PRIMARY KEY ("key"))''',
    '''CREATE TABLE cinderlib_volumes (
        id VARCHAR(255) NOT NULL, backend VARCHAR(255) NOT NULL, name VARCHAR(255), status VARCHAR(32),
        size INTEGER, data TEXT NOT NULL, created_at VARCHAR(32), updated_at VARCHAR(32), PRIMARY KEY (id),
        CONSTRAINT uq_volume_backend_name UNIQUE (backend, name))''',
    'CREATE INDEX ix_cinderlib_volumes_backend ON cinderlib_volumes (backend)',
    '''CREATE TABLE cinderlib_snapshots (
        id VARCHAR(255) NOT NULL, volume_id VARCHAR(255) NOT NULL, name VARCHAR(255), status VARCHAR(32),
        data TEXT NOT NULL, created_at VARCHAR(32), updated_at VARCHAR(32), PRIMARY KEY (id))''',
    'CREATE INDEX ix_cinderlib_snapshots_volume_id ON cinderlib_snapshots (volume_id)',
    '''CREATE TABLE cinderlib_connections (
        id VARCHAR(255) NOT NULL, volume_id VARCHAR(255) NOT NULL, status VARCHAR(32), data TEXT NOT NULL,
        created_at VARCHAR(32), updated_at VARCHAR(32), PRIMARY KEY (id))''',
    'CREATE INDEX ix_cinderlib_connections_volume_id ON cinderlib_connections (volume_id)',
    '''CREATE TABLE cinderlib_key_values ("key" VARCHAR(255) NOT NULL, value TEXT, PRIMARY KEY ("key"))''',
    "INSERT INTO cinderlib_meta (\"key\", value) VALUES ('schema_version', '1')",
]

V1_VOLUME = {'id': 'v1', 'backend': 'lvm', 'name': 'data01', 'status': 'available', 'size': 3,
             'created_at': '2025-01-01T00:00:00', 'updated_at': '2025-01-01T00:00:00'}
V1_SNAPSHOT = {'id': 's1', 'volume_id': 'v1', 'name': 'nightly', 'status': 'available',
               'created_at': '2025-01-01T00:00:00', 'updated_at': '2025-01-01T00:00:00'}


def upgraded(record: dict) -> dict:
    """A record of schema < 4 as schema 4 holds it (Cinder's field names)."""
    record = dict(record)
    record['display_name'] = record.pop('name')
    return record


@pytest.fixture(params=['sqlite', 'postgresql'])
def url(request, tmp_path) -> str:
    if request.param == 'sqlite':
        return 'sqlite:///%s' % (tmp_path / 'state.db')
    return request.getfixturevalue('postgresql_store_url')


def write_v1_store(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in V1_DDL:
            conn.execute(sa.text(statement))
        conn.execute(sa.text('INSERT INTO cinderlib_volumes (id, backend, name, status, size, data, created_at, '
                             'updated_at) VALUES (:id, :backend, :name, :status, :size, :data, :created_at, '
                             ':updated_at)'), dict(V1_VOLUME, data=json.dumps(V1_VOLUME)))
        conn.execute(sa.text('INSERT INTO cinderlib_snapshots (id, volume_id, name, status, data, created_at, '
                             'updated_at) VALUES (:id, :volume_id, :name, :status, :data, :created_at, '
                             ':updated_at)'), dict(V1_SNAPSHOT, data=json.dumps(V1_SNAPSHOT)))
        conn.execute(sa.text("INSERT INTO cinderlib_key_values (\"key\", value) VALUES ('driver-key', 'x')"))
    engine.dispose()


def indexes(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {i['name'] for i in sa.inspect(conn).get_indexes('cinderlib_volumes')}
    finally:
        engine.dispose()


def test_a_version_1_store_is_upgraded_in_place_and_keeps_its_records(url):
    write_v1_store(url)
    assert 'ix_cinderlib_volumes_backend_status' not in indexes(url)

    store = persistence.SQLStore(url)
    try:
        assert store.schema_version == persistence.SCHEMA_VERSION == 4
        assert store.volume_records() == [upgraded(V1_VOLUME)]
        assert store.snapshot_records(volume_id='v1') == [upgraded(V1_SNAPSHOT)]
        assert store.snapshot_records(display_name='nightly')[0]['id'] == 's1'
        assert store.key_values() == {'driver-key': 'x'}
        # The upgraded store works as a new one does: display names are labels now.
        store.put('volume', {'id': 'v2', 'backend': 'lvm', 'display_name': 'data02', 'status': 'creating',
                             'size': 1})
        store.put('volume', {'id': 'v3', 'backend': 'lvm', 'display_name': 'data01', 'size': 1})
        assert [v['id'] for v in store.volume_records(backend='lvm', display_name='data01')] == ['v1', 'v3']
    finally:
        store.close()
    assert {'ix_cinderlib_volumes_backend_status', 'ix_cinderlib_volumes_backend_display_name'} <= indexes(url)
    # Opening it again changes nothing.
    again = persistence.SQLStore(url)
    assert again.schema_version == 4 and len(again.volume_records()) == 3
    again.close()


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_a_version_2_store_gets_the_connectors_table_and_keeps_its_records(url):
    # A version 2 store: version 1 plus the index of version 2.
    write_v1_store(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text('CREATE INDEX ix_cinderlib_volumes_backend_status ON cinderlib_volumes (backend, status)'))
        conn.execute(sa.text("UPDATE cinderlib_meta SET value='2' WHERE \"key\"='schema_version'"))
        conn.execute(sa.text('INSERT INTO cinderlib_connections (id, volume_id, status, data) VALUES '
                             "('c1', 'v1', 'connected', :data)"),
                     {'data': json.dumps({'id': 'c1', 'volume_id': 'v1', 'connector': {'host': 'h'}})})
    engine.dispose()
    assert 'cinderlib_connectors' not in tables(url)

    store = persistence.SQLStore(url)
    try:
        assert store.schema_version == 4
        assert store.volume_records() == [upgraded(V1_VOLUME)]
        assert store.connection_records(volume_id='v1')[0]['connector'] == {'host': 'h'}
        store.put('connector', {'id': 'node-a', 'host': 'a', 'connector': {'host': 'a'}})
        assert store.get_connector('node-a')['connector'] == {'host': 'a'}
    finally:
        store.close()
    assert 'cinderlib_connectors' in tables(url)


def write_v3_store(url: str) -> None:
    """A store as the last release (schema 3) left it: version 1, the index of
    version 2, the connectors table of version 3, and a connector stored."""
    write_v1_store(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text('CREATE INDEX ix_cinderlib_volumes_backend_status ON cinderlib_volumes (backend, status)'))
        conn.execute(sa.text('CREATE TABLE cinderlib_connectors (id VARCHAR(255) NOT NULL, host VARCHAR(255), '
                             'data TEXT NOT NULL, created_at VARCHAR(32), updated_at VARCHAR(32), PRIMARY KEY (id))'))
        conn.execute(sa.text('CREATE INDEX ix_cinderlib_connectors_host ON cinderlib_connectors (host)'))
        conn.execute(sa.text("INSERT INTO cinderlib_connectors (id, host, data) VALUES ('node-a', 'a', :data)"),
                     {'data': json.dumps({'id': 'node-a', 'host': 'a', 'connector': {'host': 'a'}})})
        conn.execute(sa.text("UPDATE cinderlib_meta SET value='3' WHERE \"key\"='schema_version'"))
    engine.dispose()


def test_a_store_of_the_last_release_is_upgraded_and_used_by_the_library(url, monkeypatch):
    write_v3_store(url)
    store = persistence.SQLStore(url)
    try:
        assert store.schema_version == 4
        # The library finds the old records by display name and through cinderlib's object API.
        [volume] = store.get_volumes(volume_name='data01', backend_name='lvm')
        assert (volume.id, volume.display_name, volume.name, volume.size) == ('v1', 'data01', 'volume-v1', 3)
        [snapshot] = store.get_snapshots(snapshot_name='nightly')
        assert (snapshot.id, snapshot.display_name, snapshot.volume.id) == ('s1', 'nightly', 'v1')
        assert store.get_connector('node-a')['connector'] == {'host': 'a'}
        monkeypatch.setattr(context.STATE, 'store', store)
        volume.update(description='kept')
        assert store.volume_records(volume_id='v1')[0]['display_description'] == 'kept'
    finally:
        store.close()


def test_a_new_store_is_made_at_the_current_version(url):
    store = persistence.SQLStore(url)
    store.close()
    assert store.schema_version == persistence.SCHEMA_VERSION
    assert 'ix_cinderlib_volumes_backend_status' in indexes(url)


def test_a_store_newer_than_the_code_is_refused_and_left_alone(url):
    persistence.SQLStore(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE cinderlib_meta SET value='5' WHERE \"key\"='schema_version'"))
    engine.dispose()
    with pytest.raises(PersistenceError, match=r'has schema version 5, newer than the 4 this collection knows; '
                                               r'upgrade the cinderlib.storage collection'):
        persistence.SQLStore(url)


# -- many processes at once ---------------------------------------------------------------
PROCESSES = 8
RECORDS = 15


def _worker(url: str, barrier, results) -> None:
    try:
        barrier.wait()
        store = persistence.SQLStore(url)  # every process opens (and creates) the store at once
        for number in range(RECORDS):
            record_id = '%d-%d' % (os.getpid(), number)
            store.put('volume', {'id': record_id, 'display_name': record_id, 'backend': 'b', 'status': 'creating',
                                 'size': 1})
            record = store.volume_records(volume_id=record_id)[0]
            record['status'] = 'available'
            store.put('volume', record)
            store.put_key_value('shared-%d' % (number % 3), record_id)
        mine = [v['id'] for v in store.volume_records(backend='b') if v['id'].startswith('%d-' % os.getpid())]
        results.put(('ok', mine))
        for number in range(RECORDS):
            store.remove('volume', '%d-%d' % (os.getpid(), number))
        store.close()
    except Exception:  # noqa: BLE001 - reported to the test
        results.put(('error', traceback.format_exc()))


def test_processes_creating_and_writing_one_store_at_once(url):
    ctx = multiprocessing.get_context('fork')
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, barrier, results)) for _number in range(PROCESSES)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=120) for _proc in procs]
    for proc in procs:
        proc.join(timeout=60)
    errors = [detail for status, detail in outcomes if status != 'ok']
    assert errors == []
    assert all(len(ids) == RECORDS for _status, ids in outcomes)
    store = persistence.SQLStore(url)
    assert store.volume_records() == [] and store.schema_version == persistence.SCHEMA_VERSION
    assert sorted(store.key_values()) == ['shared-0', 'shared-1', 'shared-2']
    store.close()
