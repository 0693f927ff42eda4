# Helpers for functional tests: real LVM, real processes, real ansible runs.
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='session')
def collections_path(tmp_path_factory) -> str:
    """A directory holding ansible_collections/cinderlib/storage -> this repo."""
    for entry in os.environ.get('ANSIBLE_COLLECTIONS_PATH', '').split(os.pathsep):
        if entry and (Path(entry) / 'ansible_collections' / 'cinderlib' / 'storage').resolve() == REPO:
            return entry
    root = tmp_path_factory.mktemp('collections')
    target = root / 'ansible_collections' / 'cinderlib'
    target.mkdir(parents=True)
    (target / 'storage').symlink_to(REPO)
    return str(root)


@pytest.fixture
def run_env(collections_path, lvm_backend_env) -> dict:
    env = dict(os.environ)
    env.update(lvm_backend_env['environment'])
    env['ANSIBLE_COLLECTIONS_PATH'] = collections_path
    env['PYTHONPATH'] = os.pathsep.join(p for p in (collections_path, env.get('PYTHONPATH')) if p)
    env['ANSIBLE_NOCOLOR'] = '1'
    env['ANSIBLE_LOCALHOST_WARNING'] = 'false'
    env['ANSIBLE_INVENTORY_UNPARSED_WARNING'] = 'false'
    return env


@pytest.fixture
def lvm_backend(lvm_backend_env) -> dict:
    """Driver options for the test VG, as the seed's LVM example gives them,
    plus what metadata-only LVM needs (no zeroing: nothing to write to)."""
    return dict(volume_driver='cinder.volume.drivers.lvm.LVMVolumeDriver',
                volume_group=lvm_backend_env['vg'], target_protocol='iscsi', target_helper='lioadm',
                volume_backend_name='lvm', lvm_type='default', volume_clear='none')
