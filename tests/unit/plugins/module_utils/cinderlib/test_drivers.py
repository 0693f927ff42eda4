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
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    BackendConfigError,
    UnknownDriver,
)

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


# A backend's volume_driver given as a class name alone (drivers.resolve_driver_path).
@pytest.mark.parametrize('value', [LVM, None, '', 42, 'cinder.volume.drivers.nosuch.Driver'])
def test_a_class_path_or_no_name_is_left_to_the_loader(value):
    assert drivers.resolve_driver_path(value, "Backend 'lvm'") == value


def test_a_class_name_alone_resolves_to_its_class_path():
    assert drivers.resolve_driver_path('LVMVolumeDriver', "Backend 'lvm'") == LVM
    assert drivers.resolve_driver_path(' LVMVolumeDriver ', "Backend 'lvm'") == LVM


@pytest.mark.parametrize('name, error, message', [
    ('NexentaISCSIDriver', BackendConfigError,
     r"^Backend 'lvm': volume_driver: Several Cinder drivers are named NexentaISCSIDriver: "
     r"cinder\.volume\.drivers\.nexenta\.\S+\.NexentaISCSIDriver, cinder\.volume\.drivers\.nexenta\.\S+"
     r"\.NexentaISCSIDriver; give the class path of the one meant\.$"),
    ('LVMDriver', UnknownDriver,
     r"^Backend 'lvm': volume_driver: Cinder has no volume driver class named 'LVMDriver' \(did you mean "
     r".*'LVMVolumeDriver'.*\); give the class name \(such as LVMVolumeDriver\) or the class path of one of "
     r"the volume drivers Cinder has\.$"),
    ('lvm', UnknownDriver, r"^Backend 'lvm': volume_driver: Cinder has no volume driver class named 'lvm'"),
])
def test_a_class_name_that_is_no_single_driver_is_refused(name, error, message):
    with pytest.raises(error, match=message):
        drivers.resolve_driver_path(name, "Backend 'lvm'")
