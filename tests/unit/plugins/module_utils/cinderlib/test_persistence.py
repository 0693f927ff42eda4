# The state store contract, run against every store.
from __future__ import annotations

import json
import sqlite3

import pytest
from sqlalchemy.engine import make_url

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import persistence
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import PersistenceError


@pytest.fixture(params=['memory', 'memory_db', 'sqlite_file', 'postgresql'])
def store(request, tmp_path):
    if request.param == 'sqlite_file':
        made = persistence.open_store({'storage': 'db', 'connection': 'sqlite:///%s' % (tmp_path / 's.db')})
    elif request.param == 'postgresql':
        # A real server (tests/conftest.py), an empty database for each test.
        made = persistence.open_store({'storage': 'db', 'connection': request.getfixturevalue('postgresql_store_url')})
    else:
        made = persistence.open_store({'storage': request.param})
    yield made
    made.close()


def volume(vid, name='', backend='lvm', **extra):
    record = {'id': vid, 'display_name': name, 'backend': backend, 'size': 1, 'status': 'available'}
    record.update(extra)
    return record


class TestContract:
    def test_put_then_get_returns_the_record_with_timestamps(self, store):
        stored = store.put('volume', volume('v1', 'data', metadata={'a': 'b'}))
        assert stored['created_at'] and stored['updated_at']
        [got] = store.volume_records(backend='lvm')
        assert got['metadata'] == {'a': 'b'} and got['display_name'] == 'data'

    def test_update_keeps_created_at(self, store):
        first = store.put('volume', volume('v1', 'data'))
        changed = dict(first, size=2)
        second = store.put('volume', changed)
        assert second['created_at'] == first['created_at']
        assert store.volume_records(volume_id='v1')[0]['size'] == 2

    @pytest.mark.parametrize('filters, expected', [
        ({'backend': 'lvm'}, ['v1', 'v2']),
        ({'backend': 'other'}, ['v3']),
        ({'display_name': 'b'}, ['v2']),
        ({'volume_id': 'v3'}, ['v3']),
        ({'backend': 'lvm', 'display_name': 'c'}, []),
    ])
    def test_filters(self, store, filters, expected):
        store.put('volume', volume('v1', 'a'))
        store.put('volume', volume('v2', 'b'))
        store.put('volume', volume('v3', 'c', backend='other'))
        assert sorted(v['id'] for v in store.volume_records(**filters)) == expected

    def test_display_names_are_labels_not_keys(self, store):
        # As in cinderlib and Cinder: the modules' name uniqueness is theirs (volume_state).
        store.put('volume', volume('v1', 'data'))
        store.put('volume', volume('v2', 'data'))
        assert sorted(v['id'] for v in store.volume_records(backend='lvm', display_name='data')) == ['v1', 'v2']

    def test_same_name_on_other_backend_and_unnamed_volumes_are_fine(self, store):
        store.put('volume', volume('v1', 'data'))
        store.put('volume', volume('v2', 'data', backend='other'))
        store.put('volume', volume('v3'))
        store.put('volume', volume('v4'))
        assert len(store.volume_records()) == 4

    def test_remove(self, store):
        store.put('volume', volume('v1'))
        assert store.remove('volume', 'v1') is True
        assert store.remove('volume', 'v1') is False
        assert store.volume_records() == []

    def test_connectors_by_node_id(self, store):
        assert store.get_connector('node-a') is None
        store.put('connector', {'id': 'node-a', 'host': 'a', 'connector': {'host': 'a', 'initiator': 'iqn.a'}})
        store.put('connector', {'id': 'node-a', 'host': 'a', 'connector': {'host': 'a', 'initiator': 'iqn.b'}})
        assert store.get_connector('node-a')['connector']['initiator'] == 'iqn.b'
        assert [c['id'] for c in store.get('connector', host='a')] == ['node-a']
        assert store.remove('connector', 'node-a') is True and store.get_connector('node-a') is None

    def test_snapshots_and_connections_by_volume(self, store):
        store.put('snapshot', {'id': 's1', 'volume_id': 'v1', 'name': 'snap'})
        store.put('connection', {'id': 'c1', 'volume_id': 'v1', 'connector': {'host': 'h'}})
        assert store.snapshot_records(volume_id='v1')[0]['name'] == 'snap'
        assert store.connection_records(volume_id='v1')[0]['connector'] == {'host': 'h'}
        assert store.snapshot_records(volume_id='v2') == []

    def test_key_values(self, store):
        store.put_key_value('k', 'v')
        store.put_key_value('k', 'w')
        store.put_key_value('other', 'x')
        assert store.key_values('k') == {'k': 'w'}
        assert store.key_values() == {'k': 'w', 'other': 'x'}
        store.delete_key_value('k')
        assert store.key_values('k') == {}
        store.delete_key_value(persistence.KeyValue('other'))  # cinderlib's way: a KeyValue
        assert store.key_values() == {}

    def test_record_without_id_is_refused(self, store):
        with pytest.raises(PersistenceError, match='needs an id'):
            store.put('volume', {'name': 'x', 'backend': 'lvm'})

    def test_unknown_kind(self, store):
        with pytest.raises(ValueError):
            store.get('pool')


class TestSQLStore:
    def test_two_stores_on_one_file_share_state(self, tmp_path):
        url = 'sqlite:///%s' % (tmp_path / 'shared.db')
        first, second = persistence.SQLStore(url), persistence.SQLStore(url)
        first.put('volume', volume('v1', 'data'))
        assert second.volume_records()[0]['id'] == 'v1'

    def test_schema_is_versioned_and_wal_is_on(self, tmp_path):
        path = tmp_path / 's.db'
        store = persistence.SQLStore('sqlite:///%s' % path)
        assert store.schema_version == persistence.SCHEMA_VERSION
        conn = sqlite3.connect(str(path))
        assert conn.execute('PRAGMA journal_mode').fetchone()[0] == 'wal'
        conn.close()

    def test_a_newer_schema_is_refused(self, tmp_path):
        path = tmp_path / 's.db'
        persistence.SQLStore('sqlite:///%s' % path).close()
        conn = sqlite3.connect(str(path))
        conn.execute("UPDATE cinderlib_meta SET value='99' WHERE key='schema_version'")
        conn.commit()
        conn.close()
        with pytest.raises(PersistenceError, match='schema version 99, newer than the %d this collection knows'
                           % persistence.SCHEMA_VERSION):
            persistence.SQLStore('sqlite:///%s' % path)

    def test_records_are_readable_without_the_library(self, tmp_path):
        path = tmp_path / 's.db'
        persistence.SQLStore('sqlite:///%s' % path).put('volume', volume('v1', 'data'))
        conn = sqlite3.connect(str(path))
        row = conn.execute('SELECT backend, display_name, size, data FROM cinderlib_volumes').fetchone()
        assert row[:3] == ('lvm', 'data', 1) and json.loads(row[3])['id'] == 'v1'

    def test_unreachable_database_names_the_url_without_its_password(self):
        with pytest.raises(PersistenceError) as error:
            persistence.open_store({'storage': 'db', 'retry_window': 0,
                                    'connection': 'postgresql+psycopg2://admin:s3cret@127.0.0.1:1/cinder'})
        assert 's3cret' not in str(error.value)
        assert str(error.value).startswith(
            "Can't open the state store postgresql+psycopg2://admin:********@127.0.0.1:1/cinder: it is unreachable "
            "(persistence.retry_window is 0: tried once): (psycopg2.OperationalError) connection to server at ")

    def test_sqlite_file_in_a_directory_that_cant_be_made(self, tmp_path):
        blocker = tmp_path / 'file'
        blocker.write_text('')
        with pytest.raises(PersistenceError, match="Can't open the state store"):
            persistence.open_store({'connection': 'sqlite:///%s/sub/s.db' % blocker})


class TestPostgreSQLStore:
    """What only a real PostgreSQL server shows (tests/conftest.py starts one)."""

    def test_two_stores_on_one_database_share_state(self, postgresql_store_url):
        first, second = persistence.SQLStore(postgresql_store_url), persistence.SQLStore(postgresql_store_url)
        try:
            first.put('volume', volume('v1', 'data'))
            assert second.volume_records()[0]['id'] == 'v1'
            assert second.schema_version == persistence.SCHEMA_VERSION
        finally:
            first.close()
            second.close()

    def test_records_are_readable_without_the_library(self, postgresql_store_url):
        import sqlalchemy as sa

        store = persistence.SQLStore(postgresql_store_url)
        store.put('volume', volume('v1', 'data'))
        store.close()
        engine = sa.create_engine(postgresql_store_url)
        try:
            with engine.connect() as conn:
                row = conn.execute(sa.text('SELECT backend, display_name, size, data FROM cinderlib_volumes')).one()
        finally:
            engine.dispose()
        assert tuple(row[:3]) == ('lvm', 'data', 1) and json.loads(row[3])['id'] == 'v1'

    def test_wrong_password_fails_without_showing_a_password(self, postgresql_url):
        url = make_url(postgresql_url)
        wrong = 'not-%s' % url.password
        bad_url = url.set(password=wrong).render_as_string(hide_password=False)
        with pytest.raises(PersistenceError) as error:
            persistence.open_store({'storage': 'db', 'connection': bad_url})
        message = str(error.value)
        assert wrong not in message and url.password not in message
        assert message.startswith("Can't open the state store postgresql+psycopg2://cinderlib:********@127.0.0.1:%d/"
                                  "cinderlib: " % url.port)
        assert 'password authentication failed for user "cinderlib"' in message

    def test_a_missing_database_fails_without_showing_the_password(self, postgresql_url):
        url = make_url(postgresql_url)
        with pytest.raises(PersistenceError) as error:
            persistence.open_store({'storage': 'db', 'connection': postgresql_url + '_missing'})
        assert url.password not in str(error.value)
        assert 'database "cinderlib_missing" does not exist' in str(error.value)

    def test_errors_of_an_open_store_do_not_show_the_password(self, postgresql_store_url):
        store = persistence.SQLStore(postgresql_store_url)
        try:
            store.put('volume', volume('v1', 'data'))
            with pytest.raises(PersistenceError, match="Can't write volume v2 to the state store") as error:
                store.put('volume', volume('v2', 'data', size='not a number'))  # the size column refuses it
            password = make_url(postgresql_store_url).password
            # The cause is what a traceback (-vvv) shows.
            assert password not in str(error.value) and password not in str(error.value.cause)
        finally:
            store.close()


@pytest.mark.parametrize('config, message', [
    ({'storage': 'redis'}, "Unknown persistence storage 'redis'"),
    ({'storage': 'memory', 'connection': 'x'}, "Unknown persistence option\\(s\\) for storage 'memory': connection"),
    ({'storage': 'db', 'url': 'x'}, "Unknown persistence option\\(s\\) for storage 'db': url"),
])
def test_bad_persistence_config(config, message):
    with pytest.raises(PersistenceError, match=message):
        persistence.open_store(config)


def test_default_paths():
    assert persistence.default_db_path(uid=0) == '/var/lib/cinderlib/state.db'
    assert persistence.default_db_path(uid=1000, environ={'XDG_STATE_HOME': '/x'}) == '/x/cinderlib/state.db'
    assert persistence.default_db_path(uid=1000, environ={'HOME': '/home/u'}) == \
        '/home/u/.local/state/cinderlib/state.db'


def test_store_instance_passes_through():
    store = persistence.MemoryStore()
    assert persistence.open_store(store) is store
    assert persistence.open_store({'storage': store}) is store
