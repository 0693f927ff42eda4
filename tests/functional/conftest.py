# Helpers for functional tests: real LVM, real processes, real ansible runs.
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
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


BIG_VG = 'cinderlib-test-big-vg'
BIG_VG_FILE = '/var/tmp/cinderlib-test/cinderlib-test-big-vg.img'
BIG_VG_SIZE = '48G'


@pytest.fixture(scope='module')
def lvm_big_vg(lvm_backend_env, collections_path) -> Iterator[str]:
    """A second volume group, 48 GiB on a sparse file, for tests that make many 1 GiB volumes
    (metadata-only LVM writes nothing to it). Made and removed by the lvm_loopback role; the
    session's lvm_backend_env lock keeps other test sessions away from it too."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_NOCOLOR='1')
    env['PATH'] = os.pathsep.join([env.get('PATH', ''), '/usr/local/sbin', '/usr/sbin', '/sbin'])
    playbook = [str(Path(sys.executable).parent / 'ansible-playbook'), '-i', 'localhost,',
                str(REPO / 'tests' / 'playbooks' / 'lvm_vg.yml')]

    def run(state: str) -> None:
        extra = {'lvm_vg_state': state, 'lvm_loopback_vg': BIG_VG, 'lvm_loopback_file': BIG_VG_FILE,
                 'lvm_loopback_size': BIG_VG_SIZE}
        proc = subprocess.run([*playbook, '-e', json.dumps(extra)], capture_output=True, text=True, env=env,
                              timeout=600, check=False)
        assert proc.returncode == 0, '\n'.join((proc.stdout + proc.stderr).splitlines()[-40:])

    run('fresh')
    try:
        yield BIG_VG
    finally:
        run('absent')
