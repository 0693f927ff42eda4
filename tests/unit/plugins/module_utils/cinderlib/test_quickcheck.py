"""The fast path's cheap parts: the sqlite3 reader of the state store, the
LVM look-up command, the RBD connection, and when a backend gets a probe at all."""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import subprocess
import sys
import types

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import loader, quickcheck
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import SQLStore

LVM = {'volume_backend_name': 'lvm', 'volume_driver': quickcheck.LVM_DRIVER, 'volume_group': 'vg1'}
RBD = {'volume_backend_name': 'ceph', 'volume_driver': quickcheck.RBD_DRIVER, 'rbd_pool': 'volumes',
       'rbd_user': 'cinder'}
HAS_CINDER = importlib.util.find_spec('cinder') is not None
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
    other = {'volume_backend_name': 'x', 'volume_driver': 'cinder.volume.drivers.nfs.NfsDriver'}
    quickcheck.remember_validated(str(tmp_path), quickcheck.config_fingerprint(other, 'error'))
    assert not quickcheck.has_probe(other)
    assert quickcheck.backend_probe(other, 'error', str(tmp_path), '', True) is None


def test_the_table_says_which_drivers_have_a_probe(tmp_path):
    assert quickcheck.PROBES == {quickcheck.LVM_DRIVER: quickcheck.lvm_volume_size,
                                 quickcheck.RBD_DRIVER: quickcheck.rbd_volume_size}
    assert quickcheck.has_probe(LVM) and quickcheck.has_probe(RBD)
    assert quickcheck.backend_probe(RBD, 'error', str(tmp_path), '', True) is None
    quickcheck.remember_validated(str(tmp_path), quickcheck.config_fingerprint(RBD, 'error'))
    assert callable(quickcheck.backend_probe(RBD, 'error', str(tmp_path), '', True))


def test_the_probe_asks_its_drivers_lookup_for_the_name_on_the_backend(tmp_path, monkeypatch):
    asked = []

    def lookup(config, volume_id, root_helper, im_root, environ):
        asked.append((config, volume_id, root_helper, im_root))
        return {'v1': 2.0, 'v2': None, 'n3': 1.0}[volume_id]

    monkeypatch.setitem(quickcheck.PROBES, quickcheck.RBD_DRIVER, lookup)
    quickcheck.remember_validated(str(tmp_path), quickcheck.config_fingerprint(RBD, 'error'))
    probe = quickcheck.backend_probe(RBD, 'error', str(tmp_path), 'sudo', False)
    assert probe({'id': 'v1', 'size': 2}) and probe({'id': 'v1', 'size': 1})
    assert not probe({'id': 'v1', 'size': 3})  # smaller than recorded: the full path looks
    assert not probe({'id': 'v2', 'size': 1})
    assert probe({'id': 'v3', '_name_id': 'n3', 'size': 1})  # named volume-<_name_id>, as objects.Volume.name
    assert [a[1:] for a in asked] == [('v1', 'sudo', False)] * 3 + [('v2', 'sudo', False), ('n3', 'sudo', False)]


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


# -- the RBD look-up --------------------------------------------------------------------------
@pytest.mark.parametrize('config, expected', [
    ({}, ({'rados_id': None, 'clustername': 'ceph', 'conffile': ''}, 'rbd', quickcheck.RBD_CONNECT_TIMEOUT)),
    ({'rbd_user': 'cinder', 'rbd_cluster_name': 'c2', 'rbd_ceph_conf': '/etc/ceph/c2.conf', 'rbd_pool': 'volumes',
      'rados_connect_timeout': 3},
     ({'rados_id': 'cinder', 'clustername': 'c2', 'conffile': '/etc/ceph/c2.conf'}, 'volumes', 3)),
    # None is "not set", as everywhere in a backend's options; strings as in a cinder.conf.
    ({'rbd_user': None, 'rbd_pool': None, 'rados_connect_timeout': '2'},
     ({'rados_id': None, 'clustername': 'ceph', 'conffile': ''}, 'rbd', 2)),
    # Never longer than the fast path's own limit, and a limit even where the driver sets none.
    ({'rados_connect_timeout': 60}, ({'rados_id': None, 'clustername': 'ceph', 'conffile': ''}, 'rbd', 5)),
    ({'rados_connect_timeout': 0}, ({'rados_id': None, 'clustername': 'ceph', 'conffile': ''}, 'rbd', 5)),
    ({'rados_connect_timeout': -1}, ({'rados_id': None, 'clustername': 'ceph', 'conffile': ''}, 'rbd', 5)),
    ({'rbd_pool': 12}, ({'rados_id': None, 'clustername': 'ceph', 'conffile': ''}, '12', 5)),
])
def test_rbd_connect_args(config, expected):
    assert tuple(quickcheck.rbd_connect_args(dict(config, volume_driver=quickcheck.RBD_DRIVER))) == expected


@pytest.mark.parametrize('config', [{'rados_connect_timeout': 'soon'}, {'rbd_pool': ''}, {'rbd_cluster_name': ''}])
def test_rbd_connect_args_it_cannot_use(config):
    with pytest.raises(quickcheck.Unavailable):
        quickcheck.rbd_connect_args(config)


@pytest.mark.skipif(not HAS_CINDER, reason='cinder is not installed for this interpreter')
def test_rbd_defaults_are_the_drivers():
    from cinder.volume.drivers import rbd as rbd_driver

    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.loader import CINDERLIB_KEPT_OPTIONS

    cinder_defaults = {opt.dest: opt.default for opt in rbd_driver.RBD_OPTS}
    kept = {args['name']: args['default'] for _cls, args in CINDERLIB_KEPT_OPTIONS[quickcheck.RBD_DRIVER]}
    assert quickcheck.RBD_DEFAULTS == {name: dict(cinder_defaults, **kept)[name] for name in quickcheck.RBD_DEFAULTS}


class _RecordingRados(types.SimpleNamespace):
    """The ``rados`` module as the driver sees it, recording the connection
    it makes: librados can't say what it was asked (a fake, only for that)."""

    class Error(Exception):
        pass

    def __init__(self):
        super().__init__(made=[])

    def Rados(self, **kwargs):  # noqa: N802 - the module's name
        recorder = self

        class Client:
            def __init__(self):
                self.kwargs, self.conf, self.pool = kwargs, {}, None
                recorder.made.append(self)

            def conf_set(self, option, value):
                self.conf[option] = value

            def connect(self):
                pass

            def open_ioctx(self, pool):
                self.pool = pool
                return types.SimpleNamespace(close=lambda: None)

            def shutdown(self):
                pass
        return Client()


@pytest.mark.skipif(not HAS_CINDER, reason='cinder is not installed for this interpreter')
@pytest.mark.parametrize('config', [
    {},
    {'rbd_user': 'cinder', 'rbd_cluster_name': 'c2', 'rbd_ceph_conf': '/etc/ceph/c2.conf', 'rbd_pool': 'volumes',
     'rados_connect_timeout': 3},
])
def test_rbd_connection_is_the_one_cinders_driver_makes(library, config):
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import Backend
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.dbapi import DriverDB

    config = dict(config, volume_driver=quickcheck.RBD_DRIVER)
    runtime = loader.CinderRuntime.get(Backend.settings)
    driver = runtime.create_driver('ceph', runtime.backend_configuration('ceph', config),
                                   DriverDB(Backend.persistence, runtime))
    driver.rados = _RecordingRados()
    driver._active_config = driver._get_target_config(None)  # do_setup's, without its FSID lookup
    driver._connect_to_rados()
    [client] = driver.rados.made
    expected = quickcheck.rbd_connect_args(config)
    assert client.kwargs == expected.rados_args and client.pool == expected.pool
    timeout = config.get('rados_connect_timeout')
    assert client.conf == ({option: str(timeout) for option in quickcheck.RADOS_TIMEOUT_OPTIONS} if timeout else {})


@pytest.mark.parametrize('content', [None, '', 'a directory'])
def test_a_keyring_the_driver_would_refuse_is_no_answer(tmp_path, content):
    # The driver's setup fails on an rbd_keyring_conf it can't read, or reads empty:
    # checked before the bindings are even imported.
    path = tmp_path / 'client.cinder.keyring'
    if content == 'a directory':
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    with pytest.raises(quickcheck.Unavailable, match='^rbd_keyring_conf'):
        quickcheck.rbd_volume_size(dict(RBD, rbd_keyring_conf=str(path)), VOL_ID)


def test_a_keyring_changed_after_validation_is_still_checked(tmp_path):
    # Credential-named values are masked in the fingerprint: another keyring path is the
    # same validated configuration, so the probe itself checks the file, as the driver does.
    keyring = tmp_path / 'client.cinder.keyring'
    keyring.write_text('[client.cinder]\n')
    validated = dict(RBD, rbd_keyring_conf=str(keyring))
    moved = dict(RBD, rbd_keyring_conf=str(tmp_path / 'elsewhere.keyring'))
    assert quickcheck.config_fingerprint(validated, 'error') == quickcheck.config_fingerprint(moved, 'error')
    quickcheck.remember_validated(str(tmp_path), quickcheck.config_fingerprint(validated, 'error'))
    probe = quickcheck.backend_probe(moved, 'error', str(tmp_path), '', True)
    with pytest.raises(quickcheck.Unavailable, match='^rbd_keyring_conf'):
        probe({'id': VOL_ID, 'size': 1})


def test_no_rbd_bindings_is_no_answer(monkeypatch):
    monkeypatch.setitem(sys.modules, 'rados', None)  # what an interpreter without python3-rados does
    with pytest.raises(quickcheck.Unavailable, match='bindings'):
        quickcheck.rbd_volume_size(RBD, VOL_ID)


@pytest.mark.skipif(importlib.util.find_spec('rados') is None, reason="no Ceph bindings (scripts/ceph.sh prepare)")
def test_a_ceph_conf_librados_cannot_read_is_no_answer(tmp_path):
    config = dict(RBD, rbd_ceph_conf=str(tmp_path / 'missing.conf'))
    with pytest.raises(quickcheck.Unavailable, match='^librados: ObjectNotFound'):
        quickcheck.rbd_volume_size(config, VOL_ID)


SECRET_TEXT = 'key = AQBkZXNpZ25lZC1mb3ItdGVzdHMtb25seQ=='


@pytest.fixture
def fake_ceph(monkeypatch):
    """``rados`` and ``rbd`` modules whose calls fail where a test says
    (``fail`` maps a call to the exception it raises), recording what was
    closed: for the errors a real cluster gives only by accident (a dropped
    connection, a permission error after connecting)."""
    state = types.SimpleNamespace(fail={}, closed=[], size=3 * 1024 ** 3)
    rados, rbd = types.ModuleType('rados'), types.ModuleType('rbd')

    class RadosError(Exception):
        pass

    class TimedOut(RadosError):
        pass

    class RbdError(Exception):
        pass

    class ImageNotFound(RbdError):
        pass

    class PermissionError_(RbdError):
        pass

    rados.Error, rados.TimedOut = RadosError, TimedOut
    rbd.Error, rbd.ImageNotFound, rbd.PermissionError = RbdError, ImageNotFound, PermissionError_

    def call(name):
        if name in state.fail:
            raise state.fail[name]

    class Ioctx:
        def close(self):
            state.closed.append('ioctx')

    class Cluster:
        def __init__(self, **kwargs):
            call('Rados')

        def conf_set(self, option, value):
            pass

        def connect(self):
            call('connect')

        def open_ioctx(self, pool):
            call('open_ioctx')
            return Ioctx()

        def shutdown(self):
            state.closed.append('cluster')

    class Image:
        def __init__(self, ioctx, name, read_only=False):
            assert read_only
            call('Image')

        def size(self):
            call('size')
            return state.size

        def close(self):
            state.closed.append('image')

    rados.Rados, rbd.Image = Cluster, Image
    monkeypatch.setitem(sys.modules, 'rados', rados)
    monkeypatch.setitem(sys.modules, 'rbd', rbd)
    state.rados, state.rbd = rados, rbd
    return state


def test_rbd_size_closes_what_it_opened(fake_ceph):
    assert quickcheck.rbd_volume_size(RBD, VOL_ID) == 3.0
    assert fake_ceph.closed == ['image', 'ioctx', 'cluster']
    fake_ceph.closed.clear()
    fake_ceph.fail['Image'] = fake_ceph.rbd.ImageNotFound(SECRET_TEXT)
    assert quickcheck.rbd_volume_size(RBD, VOL_ID) is None
    assert fake_ceph.closed == ['ioctx', 'cluster']


@pytest.mark.parametrize('call, error, opened', [
    ('Rados', 'rados.Error', []),
    ('connect', 'rados.TimedOut', ['cluster']),
    ('open_ioctx', 'rados.Error', ['cluster']),
    ('Image', 'rbd.PermissionError', ['ioctx', 'cluster']),
    ('size', 'rbd.Error', ['image', 'ioctx', 'cluster']),
])
def test_rbd_errors_but_a_missing_image_are_no_answer(fake_ceph, call, error, opened):
    module, name = error.split('.')
    fake_ceph.fail[call] = getattr(getattr(fake_ceph, module), name)(SECRET_TEXT)
    with pytest.raises(quickcheck.Unavailable) as raised:
        quickcheck.rbd_volume_size(RBD, VOL_ID)
    # The class only: librados messages may quote the configuration.
    assert name in str(raised.value) and 'AQBk' not in str(raised.value) and raised.value.__cause__ is None
    assert fake_ceph.closed == opened
