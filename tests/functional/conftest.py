# Helpers for functional tests: real LVM, real processes, real ansible runs.
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ansible_collections.cinderlib.storage.tests.simulators import base
from ansible_collections.cinderlib.storage.tests.simulators.kaminario import KaminarioAPI
from ansible_collections.cinderlib.storage.tests.simulators.xtremio import XtremIOAPI

REPO = Path(__file__).resolve().parents[2]

# What an unchanged task on the fast path must not import (module_runner).
HEAVY = ('cinder', 'os_brick', 'sqlalchemy', 'oslo_config', 'oslo_concurrency', 'oslo_db', 'eventlet')


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


def ansible_env(collections_path: str, extra: dict | None = None) -> dict:
    """This process's environment, plus ``extra``, for library scripts and
    ansible runs: the collection on both paths, plain output."""
    env = dict(os.environ)
    env.update(extra or {})
    env['ANSIBLE_COLLECTIONS_PATH'] = collections_path
    env['PYTHONPATH'] = os.pathsep.join(p for p in (collections_path, env.get('PYTHONPATH')) if p)
    env['ANSIBLE_NOCOLOR'] = '1'
    env['ANSIBLE_LOCALHOST_WARNING'] = 'false'
    env['ANSIBLE_INVENTORY_UNPARSED_WARNING'] = 'false'
    return env


@pytest.fixture
def module_runner(tmp_path, collections_path):
    """``module_runner(env, module='cinderlib_volume')`` gives ``run(args,
    check_mode=False) -> (result, heavy imports)``: the module file run as
    Ansible runs it (a fresh interpreter, arguments in a file) with ``env``,
    under ``python -X importtime``; the heavy imports are the top-level names
    of ``HEAVY`` it imported (none on the fast path)."""
    modules = Path(collections_path) / 'ansible_collections/cinderlib/storage/plugins/modules'

    def runner(env: dict, module: str = 'cinderlib_volume'):
        def run(args: dict, check_mode: bool = False) -> tuple[dict, list[str]]:
            args_file = tmp_path / 'args.json'
            args_file.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': dict(args, _ansible_check_mode=check_mode)}))
            proc = subprocess.run([sys.executable, '-X', 'importtime', str(modules / (module + '.py')),
                                   str(args_file)], capture_output=True, text=True, env=env, timeout=300,
                                  check=False)
            result = json.loads(proc.stdout)
            imported = [line.rsplit('|', 1)[1].strip() for line in proc.stderr.splitlines()
                        if line.startswith('import time:') and '|' in line]
            return result, sorted({m.split('.')[0] for m in imported if m.split('.')[0] in HEAVY})
        return run
    return runner


@pytest.fixture
def run_env(collections_path, lvm_backend_env) -> dict:
    return ansible_env(collections_path, lvm_backend_env['environment'])


@pytest.fixture
def lvm_backend(lvm_backend_env) -> dict:
    """Driver options for the test VG, as the seed's LVM example gives them,
    plus what metadata-only LVM needs (no zeroing: nothing to write to)."""
    return dict(volume_driver='cinder.volume.drivers.lvm.LVMVolumeDriver',
                volume_group=lvm_backend_env['vg'], target_protocol='iscsi', target_helper='lioadm',
                volume_backend_name='lvm', lvm_type='default', volume_clear='none')


BIG_VG = 'cinderlib-test-big-vg'
BIG_VG_FILE = '/var/tmp/cinderlib-test/cinderlib-test-big-vg.img'
# CINDERLIB_TEST_BIG_VG_SIZE: more for a bigger run (bench/scale.sh).
BIG_VG_SIZE = os.environ.get('CINDERLIB_TEST_BIG_VG_SIZE', '48G')


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


def _has_module(python: str, name: str) -> bool:
    # A fresh interpreter: .pth files are read at start-up.
    return subprocess.run([python, '-c', 'import %s' % name], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope='session')
def ceph_cluster(tmp_path_factory, collections_path) -> Iterator[dict]:
    """A single-node Ceph cluster (scripts/ceph.sh: one mon, mgr and OSD on
    127.0.0.1, everything under one temporary directory), stopped by pid at
    the end. Before it, what a node needs for the RBD driver: Debian's Ceph
    packages and, through the runtime role, their Python bindings linked into
    this virtual environment. Gives scripts/ceph.sh's env values
    (CEPH_CONF, CEPH_POOL, CEPH_USER, CEPH_KEYRING) and ``backend``: RBD
    driver options for the cluster."""
    if os.geteuid() != 0 and not _has_module(sys.executable, 'rados'):
        pytest.skip("no Ceph packages or bindings, and installing them needs root: sudo scripts/ceph.sh prepare "
                    + sys.prefix)
    proc = subprocess.run([str(REPO / 'scripts/ceph.sh'), 'prepare', sys.prefix], capture_output=True, text=True,
                          env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path), timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    directory = tmp_path_factory.mktemp('ceph')
    proc = subprocess.run([str(REPO / 'scripts/ceph.sh'), 'start', str(directory)], capture_output=True, text=True,
                          timeout=300, check=False)
    try:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        values = dict(line.split('=', 1) for line in (directory / 'env').read_text().splitlines() if '=' in line)
        values['backend'] = dict(volume_backend_name='ceph', volume_driver='cinder.volume.drivers.rbd.RBDDriver',
                                 rbd_ceph_conf=values['CEPH_CONF'], rbd_pool=values['CEPH_POOL'],
                                 rbd_user=values['CEPH_USER'], rbd_keyring_conf=values['CEPH_KEYRING'],
                                 rbd_secret_uuid='b7d1c3a8-2c4e-4c64-9a26-3e1c8f5d9a11')
        yield values
    finally:
        subprocess.run([str(REPO / 'scripts/ceph.sh'), 'purge', str(directory)], capture_output=True, timeout=120,
                       check=False)


@pytest.fixture
def ceph_env(collections_path) -> dict:
    """The environment of library scripts and ansible runs on Ceph (no LVM)."""
    return ansible_env(collections_path)


@pytest.fixture
def worker_root(tmp_path) -> Path:
    """A directory of workers for this test only; every worker in it is stopped at the end."""
    root = tmp_path / 'workers'
    yield root
    for directory in root.glob('*') if root.exists() else []:
        pid_file = directory / 'pid'
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass


# -- the array API simulators (tests/simulators), served on 127.0.0.1 ---------------
def _serve(api, tmp_path):
    server = base.start(api, tmp_path / 'cert')
    try:
        yield api, server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def xtremio(tmp_path):
    yield from _serve(XtremIOAPI('xtremio_user', 'xtremio_password'), tmp_path)


@pytest.fixture
def xtremio_chap(tmp_path):
    """XtremIO with CHAP required (login and discovery)."""
    yield from _serve(XtremIOAPI('xtremio_user', 'xtremio_password', chap=True), tmp_path)


@pytest.fixture
def kaminario(tmp_path):
    yield from _serve(KaminarioAPI('kaminario_user', 'kaminario_password'), tmp_path)
