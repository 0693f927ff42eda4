# Faults of the SQLite state store (issue 19). A file that is damaged or from a
# newer version of the collection: every task refuses it with a message that
# names the file, no traceback, and leaves it exactly as it was for the operator
# (its bytes are compared), and the backend as it was. A full disk: the task
# fails before the driver is called, and the file stays sound.
from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess

import pytest
from functional_helpers import lv_names, run_adhoc


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def damage(db, how: str) -> None:
    if how == 'garbage':
        db.write_bytes(os.urandom(8192))
    elif how == 'truncated':
        with open(db, 'r+b') as handle:
            handle.truncate(db.stat().st_size // 2)
    elif how == 'newer':
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE cinderlib_meta SET value = '99' WHERE key = 'schema_version'")
        conn.close()


@pytest.mark.parametrize('how', ['garbage', 'truncated', 'newer'])
def test_a_damaged_or_newer_store_is_refused_and_left_as_it_was(how, tmp_path, run_env, lvm_backend, lvm_backend_env):
    db = tmp_path / 'state.db'
    opts = {'backend': lvm_backend, 'persistence': {'connection': 'sqlite:///%s' % db}}
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(opts, name='kept', size=1), run_env)
    assert rc == 0, out
    lv = '%s/volume-%s' % (lvm_backend_env['vg'], result['volume']['id'])
    try:
        damage(db, how)
        before, lvs = digest(db), lv_names(lvm_backend_env['vg'], run_env)
        for module, args in (('cinderlib_volume', dict(opts, name='kept', size=1)),
                             ('cinderlib_volume', dict(opts, name='another', size=1)),
                             ('cinderlib_backend_facts', opts),
                             ('cinderlib_reconcile', opts)):
            rc, result, out = run_adhoc('cinderlib.storage.' + module, args, run_env)
            assert rc != 0, out
            assert str(db) in result['msg'] and 'Traceback' not in result['msg'], result
            assert digest(db) == before, '%s changed the store file' % module
            assert lv_names(lvm_backend_env['vg'], run_env) == lvs, '%s changed the volume group' % module
        assert len([n for n in os.listdir(tmp_path) if n.startswith('state.db')]) == 1
    finally:
        subprocess.run(['lvremove', '-f', lv], env=run_env, capture_output=True, check=False)


@pytest.fixture
def small_filesystem(tmp_path):
    """A 512 KiB tmpfs: a state directory that fills up."""
    mount = tmp_path / 'small'
    mount.mkdir()
    proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=512k,mode=0700', 'tmpfs', str(mount)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip('no tmpfs mount here (%s): needs root' % proc.stderr.strip())
    try:
        yield mount
    finally:
        subprocess.run(['umount', '-l', str(mount)], capture_output=True, check=False)


def fill(directory) -> None:
    """Fill the filesystem of ``directory`` to the last byte."""
    fd = os.open(directory / 'filler', os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):  # smaller writes for the last bytes
            try:
                while os.write(fd, b'\0' * size):
                    pass
            except OSError:
                continue
    finally:
        os.close(fd)


def test_a_full_disk_fails_the_task_before_the_driver_and_the_store_stays_sound(
        small_filesystem, run_env, lvm_backend, lvm_backend_env):
    db = small_filesystem / 'state.db'
    opts = {'backend': lvm_backend, 'persistence': {'connection': 'sqlite:///%s' % db}}
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(opts, name='before', size=1), run_env)
    assert rc == 0, out
    made = [result['volume']['id']]
    try:
        lvs = lv_names(lvm_backend_env['vg'], run_env)
        fill(small_filesystem)
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(opts, name='full', size=1), run_env)
        assert rc != 0, out
        assert 'full' in result['msg'] and str(db) in result['msg'] and 'Traceback' not in result['msg'], result
        # The transitional record could not be written, so the driver was never called.
        assert lv_names(lvm_backend_env['vg'], run_env) == lvs

        # Room again (SQLite needs some to open the file at all): the file is
        # sound, reconcile has nothing to settle, and the same task works.
        (small_filesystem / 'filler').unlink()
        with sqlite3.connect(db) as conn:
            assert conn.execute('PRAGMA integrity_check').fetchone() == ('ok',)
            names = sorted(row[0] for row in conn.execute('SELECT display_name FROM cinderlib_volumes'))
        conn.close()
        assert names == ['before']
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_reconcile', opts, run_env)
        assert rc == 0 and result['actions'] == [] and result['transitional'] == [], out
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(opts, name='full', size=1), run_env)
        assert rc == 0 and result['changed'], out
        made.append(result['volume']['id'])
    finally:
        for volume_id in made:
            subprocess.run(['lvremove', '-f', '%s/volume-%s' % (lvm_backend_env['vg'], volume_id)], env=run_env,
                           capture_output=True, check=False)
