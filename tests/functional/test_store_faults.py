# A state store file that is damaged or from a newer version of the collection:
# every task refuses it with a message that names the file, no traceback, and
# leaves it exactly as it was for the operator (its bytes are compared), and
# the backend as it was (no volume made for a store that can't record it).
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
