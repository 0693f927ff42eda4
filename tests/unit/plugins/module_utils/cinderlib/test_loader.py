# The driver loader with real Cinder option definitions and driver classes.
# No array is reachable here: these tests stop before or at the driver's
# set-up, which is exactly where a bad configuration must be caught.
from __future__ import annotations

import importlib.util

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import loader
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import Backend
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.dbapi import DriverDB
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    BackendConfigError,
    BackendInitError,
    MissingDependencyError,
    SetupError,
)

pytestmark = pytest.mark.skipif(importlib.util.find_spec('cinder') is None,
                                reason='cinder is not installed for this interpreter')

LVM = 'cinder.volume.drivers.lvm.LVMVolumeDriver'
XTREMIO = dict(volume_driver='cinder.volume.drivers.dell_emc.xtremio.XtremIOISCSIDriver',
               san_ip='127.0.10.1', xtremio_cluster_name='xtremio_cluster', san_login='xtremio_user',
               san_password='xtremio_password')
KAMINARIO = dict(volume_driver='cinder.volume.drivers.kaminario.kaminario_iscsi.KaminarioISCSIDriver',
                 san_ip='127.0.10.2', san_login='kaminario_user', san_password='kaminario_password')


def runtime():
    return loader.CinderRuntime.get(Backend.settings)


def driver_for(name, cfg):
    """The driver object as the loader builds it, before its set-up."""
    rt = runtime()
    conf = rt.backend_configuration(name, dict(cfg, volume_backend_name=name))
    return rt.create_driver(name, conf, DriverDB(Backend.persistence, rt))


def test_setup_twice_raises(library):
    with pytest.raises(SetupError, match='Already setup'):
        library.setup()


def test_importing_the_library_does_not_import_cinder():
    import subprocess
    import sys
    code = ('import sys; from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib; '
            'cinderlib.setup(persistence_config={"storage": "memory"}); '
            'print(sorted(m for m in sys.modules if m.split(".")[0] in ("cinder", "os_brick", "oslo_config")))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '[]'


@pytest.mark.parametrize('name, cfg', [('xtremio', XTREMIO), ('kaminario_iscsi', KAMINARIO)])
def test_seed_array_config_reaches_the_driver(library, name, cfg):
    driver = driver_for(name, cfg)
    assert type(driver).__name__ == cfg['volume_driver'].rsplit('.', 1)[1]
    conf = driver.configuration
    for key, value in cfg.items():
        assert conf.safe_get(key) == value, key
    assert conf.safe_get('volume_backend_name') == name
    assert driver.host.endswith('@' + name)


def test_options_of_one_backend_do_not_leak_into_another(library):
    first = driver_for('xio_a', XTREMIO)
    second = driver_for('xio_b', dict(XTREMIO, san_ip='127.0.0.9'))
    assert first.configuration.san_ip == '127.0.10.1'
    assert second.configuration.san_ip == '127.0.0.9'


def test_unset_options_fall_back_to_cinder_defaults(library):
    driver = driver_for('xio_defaults', XTREMIO)
    assert driver.configuration.safe_get('driver_ssl_cert_verify') is False
    assert driver.configuration.safe_get('reserved_percentage') == 0


@pytest.mark.parametrize('cfg, message', [
    ({'volume_driver': LVM, 'volume_grup': 'x'}, "unknown option 'volume_grup' \\(did you mean 'volume_group'"),
    ({'volume_driver': LVM, 'target_helper': 'iscsiadm'}, "target_helper='iscsiadm'"),
    ({'volume_driver': LVM, 'volume_clear_size': 'big'}, "volume_clear_size='big'"),
    ({'volume_driver': LVM, 'reserved_percentage': 101}, 'reserved_percentage=101'),
    ({}, "needs 'volume_driver'"),
    ({'volume_driver': ''}, "needs 'volume_driver'"),
    ({'volume_driver': 'lvm'}, "Backend 'bad': volume_driver: Cinder has no volume driver class named 'lvm'"),
    ({'volume_driver': 'LVMDriver'}, "Cinder has no volume driver class named 'LVMDriver' \\(did you mean "),
    ({'volume_driver': 'cinder.volume.drivers.lvm.LVMDriver'},
     "module cinder.volume.drivers.lvm has no class 'LVMDriver' \\(did you mean 'LVMVolumeDriver'"),
    ({'volume_driver': 'cinder.volume.drivers.nosuch.Driver'},
     "volume_driver 'cinder.volume.drivers.nosuch.Driver' names no existing module"),
])
def test_bad_configuration_is_refused_before_the_driver_runs(library, cfg, message):
    with pytest.raises((BackendConfigError, MissingDependencyError), match=message):
        library.Backend('bad', **cfg)
    assert 'bad' not in library.Backend.backends


def test_every_problem_is_reported_at_once(library):
    with pytest.raises(BackendConfigError) as error:
        library.Backend('bad2', volume_driver=LVM, volume_grup='x', target_helper='nope', lvm_typ='thin')
    assert len(error.value.problems) == 3


def test_secret_values_are_not_echoed_in_validation_errors(library):
    with pytest.raises(BackendConfigError) as error:
        library.Backend('bad3', volume_driver=LVM, reserved_percentage='s3cr3tpw', san_password='s3cr3tpw')
    assert 's3cr3tpw' not in str(error.value)


def test_unknown_options_can_be_only_warned_about(tmp_path):
    from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
    Backend.backends, Backend.global_initialization = {}, False
    cinderlib.setup(persistence_config={'storage': 'memory'}, unknown_options='warn')
    try:
        conf = runtime().backend_configuration('warned', {'volume_driver': LVM, 'volume_grup': 'x'},
                                               Backend.settings.unknown_options)
        [warning] = conf.unknown_option_warnings
        assert warning.startswith("unknown option 'volume_grup' (did you mean 'volume_group'")
    finally:
        Backend.backends, Backend.global_initialization, Backend.settings = {}, False, None


def test_renamed_options_are_mapped_with_a_warning():
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import rename_legacy_options
    cfg = rename_legacy_options({'iscsi_helper': 'lioadm', 'iscsi_protocol': 'iscsi'})
    assert cfg['target_helper'] == 'lioadm' and cfg['target_protocol'] == 'iscsi'
    assert "option 'iscsi_helper' is the old name of 'target_helper'; use 'target_helper'." in cfg['__warnings__']
    with pytest.raises(BackendConfigError, match="both set"):
        rename_legacy_options({'iscsi_helper': 'lioadm', 'target_helper': 'tgtadm'})


def test_backend_name_clashing_with_a_cinder_section(library):
    with pytest.raises(BackendConfigError, match="Backend name 'database' clashes"):
        library.Backend('database', volume_driver=LVM)


def test_unreachable_array_names_backend_and_cause_without_the_password(library):
    # Nothing listens on 127.0.0.1:443 here.
    with pytest.raises(BackendInitError) as error:
        library.Backend('xtremio', **dict(XTREMIO, san_ip='127.0.0.1'))
    message = str(error.value)
    assert message.startswith("Backend 'xtremio' could not be initialised by its driver XtremIOISCSIDriver")
    assert 'Connection refused' in message
    assert 'xtremio_password' not in message
    assert 'xtremio' not in library.Backend.backends


def test_missing_driver_requirement_names_the_package():
    # krest is installed for the simulator tests; a child process where
    # importing it fails (as when it is not installed) shows the message.
    import subprocess
    import sys
    code = ('import sys; sys.modules["krest"] = None\n'
            'from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib\n'
            'from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import '
            'MissingDependencyError\n'
            'cinderlib.setup(persistence_config={"storage": "memory"}, file_locks_path=sys.argv[1])\n'
            'try:\n'
            '    cinderlib.Backend("kaminario_iscsi", **%r)\n'
            'except MissingDependencyError as error:\n'
            '    print(error.package); print(error)\n' % (KAMINARIO,))
    import tempfile
    with tempfile.TemporaryDirectory() as locks:
        out = subprocess.run([sys.executable, '-c', code, locks], capture_output=True, text=True, check=False,
                             timeout=300)
    package, message = (out.stdout.splitlines() + ['', ''])[:2]
    assert package == 'krest', out.stdout + out.stderr
    assert "needs the Python package 'krest'" in message
    assert 'kaminario_password' not in out.stdout + out.stderr


def test_drivers_get_the_state_store_db_api(library):
    # Cinder's BaseVD sets self.db to Cinder's own DB API whatever it is
    # given; the loader must hand the driver the state store's instead.
    driver = driver_for('xio_db', XTREMIO)
    assert isinstance(driver.db, DriverDB)
    assert driver.driver_utils._db is driver.db
    assert driver.db.image_volume_cache_get_by_volume_id(None, 'any-volume') is None


def test_failed_backend_can_be_configured_again(library):
    with pytest.raises(BackendInitError):
        library.Backend('retry', **dict(XTREMIO, san_ip='127.0.0.1'))
    # Same name, other values: the group is reused, not refused as a clash.
    driver = driver_for('retry', dict(XTREMIO, san_ip='127.0.0.2'))
    assert driver.configuration.san_ip == '127.0.0.2'


def test_legacy_stats_become_one_pool():
    backend = object.__new__(Backend)
    backend._driver_cfg = {'volume_backend_name': 'legacy'}
    stats = backend._transform_legacy_stats({'driver_version': '1', 'vendor_name': 'v', 'free_capacity_gb': 3,
                                             'total_capacity_gb': 5, 'volume_backend_name': 'legacy'})
    assert stats['pools'] == [{'pool_name': 'legacy', 'free_capacity_gb': 3, 'total_capacity_gb': 5}]
    assert stats['driver_version'] == '1'
    with_pools = {'pools': [{'pool_name': 'p1'}]}
    assert backend._transform_legacy_stats(with_pools) == with_pools
