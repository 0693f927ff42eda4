# The drivers Cinder ships and one driver's options (cinderlib_drivers_info).
# Listing imports every driver module, which registers every driver's options
# in this process; it runs in a fresh interpreter so that other tests keep a
# backend_defaults group with only the drivers they imported.
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import drivers
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import BackendConfigError

pytestmark = pytest.mark.skipif(importlib.util.find_spec('cinder') is None,
                                reason='cinder is not installed for this interpreter')

LVM = 'cinder.volume.drivers.lvm.LVMVolumeDriver'


def in_fresh_python(code: str):
    proc = subprocess.run([sys.executable, '-W', 'ignore', '-c', code], capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_list_drivers_in_a_fresh_process():
    listed = in_fresh_python(
        'import json\n'
        'from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.drivers import list_drivers\n'
        'print(json.dumps(list_drivers()))\n')
    by_name = {d['class_name']: d for d in listed}
    assert by_name['LVMVolumeDriver'] == {
        'class_name': 'LVMVolumeDriver', 'fqn': LVM, 'version': by_name['LVMVolumeDriver']['version'],
        'supported': True, 'description': 'Executes commands relating to Volumes.'}
    assert by_name['XtremIOISCSIDriver']['fqn'] == 'cinder.volume.drivers.dell_emc.xtremio.XtremIOISCSIDriver'
    assert len(listed) > 50
    names = [d['class_name'].lower() for d in listed]
    assert names == sorted(names)


def test_list_supported_drivers_in_a_fresh_process():
    listed = in_fresh_python(
        'import json\n'
        'from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.drivers import '
        'list_supported_drivers\n'
        'print(json.dumps(sorted(list_supported_drivers())))\n')
    assert 'LVMVolumeDriver' in listed


def test_driver_info_by_class_name_and_by_path():
    by_name = drivers.driver_info('LVMVolumeDriver')
    by_path = drivers.driver_info(LVM)
    assert by_name['fqn'] == by_path['fqn'] == LVM
    options = {o['name']: o for o in by_name['options']}
    assert options['lvm_type']['choices'] == ['default', 'thin', 'auto'] and options['lvm_type']['driver_option']
    assert options['reserved_percentage']['minimum'] == 0 and options['reserved_percentage']['maximum'] == 100
    assert options['chap_password']['secret'] is True and options['chap_password']['default'] is None
    assert not options['volume_backend_name']['driver_option']
    assert by_name['schema']['title'] == 'LVMVolumeDriver backend configuration'
    assert by_name['schema']['properties']['volume_driver']['const'] == LVM
    json.dumps(by_name)


@pytest.mark.parametrize('driver, message', [
    ('LVMDriver', r"^Cinder has no volume driver class named 'LVMDriver' \(did you mean .*'LVMVolumeDriver'"),
    ('', r'^driver must be the class name \(LVMVolumeDriver\) or the class path'),
    ('SanDriver', r'^SanDriver \(in cinder\.volume\.drivers\.san\.san\) is not a volume driver registered with '
                  r'Cinder here'),
    ('cinder.volume.drivers.lvm.Nope', r"^Driver 'cinder\.volume\.drivers\.lvm\.Nope': module "
                                       r"cinder\.volume\.drivers\.lvm has no class 'Nope'"),
])
def test_driver_info_errors(driver, message):
    with pytest.raises(BackendConfigError, match=message):
        drivers.driver_info(driver)
