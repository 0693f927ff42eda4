# The controllers of the CI matrix besides the harness's ansible-core 2.19: 2.20 (Python 3.12)
# and 2.21 (Python 3.13), each from the venv scripts/test.sh makes with the pins of
# requirements/ansible-core-<version>.txt. From each, on real LVM and through the warm worker:
# a playbook creates, extends, snapshots (where LVM is not metadata-only) and gathers
# cinderlib_backend_facts; the collection's inventory plugin lists the volume; a second
# playbook deletes. The managed node's Python is the project venv's (3.11), as in every play.
#
# Versions mixed on one node: playbooks from 2.19 and 2.21 on the same state store and worker
# directory. A worker is keyed by the code a task brings (worker.worker_key: Ansible's
# module_utils and the collection's, as the AnsiballZ payload holds them), so each
# ansible-core gets its own worker, running its own module_utils; neither is handed the
# other's modules, and neither task falls back (no warning).
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from functional_helpers import lv_names, plain

from ansible_collections.cinderlib.storage.plugins.module_utils import worker

REPO = Path(__file__).resolve().parents[2]
HARNESS = Path(sys.executable).parent
# ansible-core version -> the controller Python its venv is made with (scripts/test.sh).
CONTROLLERS = {'2.20': '3.12', '2.21': '3.13'}


def controller(version: str) -> Path:
    """The bin directory of the venv of ansible-core ``version`` (named by scripts/test.sh in
    CINDERLIB_ANSIBLE_CORE_<X_Y>_VENV); skips the test when there is none."""
    variable = 'CINDERLIB_ANSIBLE_CORE_%s_VENV' % version.replace('.', '_')
    build = Path(os.environ.get('CINDERLIB_BUILD', REPO / '.build'))
    venv = Path(os.environ.get(variable, build / ('venv-ansible-core-' + version)))
    if not (venv / 'bin/ansible-playbook').exists():
        pytest.skip('no ansible-core %s venv in %s: scripts/test.sh makes it when it finds Python %s (%s)'
                    % (version, venv, CONTROLLERS[version], variable))
    found = subprocess.run([str(venv / 'bin/python'), '-c', 'import sys; from ansible.release import __version__; '
                            'print(__version__, "%d.%d" % sys.version_info[:2])'],
                           capture_output=True, text=True, check=True).stdout.split()
    assert found[0].startswith(version + '.') and found[1] == CONTROLLERS[version], found
    return venv / 'bin'


@pytest.fixture
def env(run_env, worker_root) -> dict:
    return dict(run_env, CINDERLIB_WORKER_DIR=str(worker_root), CINDERLIB_WORKER='1')


@pytest.fixture
def task(tmp_path, lvm_backend) -> dict:
    return {'backend': lvm_backend, 'persistence': {'connection': 'sqlite:///%s' % (tmp_path / 'state.db')}}


def play(tasks: list, task: dict, **variables) -> list:
    return [{'hosts': 'localhost', 'connection': 'local', 'gather_facts': False,
             'vars': dict(variables, ansible_python_interpreter=sys.executable),
             'module_defaults': {'group/cinderlib.storage.cinderlib': task}, 'tasks': tasks}]


def run(command: list, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    # No fallback from the worker, no deprecation of anything the collection does.
    assert '[WARNING]' not in proc.stdout + proc.stderr, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert '[DEPRECATION WARNING]' not in proc.stdout + proc.stderr, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc


def run_playbook(bin_dir: Path, tmp_path: Path, name: str, playbook: list, env: dict) -> str:
    path = tmp_path / (name + '.yml')
    path.write_text(json.dumps(playbook))
    return run([str(bin_dir / 'ansible-playbook'), '-i', 'localhost,', str(path)], env).stdout


def worker_versions(root: Path) -> dict[str, dict]:
    """The ansible-core version each worker in ``root`` runs (its code directory holds the
    ``ansible`` package of the AnsiballZ payload, whose ``__init__`` names the version of the
    controller that built it) -> its status."""
    found = {}
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        init = (directory / 'code/ansible/__init__.py').read_text()
        [version] = re.findall(r'^__version__\s*=\s*[\'"]([^\'"]+)', init, re.MULTILINE)
        answer = worker.status(str(directory))
        assert answer is not None, 'no worker listens in %s' % directory
        assert version not in found, 'two workers for ansible-core %s' % version
        found[version] = answer['status']
    return found


@pytest.mark.parametrize('version', sorted(CONTROLLERS))
def test_a_playbook_and_the_inventory_from_a_newer_controller(version, tmp_path, env, task, worker_root,
                                                              lvm_backend_env):
    bin_dir = controller(version)
    snapshots = not lvm_backend_env['metadata_only']
    volume = 'core-%s' % version.replace('.', '-')
    created = play([
        {'cinderlib.storage.cinderlib_volume': {'name': volume, 'size': 1}, 'register': 'created'},
        {'cinderlib.storage.cinderlib_volume': {'name': volume, 'size': 2}, 'register': 'extended'},
        # This host's LVM may be metadata-only: no snapshots there (the vm scenario has them).
        {'cinderlib.storage.cinderlib_snapshot': {'volume': volume, 'name': 'snap'}, 'register': 'snapped',
         'when': 'snapshots | bool'},
        {'cinderlib.storage.cinderlib_backend_facts': {}},
        {'ansible.builtin.assert': {'that': [
            'created is changed and created.volume.size == 1',
            'extended is changed and extended.volume.size == 2',
            'snapped is skipped or (snapped is changed and snapped.snapshot.volume_size == 2)',
            # ansible_facts[...]: facts as top-level variables are deprecated from ansible-core 2.20 on.
            "(ansible_facts.cinderlib_backends.lvm.volumes | selectattr('name', 'equalto', '%s') | first).size == 2"
            % volume,
        ]}},
    ], task, snapshots=snapshots)
    out = run_playbook(bin_dir, tmp_path, 'create', created, env)
    assert 'failed=0' in out and ('changed=3' if snapshots else 'changed=2') in out, out[-2000:]

    # The inventory plugin, on this controller's Python (it needs SQLAlchemy there, not Cinder).
    config = tmp_path / 'volumes.cinderlib.yml'
    config.write_text('plugin: cinderlib.storage.cinderlib\npersistence:\n  connection: %s\n'
                      % task['persistence']['connection'])
    listing = plain(json.loads(run([str(bin_dir / 'ansible-inventory'), '-i', str(config), '--list'], env).stdout))
    hostvars = listing['_meta']['hostvars'][volume]
    assert hostvars['size'] == 2 and hostvars['backend'] == 'lvm' and hostvars['status'] == 'available', hostvars
    assert len(hostvars['snapshots']) == (1 if snapshots else 0), hostvars
    assert volume in listing['lvm']['hosts'], listing

    deleted = play(([{'cinderlib.storage.cinderlib_snapshot': {'volume': volume, 'name': 'snap', 'state': 'absent'}}]
                    if snapshots else [])
                   + [{'cinderlib.storage.cinderlib_volume': {'name': volume, 'state': 'absent'}}], task)
    out = run_playbook(bin_dir, tmp_path, 'delete', deleted, env)
    assert 'failed=0' in out and ('changed=2' if snapshots else 'changed=1') in out, out[-2000:]
    assert not [n for n in lv_names(lvm_backend_env['vg'], env) if n.startswith('volume-')]

    # One worker, running this controller's module_utils, served every task that changed something.
    [(running, status)] = list(worker_versions(worker_root).items())
    assert running.startswith(version + '.'), running
    assert status['served'] >= (5 if snapshots else 3) and len(status['zygotes']) == 1, status


def test_playbooks_from_2_19_and_2_21_on_one_node_each_get_their_own_worker(
        tmp_path, env, task, worker_root, lvm_backend_env):
    newer = controller('2.21')
    harness = subprocess.run([str(HARNESS / 'python'), '-c', 'from ansible.release import __version__; '
                              'print(__version__)'], capture_output=True, text=True, check=True).stdout.strip()
    assert harness.startswith('2.19.'), harness
    names = {'2.19': 'mix-old', '2.21': 'mix-new'}

    def create(bin_dir: Path, name: str) -> None:
        out = run_playbook(bin_dir, tmp_path, 'create-' + name, play(
            [{'cinderlib.storage.cinderlib_volume': {'name': name, 'size': 1}}], task), env)
        assert 'changed=1' in out and 'failed=0' in out, out[-2000:]

    create(HARNESS, names['2.19'])
    create(newer, names['2.21'])
    workers = worker_versions(worker_root)
    assert sorted(v.rsplit('.', 1)[0] for v in workers) == ['2.19', '2.21'], workers
    assert len({s['pid'] for s in workers.values()}) == 2, workers
    assert all(s['served'] == 1 for s in workers.values()), workers

    # Back to 2.19: its worker (still listening beside 2.21's) serves it; then each version
    # deletes the volume the other made, in the same state store.
    out = run_playbook(HARNESS, tmp_path, 'delete-old', play(
        [{'cinderlib.storage.cinderlib_volume': {'name': names['2.21'], 'state': 'absent'}}], task), env)
    assert 'changed=1' in out, out[-2000:]
    out = run_playbook(newer, tmp_path, 'delete-new', play(
        [{'cinderlib.storage.cinderlib_volume': {'name': names['2.19'], 'state': 'absent'}}], task), env)
    assert 'changed=1' in out, out[-2000:]
    again = worker_versions(worker_root)
    assert {v: s['pid'] for v, s in again.items()} == {v: s['pid'] for v, s in workers.items()}, again
    assert all(s['served'] == 2 for s in again.values()), again
    assert not [n for n in lv_names(lvm_backend_env['vg'], env) if n.startswith('volume-')]
