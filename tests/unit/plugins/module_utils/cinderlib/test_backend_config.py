# Backend definitions from YAML files and cinder.conf.
from __future__ import annotations

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import backend_config
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import BackendConfigError

CINDERLIB_YAML = """\
# cinderlib's functional-test format
logs: false
venv_sudo: false
size_precision: 0
backends:
  - volume_backend_name: lvm
    volume_driver: cinder.volume.drivers.lvm.LVMVolumeDriver
    volume_group: cinder-volumes
    target_protocol: iscsi
    target_helper: lioadm
  - volume_backend_name: ceph
    volume_driver: cinder.volume.drivers.rbd.RBDDriver
    rbd_user: admin
"""

CINDER_CONF = """\
[DEFAULT]
enabled_backends = lvmdriver-1, xtremio
debug = True
volume_clear = zero

[backend_defaults]
volume_clear = none

[lvmdriver-1]
volume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver
volume_group = stack-volumes-lvmdriver-1
volume_backend_name = lvm

[xtremio]
volume_driver = cinder.volume.drivers.dell_emc.xtremio.XtremIOISCSIDriver
san_ip = 127.0.10.1
san_password = secret
"""


def write(tmp_path, text, name='backends.yml'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_cinderlib_yaml(tmp_path):
    backends = backend_config.load_backends(write(tmp_path, CINDERLIB_YAML))
    assert sorted(backends) == ['ceph', 'lvm']
    assert backends['lvm']['volume_group'] == 'cinder-volumes'


def test_cinder_conf(tmp_path):
    backends = backend_config.load_backends(write(tmp_path, CINDER_CONF, 'cinder.conf'))
    assert sorted(backends) == ['lvm', 'xtremio']
    assert backends['lvm'] == {'volume_driver': 'cinder.volume.drivers.lvm.LVMVolumeDriver',
                               'volume_group': 'stack-volumes-lvmdriver-1', 'volume_backend_name': 'lvm',
                               'volume_clear': 'none'}
    # A section without volume_backend_name is named after the section, as Cinder does.
    assert backends['xtremio']['volume_backend_name'] == 'xtremio'
    assert 'debug' not in backends['xtremio']


def test_resolve_by_name_and_inline(tmp_path):
    path = write(tmp_path, CINDERLIB_YAML)
    assert backend_config.resolve_backend('ceph', path)['rbd_user'] == 'admin'
    inline = {'volume_backend_name': 'x', 'volume_driver': 'a.B'}
    assert backend_config.resolve_backend(inline, None) == inline


@pytest.mark.parametrize('text, name, message', [
    ('backends: {}\n', 'b.yml', "must be a YAML mapping with a 'backends:' list"),
    ('- a\n', 'b.yml', "must be a YAML mapping with a 'backends:' list"),
    ('backends: [\n', 'b.yml', 'is not valid YAML'),
    ('backends:\n  - volume_driver: x\n', 'b.yml', r"backends\[0\] must be a mapping with a 'volume_backend_name'"),
    ('backends:\n  - {volume_backend_name: a}\n  - {volume_backend_name: a}\n', 'b.yml', "defines backend 'a' twice"),
    ('[DEFAULT]\ndebug = true\n', 'cinder.conf', 'without enabled_backends'),
    ('[DEFAULT]\nenabled_backends = lvm\n', 'cinder.conf', r'enables backend section \[lvm\], which is missing'),
])
def test_bad_files(tmp_path, text, name, message):
    with pytest.raises(BackendConfigError, match=message):
        backend_config.load_backends(write(tmp_path, text, name))


def test_unknown_backend_lists_the_known_ones(tmp_path):
    with pytest.raises(BackendConfigError, match="Backend 'lvm2' is not defined in .*; it defines: ceph, lvm."):
        backend_config.resolve_backend('lvm2', write(tmp_path, CINDERLIB_YAML))


def test_missing_file(tmp_path):
    with pytest.raises(BackendConfigError, match="Can't read config_file .*missing.yml: No such file"):
        backend_config.resolve_backend('lvm', str(tmp_path / 'missing.yml'))


@pytest.mark.parametrize('backend, message', [
    ({'volume_driver': 'x'}, "needs 'volume_backend_name'"),
    ('', 'backend must be a dict of driver options or the name of a backend'),
    (['lvm'], 'backend must be a dict of driver options or the name of a backend'),
])
def test_bad_backend_values(backend, message):
    with pytest.raises(BackendConfigError, match=message):
        backend_config.resolve_backend(backend, None)


def test_a_name_without_any_config_file(monkeypatch):
    monkeypatch.setattr(backend_config, 'default_config_file', lambda: None)
    with pytest.raises(BackendConfigError, match="backend 'lvm' is a name, but there is no config_file"):
        backend_config.resolve_backend('lvm', None)
