# Check mode writes nothing on the managed node (issue 29, point 5): every module of
# plugins/modules, run ad hoc with --check, creates or changes no file, directory or
# database: neither on a fresh node (no state store yet: no store file, no state or lock
# directory, no worker) nor next to an existing store (its file keeps its bytes and mtime,
# and no -wal/-shm appear, not even for a moment).
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from functional_helpers import run_adhoc

REPO = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (REPO / 'plugins' / 'modules').glob('cinderlib_*.py'))
# Where the library keeps its files for root (locks, capacity stamps, validated
# configurations, the default store): the modules have no option to move it.
DEFAULT_STATE_DIR = Path('/var/lib/cinderlib')
CONNECTOR = {'platform': 'x86_64', 'os_type': 'linux', 'ip': '192.0.2.10', 'host': 'consumer1',
             'multipath': False, 'initiator': 'iqn.1993-08.org.debian:01:consumer1'}


def tree(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` (itself included) with its type, size and mtime;
    {} when ``root`` does not exist."""
    found = {}
    if not root.exists():
        return found
    for directory, dirs, names in os.walk(root):
        for name in ['.', *dirs, *names]:
            path = os.path.normpath(os.path.join(directory, name))
            info = os.lstat(path)
            found[path] = (stat.S_IFMT(info.st_mode), info.st_size if not stat.S_ISDIR(info.st_mode) else 0,
                           info.st_mtime_ns)
    return found


# System calls that make, change or remove a path, as strace shows them (with --seccomp-bpf:
# only these are stopped at, so the run is barely slower).
TRACED = ('open', 'openat', 'openat2', 'creat', 'mkdir', 'mkdirat', 'rename', 'renameat', 'renameat2', 'unlink',
          'unlinkat', 'rmdir', 'link', 'linkat', 'symlink', 'symlinkat', 'truncate', 'mknod', 'mknodat')
_WRITE_FLAGS = re.compile(r'O_(WRONLY|RDWR|CREAT|TRUNC)')


def strace_works() -> bool:
    """Whether strace is there and may trace here (containers may forbid ptrace)."""
    if shutil.which('strace') is None:
        return False
    proc = subprocess.run(['strace', '-f', '-qq', '--seccomp-bpf', '-e', 'trace=openat', '-o', os.devnull, 'true'],
                          capture_output=True, check=False, timeout=60)
    return proc.returncode == 0


def run_traced(module: str, args: dict, env: dict, trace: Path, existing: dict) -> tuple[int, dict, str, list[str]]:
    """``run_adhoc`` in check mode under strace: (rc, result, output, the successful system
    calls of the run's processes that made, changed or removed something under the default
    state directory, whose paths were ``existing`` before). Other test sessions may use that
    directory meanwhile: strace sees this run's processes only.

    Opening for writing counts, but for the -wal and -shm files of a store that another
    process has open (SQLite reads a WAL database through them, read-only too)."""
    cmd = ['strace', '-f', '-qq', '--seccomp-bpf', '-e', 'trace=' + ','.join(TRACED), '-o', str(trace),
           str(Path(sys.executable).parent / 'ansible'), 'localhost', '-c', 'local',
           '-e', 'ansible_python_interpreter=%s' % sys.executable, '--check', '-m', 'cinderlib.storage.' + module,
           '-a', json.dumps(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    payload = proc.stdout.partition('=>')[2]
    try:
        result = json.loads(payload) if payload.strip() else {}
    except ValueError:
        result = {}
    writes = []
    for line in trace.read_text(errors='replace').splitlines():
        if '"%s' % DEFAULT_STATE_DIR not in line or re.search(r'= -1 E', line):
            continue
        call = line.split(None, 1)[1].split('(', 1)[0] if ' ' in line else ''
        if call.startswith(('open', 'creat')):
            path = line.split('"', 2)[1]
            if not _WRITE_FLAGS.search(line) or (path.endswith(('-wal', '-shm')) and path in existing
                                                 and 'O_TRUNC' not in line):
                continue
        writes.append(line)
    return proc.returncode, result, proc.stdout + proc.stderr, writes


def differences(before: dict, after: dict) -> dict[str, list[str]]:
    return {'created': sorted(set(after) - set(before)), 'removed': sorted(set(before) - set(after)),
            'changed': sorted(p for p in set(before) & set(after) if before[p] != after[p])}


@pytest.fixture
def node(tmp_path, run_env, lvm_backend) -> dict:
    """A fresh node's directories under ``tmp_path/node`` (home, XDG state, the store's
    directory, the workers' directory), the environment pointing there with the warm worker
    on, Ansible's own files outside it, and the task options of the LVM backend."""
    root = tmp_path / 'node'
    root.mkdir()
    outside = tmp_path / 'ansible'
    env = dict(run_env, HOME=str(root / 'home'), XDG_STATE_HOME=str(root / 'state'),
               CINDERLIB_WORKER='1', CINDERLIB_WORKER_DIR=str(root / 'workers'),
               ANSIBLE_HOME=str(outside), ANSIBLE_LOCAL_TEMP=str(outside / 'tmp'),
               ANSIBLE_REMOTE_TMP=str(outside / 'remote'))
    store = root / 'store' / 'state.db'
    return {'root': root, 'env': env, 'store': store,
            'opts': {'backend': lvm_backend, 'persistence': {'connection': 'sqlite:///%s' % store}}}


def tasks(opts: dict) -> list[tuple[str, dict]]:
    """Check-mode tasks covering every module: (module, arguments)."""
    found = [
        # A shared option at its default: ad hoc, '{}' would be taken for raw parameters.
        ('cinderlib_drivers_info', {'unknown_options': 'error'}),
        ('cinderlib_drivers_info', {'driver': 'LVMVolumeDriver'}),
        ('cinderlib_connector_facts', {'unknown_options': 'error'}),
        ('cinderlib_connector', {'node_id': 'node1', 'persistence': opts['persistence']}),
        ('cinderlib_connector', {'node_id': 'node1', 'state': 'absent', 'persistence': opts['persistence']}),
        ('cinderlib_backend_facts', opts),
        ('cinderlib_backend_facts', dict(opts, reconcile='report')),
        ('cinderlib_volume', dict(opts, name='data', size=1)),
        ('cinderlib_volume', dict(opts, name='data', size=2)),
        ('cinderlib_volume', dict(opts, name='other', size=1)),
        ('cinderlib_volume', dict(opts, volumes=[{'name': 'data', 'size': 1}, {'name': 'more', 'size': 1}])),
        ('cinderlib_snapshot', dict(opts, volume='data', name='snap')),
        ('cinderlib_connection', dict(opts, volume='data', connector=CONNECTOR)),
        ('cinderlib_connection', dict(opts, volume='data', connector='node1')),
        ('cinderlib_reconcile', opts),
        ('cinderlib_volume', dict(opts, name='data', state='absent')),
    ]
    assert {module for module, _args in found} == set(MODULES), 'a module of plugins/modules is not run here'
    return found


def run_all_in_check_mode(node: dict, watched: list[Path]) -> dict[str, str]:
    """Run every task in check mode, asserting after each that no watched tree changed
    and nothing was made under the default state directory; return the failed tasks'
    messages (by module and options)."""
    failed = {}
    traced = strace_works()
    for module, args in tasks(node['opts']):
        before = {root: tree(root) for root in watched}
        default_before = tree(DEFAULT_STATE_DIR)
        if traced:
            rc, result, out, writes = run_traced(module, args, node['env'], node['root'].parent / 'trace',
                                                 default_before)
            assert writes == [], (module, args, writes, out)
        else:
            rc, result, out = run_adhoc('cinderlib.storage.' + module, args, node['env'], check=True)
            # Without strace, a snapshot; another test session using the default state
            # directory meanwhile makes this fail.
            default = differences(default_before, tree(DEFAULT_STATE_DIR))
            assert (default['created'], default['changed']) == ([], []), (module, args, default, out)
        if rc != 0:
            failed['%s %s' % (module, ','.join(sorted(args)))] = result.get('msg') or out
        nothing = {'created': [], 'removed': [], 'changed': []}
        for root in watched:
            assert differences(before[root], tree(root)) == nothing, (module, args, out)
        assert 'Traceback' not in out, out
    return failed


def test_check_mode_on_a_fresh_node_creates_nothing(node):
    failed = run_all_in_check_mode(node, [node['root']])
    assert not node['store'].exists() and not node['store'].parent.exists()
    # Only the tasks that need the volume fail: there is none.
    assert sorted(failed) == ['cinderlib_connection backend,connector,persistence,volume',
                              'cinderlib_snapshot backend,name,persistence,volume'], failed
    assert all("'data'" in message and 'not known' in message for message in failed.values()), failed


def test_check_mode_leaves_an_existing_store_as_it_was(node):
    made = dict(node['opts'], name='data', size=1, worker=False)
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', made, node['env'])
    assert rc == 0 and result['changed'] is True, out
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_connector',
                                {'node_id': 'node1', 'persistence': node['opts']['persistence'], 'worker': False},
                                node['env'])
    assert rc == 0, out
    store = node['store']
    try:
        assert store.exists() and not Path(str(store) + '-wal').exists() and not Path(str(store) + '-shm').exists()
        data = store.read_bytes()
        assert run_all_in_check_mode(node, [node['root']]) == {}
        assert store.read_bytes() == data
        assert sorted(p.name for p in store.parent.iterdir()) == ['state.db']
    finally:
        # The session's volume group is small and shared by the tests that follow.
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume',
                                    dict(node['opts'], name='data', state='absent', worker=False), node['env'])
        assert rc == 0 and result['changed'] is True, out


def test_check_mode_writes_only_the_driver_log_it_is_asked_for(node):
    log = node['root'] / 'driver.log'
    before = tree(node['root'])
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume',
                                dict(node['opts'], name='data', size=1, driver_log_path=str(log)), node['env'],
                                check=True)
    assert rc == 0 and result['changed'] is True, out
    found = differences(before, tree(node['root']))
    assert found == {'created': [str(log)], 'removed': [], 'changed': [str(node['root'])]}, found
