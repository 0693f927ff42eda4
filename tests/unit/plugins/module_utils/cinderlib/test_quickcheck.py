"""The fast path's cheap parts: the sqlite3 reader of the state store, the
LVM look-up command, and when a backend gets a probe at all."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import loader, quickcheck
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import SQLStore

LVM = {'volume_backend_name': 'lvm', 'volume_driver': quickcheck.LVM_DRIVER, 'volume_group': 'vg1'}
VOL_ID = '0b5e8c7a-6e1e-4f7c-9d4e-4f3bd2a9b0c1'


@pytest.fixture
def sqlite_store(tmp_path):
    """A SQLite state store file with volumes on two backends, snapshots and connections."""
    path = tmp_path / 'state.db'
    store = SQLStore('sqlite:///%s' % path)
    for i, (backend, name) in enumerate((('lvm', 'v0'), ('lvm', 'v1'), ('other', 'v0'), ('lvm', 'v3'))):
        store.put('volume', {'id': '00000000-0000-4000-8000-%012d' % i, 'backend': backend,
                             'display_name': name, 'size': i + 1, 'status': 'available', 'metadata': {'n': i}})
    store.put('volume', {'id': '00000000-0000-4000-8000-000000000009', 'backend': 'lvm', 'display_name': '',
                         'size': 1, 'status': 'error'})
    for i in range(3):
        store.put('snapshot', {'id': 's%d' % i, 'volume_id': '00000000-0000-4000-8000-%012d' % (i % 2),
                               'display_name': 'snap%d' % i, 'status': 'available', 'backend': 'lvm'})
    store.put('connection', {'id': 'c1', 'volume_id': '00000000-0000-4000-8000-000000000000', 'status': 'attached',
                             'connector': {'host': 'h1'}})
    yield store, path
    store.close()


READS = [
    ('volume_records', {}),
    ('volume_records', {'backend': 'lvm'}),
    ('volume_records', {'backend': 'lvm', 'display_name': 'v0'}),
    ('volume_records', {'backend': 'lvm', 'display_name': 'nope'}),
    ('volume_records', {'volume_id': '00000000-0000-4000-8000-000000000002'}),
    ('snapshot_records', {'volume_id': '00000000-0000-4000-8000-000000000000'}),
    ('snapshot_records', {'display_name': 'snap1'}),
    ('connection_records', {'volume_id': '00000000-0000-4000-8000-000000000000'}),
    ('connection_records', {'volume_id': '00000000-0000-4000-8000-000000000001'}),
]


@pytest.mark.parametrize('method, filters', READS)
def test_reader_reads_what_the_sqlalchemy_store_reads(sqlite_store, method, filters):
    store, path = sqlite_store
    reader = quickcheck.open_reader({'storage': 'db', 'connection': 'sqlite:///%s' % path})
    assert isinstance(reader, quickcheck.SQLiteReader)
    try:
        assert getattr(reader, method)(**filters) == getattr(store, method)(**filters)
    finally:
        reader.close()


def test_reader_filters_on_record_fields_too(sqlite_store):
    store, path = sqlite_store
    reader = quickcheck.SQLiteReader(str(path))
    try:
        assert reader.get('snapshot', backend='lvm') == store.get('snapshot', backend='lvm')
        with pytest.raises(ValueError):
            reader.get('backend')
    finally:
        reader.close()


@pytest.mark.parametrize('config', [
    {'storage': 'memory'},
    {'storage': 'memory_db'},
    {'storage': 'db', 'connection': 'sqlite://'},
    {'storage': 'db', 'connection': 'sqlite:///:memory:'},
])
def test_no_reader_for_stores_that_start_empty(config):
    assert quickcheck.open_reader(config) is None


def test_no_reader_for_a_store_not_made_yet(tmp_path):
    assert quickcheck.open_reader({'connection': 'sqlite:///%s' % (tmp_path / 'none.db')}) is None
    assert not (tmp_path / 'none.db').exists()


def test_no_reader_for_another_schema_version(sqlite_store):
    _store, path = sqlite_store
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE cinderlib_meta SET value = '1' WHERE key = 'schema_version'")
    assert quickcheck.open_reader({'connection': 'sqlite:///%s' % path}) is None


def test_no_reader_for_a_file_that_is_no_store(tmp_path):
    path = tmp_path / 'other.db'
    path.write_text('not sqlite')
    assert quickcheck.open_reader({'connection': 'sqlite:///%s' % path}) is None


def test_default_store_path_is_the_stores_default():
    assert quickcheck.sqlite_path(None).endswith('state.db')
    assert quickcheck.sqlite_path({'storage': 'db', 'connection': None}) == quickcheck.sqlite_path({})
    assert quickcheck.sqlite_path({'connection': 'postgresql://u@h/db'}) is None


# -- the LVM look-up ------------------------------------------------------------------------
def test_lvm_command_as_root_is_the_drivers_lvs(tmp_path):
    cfg = dict(LVM, lvm_conf_file=str(tmp_path / 'missing.conf'))
    assert quickcheck.lvm_command(cfg, VOL_ID, 'sudo', im_root=True) == [
        'env', 'LC_ALL=C', 'lvs', '--noheadings', '--unit=g', '-o', 'vg_name,name,size', '--nosuffix',
        '--readonly', 'vg1/volume-%s' % VOL_ID]


def test_lvm_command_not_root_uses_the_root_helper(tmp_path):
    conf = tmp_path / 'lvm.conf'
    conf.write_text('')
    cfg = {'volume_driver': quickcheck.LVM_DRIVER, 'lvm_conf_file': str(conf), 'lvm_suppress_fd_warnings': 'true'}
    command = quickcheck.lvm_command(cfg, VOL_ID, 'sudo -n', im_root=False)
    assert command[:6] == ['sudo', '-n', 'env', 'LC_ALL=C', 'LVM_SYSTEM_DIR=%s' % tmp_path,
                           'LVM_SUPPRESS_FD_WARNINGS=1']
    assert command[-1] == 'cinder-volumes/volume-%s' % VOL_ID
    cfg['lvm_conf_file'] = 'None'
    assert not any(part.startswith('LVM_SYSTEM_DIR') for part in quickcheck.lvm_command(cfg, VOL_ID, '', True))


def test_lvm_command_refuses_what_it_cannot_read():
    with pytest.raises(quickcheck.Unavailable):
        quickcheck.lvm_command(dict(LVM, lvm_suppress_fd_warnings='maybe'), VOL_ID, '', True)


def test_a_failing_lvs_is_no_answer(tmp_path, monkeypatch):
    # An lvs that fails for another reason than a missing LV must not read as "gone".
    fake = tmp_path / 'env'
    fake.write_text('#!/bin/sh\necho "  Volume group \\"vg1\\" has a problem" >&2\nexit 5\n')
    fake.chmod(0o755)
    monkeypatch.setenv('PATH', str(tmp_path))
    with pytest.raises(quickcheck.Unavailable, match='rc 5'):
        quickcheck.lvm_volume_size(LVM, VOL_ID, '', True, dict(os.environ))
    fake.write_text('#!/bin/sh\necho "  Failed to find logical volume \\"vg1/x\\"" >&2\nexit 5\n')
    assert quickcheck.lvm_volume_size(LVM, VOL_ID, '', True, dict(os.environ)) is None
    fake.write_text('#!/bin/sh\necho "  vg1 volume-x 2.00"\n')
    assert quickcheck.lvm_volume_size(LVM, VOL_ID, '', True, dict(os.environ)) == 2.0


def test_driver_environment_is_the_loaders(monkeypatch):
    monkeypatch.setenv('PATH', '/usr/bin:/bin')
    expected = quickcheck.driver_environment()['PATH']
    loader.complete_path()
    assert os.environ['PATH'] == expected


# -- which backends get a probe ----------------------------------------------------------------
def test_probe_only_for_a_configuration_a_full_run_validated(tmp_path):
    assert quickcheck.backend_probe(LVM, 'error', str(tmp_path), '', True) is None
    quickcheck.remember_validated(str(tmp_path), quickcheck.config_fingerprint(LVM, 'error'))
    assert callable(quickcheck.backend_probe(LVM, 'error', str(tmp_path), '', True))
    # Another value, another configuration: validated again by the full path first.
    assert quickcheck.backend_probe(dict(LVM, volume_group='vg2'), 'error', str(tmp_path), '', True) is None
    # unknown_options=warn warns from the driver's options, which need Cinder.
    quickcheck.remember_validated(str(tmp_path), quickcheck.config_fingerprint(LVM, 'warn'))
    assert quickcheck.backend_probe(LVM, 'warn', str(tmp_path), '', True) is None


def test_no_probe_for_drivers_without_a_cheap_check(tmp_path):
    other = {'volume_backend_name': 'x', 'volume_driver': 'cinder.volume.drivers.rbd.RBDDriver'}
    quickcheck.remember_validated(str(tmp_path), quickcheck.config_fingerprint(other, 'error'))
    assert quickcheck.backend_probe(other, 'error', str(tmp_path), '', True) is None


def test_fingerprint_leaves_credential_values_out():
    with_password = dict(LVM, chap_password='s3cret')
    assert quickcheck.config_fingerprint(with_password, 'error') == \
        quickcheck.config_fingerprint(dict(LVM, chap_password='other'), 'error')
    assert quickcheck.config_fingerprint(with_password, 'error') != quickcheck.config_fingerprint(LVM, 'error')


def test_remember_validated_survives_an_unwritable_state_dir(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('')
    quickcheck.remember_validated(str(blocker), 'abc')  # a file where the directory should be
    assert not quickcheck.was_validated(str(blocker), 'abc')


def test_importing_the_fast_path_imports_no_cinder_oslo_or_sqlalchemy():
    code = ('import sys\n'
            'from ansible_collections.cinderlib.storage.plugins.module_utils import ansible_module, volume_state\n'
            'from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import quickcheck\n'
            'print(sorted(m for m in sys.modules if m.split(".")[0] in '
            '("cinder", "os_brick", "sqlalchemy") or m.startswith("oslo")))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '[]'
