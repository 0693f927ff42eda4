# rbd_keyring_conf: Cinder dropped the option (OSSN-0085) but its RBDDriver still
# reads it "for cinderlib usage"; the library keeps it as cinderlib did, as a secret.
# No Ceph cluster and no rados/rbd modules here: the driver is made without
# do_setup, and its monitor lookup is stubbed for initialize_connection.
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import loader, secrets
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import Backend
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.dbapi import DriverDB
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    BackendConfigError,
    BackendInitError,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.schema import backend_schema, validate_config

pytestmark = pytest.mark.skipif(importlib.util.find_spec('cinder') is None,
                                reason='cinder is not installed for this interpreter')

RBD = 'cinder.volume.drivers.rbd.RBDDriver'
LVM = 'cinder.volume.drivers.lvm.LVMVolumeDriver'
KEYRING = '[client.cinder]\n\tkey = AQBkZXNpZ25lZC1mb3ItdGVzdHMtb25seQ==\n'
CONNECTOR = {'host': 'node-a', 'initiator': 'iqn.1993-08.org.debian:01:node-a', 'multipath': False}


@pytest.fixture
def keyring(tmp_path):
    path = tmp_path / 'ceph.client.cinder.keyring'
    path.write_text(KEYRING)
    return str(path)


def rbd_cfg(keyring: str, **more) -> dict:
    return dict(volume_driver=RBD, rbd_user='cinder', rbd_pool='volumes', rbd_keyring_conf=keyring, **more)


def in_fresh_python(code: str):
    # Listing imports every driver module: other tests keep a cleaner process.
    proc = subprocess.run([sys.executable, '-W', 'ignore', '-c', code], capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def runtime():
    return loader.CinderRuntime.get(Backend.settings)


def test_list_supported_drivers_lists_it_for_rbd_as_cinderlib_did():
    # cinderlib's functional test: exactly one rbd_keyring_conf, not deprecated;
    # v1 values are strings, v2 keeps types and gives the type as a dict.
    listed = in_fresh_python(
        'import json\n'
        'from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.drivers import '
        'list_supported_drivers\n'
        'def pick(version):\n'
        '    drivers = list_supported_drivers(version)\n'
        '    return {name: [o for o in drivers[name]["driver_options"]\n'
        '                   if o["dest"] in ("rbd_keyring_conf", "rbd_ceph_conf")]\n'
        '            for name in ("RBDDriver", "LVMVolumeDriver", "RBDISCSIDriver") if name in drivers}\n'
        'print(json.dumps({"1": pick(1), "2": pick(2)}, default=lambda o: getattr(o, "__name__", str(o))))\n')
    v1, v2 = listed['1'], listed['2']
    [keyring1] = [o for o in v1['RBDDriver'] if o['dest'] == 'rbd_keyring_conf']
    [keyring2] = [o for o in v2['RBDDriver'] if o['dest'] == 'rbd_keyring_conf']
    assert keyring1['deprecated_for_removal'] == 'False'
    assert keyring2['deprecated_for_removal'] is False
    # The shape of Cinder's own options of the driver.
    [ceph_conf1] = [o for o in v1['RBDDriver'] if o['dest'] == 'rbd_ceph_conf']
    [ceph_conf2] = [o for o in v2['RBDDriver'] if o['dest'] == 'rbd_ceph_conf']
    assert set(keyring1) == set(ceph_conf1) and all(isinstance(v, str) for v in keyring1.values())
    assert keyring1 | {'name': '', 'dest': '', 'help': ''} == ceph_conf1 | {'name': '', 'dest': '', 'help': ''}
    assert set(keyring2) == set(ceph_conf2) and keyring2['type'] == ceph_conf2['type']
    assert keyring2['type']['type_class'] == 'String' and keyring2['default'] == ''
    assert keyring1['help'] == keyring2['help'] == 'Path to the ceph keyring file'
    assert not [o for o in v1['LVMVolumeDriver'] if o['dest'] == 'rbd_keyring_conf']
    # The RBD iSCSI driver derives from RBDDriver and reads the same option.
    if 'RBDISCSIDriver' in v2:
        assert len([o for o in v2['RBDISCSIDriver'] if o['dest'] == 'rbd_keyring_conf']) == 1


def test_it_is_an_option_of_rbd_drivers_only_and_a_secret_string():
    options = loader.driver_options(RBD, 'Driver %r' % RBD)
    [opt] = [o for o in options if o.dest == 'rbd_keyring_conf']
    assert loader.is_kept_option(opt)
    prop = backend_schema(options, RBD)['properties']['rbd_keyring_conf']
    assert prop['type'] == 'string' and prop['x-secret'] is True and prop['writeOnly'] is True
    assert 'rbd_keyring_conf' in secrets.secret_keys(rbd_cfg('/k'), {o.dest: o for o in options})
    iscsi = importlib.import_module('cinder.volume.drivers.ceph.rbd_iscsi').RBDISCSIDriver
    assert [o.dest for o in loader.kept_options(iscsi)] == ['rbd_keyring_conf']
    assert 'rbd_keyring_conf' not in {o.dest for o in loader.driver_options(LVM, 'Driver %r' % LVM)}


def test_validation_accepts_it_refuses_a_typo_with_a_hint_and_a_non_string(keyring):
    options = loader.driver_options(RBD, 'Backend')
    schema = backend_schema(options, RBD)
    assert validate_config(dict(rbd_cfg(keyring), volume_backend_name='ceph'), options, schema) == []
    [typo] = validate_config({'volume_backend_name': 'ceph', 'volume_driver': RBD, 'rbd_keyring_cnf': keyring},
                             options, schema)
    assert typo.unknown and typo.message.startswith("unknown option 'rbd_keyring_cnf' (did you mean "
                                                    "'rbd_keyring_conf'")
    [wrong] = validate_config(dict(rbd_cfg(keyring), volume_backend_name='ceph', rbd_keyring_conf=['/a', '/b']),
                              options, schema)
    assert wrong.message == 'rbd_keyring_conf=********: must be a string'


def test_the_value_reaches_the_driver_which_reads_the_keyring(library, keyring):
    # unknown_options is 'error' by default.
    assert Backend.settings.unknown_options == 'error'
    rt = runtime()
    conf = rt.backend_configuration('ceph', rbd_cfg(keyring))
    assert conf.rbd_keyring_conf == keyring
    driver = rt.create_driver('ceph', conf, DriverDB(Backend.persistence, rt))
    assert type(driver).__name__ == 'RBDDriver'
    assert driver.keyring_file == keyring
    assert driver.keyring_data == KEYRING
    # Unset, it is the empty default, which the driver ignores.
    unset = rt.backend_configuration('ceph_unset', {'volume_driver': RBD})
    assert unset.rbd_keyring_conf == ''
    # Not added to Cinder's shared group, so other drivers still refuse it.
    with pytest.raises(BackendConfigError, match="unknown option 'rbd_keyring_conf'"):
        rt.backend_configuration('lvm_keyring', {'volume_driver': LVM, 'rbd_keyring_conf': keyring})


def test_a_typo_is_refused_when_configuring_the_backend(library, keyring):
    with pytest.raises(BackendConfigError, match="unknown option 'rbd_keyring_cnf' \\(did you mean "
                                                 "'rbd_keyring_conf'") as error:
        library.Backend('ceph_typo', volume_driver=RBD, rbd_keyring_cnf=keyring)
    assert keyring not in str(error.value)
    assert 'ceph_typo' not in library.Backend.backends


def test_a_failed_initialisation_names_neither_path_nor_content(library, keyring, monkeypatch):
    # What Cinder's own check says of an unreadable keyring, with the path in it.
    cinder_exception = importlib.import_module('cinder.exception')
    rbd_module = importlib.import_module('cinder.volume.drivers.rbd')

    def do_setup(self, context):
        raise cinder_exception.InvalidConfigurationValue(option='rbd_keyring_conf', value=self.keyring_file)

    monkeypatch.setattr(rbd_module.RBDDriver, 'do_setup', do_setup)
    with pytest.raises(BackendInitError) as error:
        library.Backend('ceph_fails', **rbd_cfg(keyring))
    message = str(error.value)
    assert message.startswith("Backend 'ceph_fails' could not be initialised by its driver RBDDriver")
    assert 'rbd_keyring_conf' in message
    assert keyring not in message and 'AQBk' not in message


@pytest.fixture
def rbd_backend(library, keyring, monkeypatch):
    """A Backend over Cinder's RBDDriver, without its set-up (which needs a
    cluster) and with a stubbed monitor lookup and volume creation."""
    monkeypatch.setattr(loader.CinderRuntime, 'start_driver', lambda self, name, driver: None)
    backend = library.Backend('ceph', **rbd_cfg(keyring))
    driver = backend.driver
    monkeypatch.setattr(driver, '_get_mon_addrs', lambda: (['192.0.2.7'], ['6789']))
    monkeypatch.setattr(driver, '_get_config_tuple', lambda: ('ceph', None, 'cinder', None))
    monkeypatch.setattr(driver, 'create_volume', lambda volume: {})
    return backend


def _stored_text() -> str:
    store = Backend.persistence
    found = []
    for kind in ('volume', 'snapshot', 'connection'):
        found.extend(store.get(kind))
    found.append(store.key_values())
    return json.dumps(found, default=str)


def test_serialized_output_holds_neither_path_nor_content_and_the_store_no_path(rbd_backend, keyring, monkeypatch):
    assert rbd_backend.driver.keyring_data == KEYRING
    volume = rbd_backend.create_volume(1, name='data')
    connection = volume.connect(CONNECTOR)
    # The consumer gets what it needs to attach, in every process: the record keeps the
    # connection info as the driver returned it, as cinderlib did ...
    assert connection.conn_info['data']['keyring'] == KEYRING
    assert connection.conn_info['data']['auth_username'] == 'cinder'
    [record] = Backend.persistence.get('connection')
    assert record['conn_info']['data']['keyring'] == KEYRING
    # ... while its output and the serialized forms never hold it, and the store never the path.
    for text in (rbd_backend.jsons, rbd_backend.dumps, json.dumps(rbd_backend.json), volume.dumps,
                 json.dumps(connection.to_dict(), default=str), json.dumps(rbd_backend.config)):
        assert keyring not in text and 'AQBk' not in text
    assert keyring not in _stored_text()
    assert rbd_backend.config == {'volume_backend_name': 'ceph'}
    # The value only with output_all_backend_info, as every credential.
    monkeypatch.setattr(Backend.settings, 'output_all_backend_info', True)
    assert rbd_backend.config['rbd_keyring_conf'] == keyring
    assert keyring in rbd_backend.dumps


def test_keyring_in_connection_info_is_a_secret():
    conn_info = {'driver_volume_type': 'rbd',
                 'data': {'name': 'volumes/volume-1', 'auth_username': 'cinder', 'keyring': KEYRING}}
    assert 'keyring' not in secrets.without_secrets(conn_info)['data']
    assert secrets.values(conn_info) == [KEYRING]
