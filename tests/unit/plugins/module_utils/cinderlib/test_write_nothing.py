"""``write_nothing`` (the modules' check mode): the state store read into memory
without a byte written where it lives, nor a -wal/-shm, nor its directory."""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import quickcheck
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import (
    SCHEMA_VERSION,
    SQLStore,
    open_store,
    sqlite_copy,
)


def listing(directory) -> dict:
    """The directory's entries with their size and mtime, and its own mtime."""
    entries = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.iterdir()}
    return {'entries': entries, 'mtime': directory.stat().st_mtime_ns}


def make_store(path) -> None:
    store = SQLStore('sqlite:///%s' % path)
    store.put('volume', {'id': 'v1', 'backend': 'lvm', 'display_name': 'data', 'status': 'available', 'size': 1})
    store.close()
    time.sleep(0.01)  # a change after this is seen in mtimes


def test_a_missing_store_is_empty_and_stays_missing(tmp_path):
    path = tmp_path / 'dir' / 'state.db'
    store = open_store({'storage': 'db', 'connection': 'sqlite:///%s' % path}, write_nothing=True)
    assert store.get('volume') == [] and store.schema_version == SCHEMA_VERSION
    store.put('volume', {'id': 'v1', 'backend': 'lvm', 'display_name': 'data', 'status': 'available', 'size': 1})
    assert [v['id'] for v in store.get('volume')] == ['v1']
    store.close()
    assert list(tmp_path.iterdir()) == []
    assert quickcheck.open_reader({'connection': 'sqlite:///%s' % path}, write_nothing=True) is None
    assert list(tmp_path.iterdir()) == []


def test_an_existing_store_is_read_and_left_as_it_was(tmp_path):
    path = tmp_path / 'state.db'
    make_store(path)
    before = listing(tmp_path)
    store = open_store({'connection': 'sqlite:///%s' % path}, write_nothing=True)
    assert [v['display_name'] for v in store.get('volume')] == ['data']
    assert 'sqlite:///' in store.connection and str(path) in store.connection  # messages name the file
    store.put('volume', {'id': 'v2', 'backend': 'lvm', 'display_name': 'more', 'status': 'available', 'size': 1})
    store.remove('volume', 'v1')
    store.close()
    reader = quickcheck.open_reader({'connection': 'sqlite:///%s' % path}, write_nothing=True)
    assert [v['id'] for v in reader.volume_records(backend='lvm')] == ['v1']
    reader.close()
    assert listing(tmp_path) == before


def test_a_store_another_process_is_writing_is_read_with_its_last_commit(tmp_path):
    path = tmp_path / 'state.db'
    make_store(path)
    writer = sqlite3.connect(str(path))
    try:
        writer.execute("UPDATE cinderlib_volumes SET display_name = 'renamed'")
        writer.commit()
        assert os.path.exists(str(path) + '-wal')  # not checkpointed: the file alone has the old name
        copy = sqlite_copy(str(path))
        assert copy.execute('SELECT display_name FROM cinderlib_volumes').fetchall() == [('renamed',)]
        copy.close()
    finally:
        writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['state.db']


@pytest.mark.skipif(importlib.util.find_spec('cinder') is None, reason='cinder is not installed for this interpreter')
def test_cinder_configured_to_write_nothing_makes_no_directory(tmp_path):
    """With no state, locks or cache directory yet, Cinder is configured, its locks are
    taken in-process (nothing to lock against), and not one path is made."""
    node = tmp_path / 'node'
    node.mkdir()
    code = textwrap.dedent('''
        import sys
        from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
        from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import context, locks
        cinderlib.setup(write_nothing=True, file_locks_path=sys.argv[1] + '/state',
                        persistence_config={'connection': 'sqlite:///' + sys.argv[1] + '/store/state.db'})
        runtime = context.cinder_runtime()
        assert not runtime.has_locks
        with locks.try_locked('cinderlib-volume-x') as taken:
            assert taken
        with locks.locked('cinderlib-name-y', 'y'):
            pass
        print('ok')
    ''')
    env = dict(os.environ, HOME=str(node / 'home'), XDG_CACHE_HOME=str(node / 'cache'))
    proc = subprocess.run([sys.executable, '-c', code, str(node)], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert proc.stdout.strip() == 'ok', proc.stdout + proc.stderr
    assert list(node.iterdir()) == []
