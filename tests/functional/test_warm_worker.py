# The warm worker (module_utils/worker.py, worker_server.py) on real LVM: started by the
# first task that needs Cinder, one process for a playbook of many tasks, a backend
# initialised again when its configuration changes, another worker for other code (and the
# directories of those gone removed), idle exit, a stale socket, a foreign uid refused, a
# task killed in the worker (then the next task and reconcile), a hung driver call bounded
# by worker_timeout, and worker: false.
# Results, warnings, check mode and diff are compared with runs without the worker.
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from functional_helpers import lv_names, run_adhoc

from ansible_collections.cinderlib.storage.plugins.module_utils import worker

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def wait_until(predicate, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail('timed out waiting until %s' % what)
        time.sleep(0.2)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too.
    with open('/proc/%d/stat' % pid, encoding='ascii') as handle:
        return handle.read().rsplit(')', 1)[1].split()[0] != 'Z'


@pytest.fixture
def env(run_env, worker_root) -> dict:
    return dict(run_env, CINDERLIB_WORKER_DIR=str(worker_root), CINDERLIB_WORKER='1')


@pytest.fixture
def task(tmp_path, lvm_backend) -> dict:
    return {'backend': lvm_backend, 'persistence': {'connection': 'sqlite:///%s' % (tmp_path / 'state.db')}}


def run_module(collections: str | Path, args: dict, env: dict, module: str = 'cinderlib_volume',
               check_mode: bool = False, diff: bool = False) -> dict:
    """A module file run as a task's process (arguments in a file), the collection from ``collections``."""
    path = Path(collections) / 'ansible_collections/cinderlib/storage/plugins/modules' / (module + '.py')
    args_file = Path(env['CINDERLIB_WORKER_DIR']).parent / 'args.json'
    args_file.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': dict(args, _ansible_check_mode=check_mode,
                                                                 _ansible_diff=diff)}))
    run_env = dict(env, PYTHONPATH=str(collections))
    proc = subprocess.run([sys.executable, str(path), str(args_file)], capture_output=True, text=True,
                          env=run_env, timeout=600, check=False)
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)


def workers(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


def the_worker(root: Path) -> tuple[Path, dict]:
    [directory] = workers(root)
    status = worker.status(str(directory))
    assert status is not None, 'no worker listens in %s' % directory
    return directory, status['status']


def run_a_playbook_in_one_worker(controller: Path, tmp_path, env, worker_root, task, vg: str) -> dict:
    """Through ``controller``'s ansible-playbook (AnsiballZ payloads): creates, unchanged
    re-runs and deletes; one worker serves every task that needs Cinder."""
    names = ['wk-%d' % n for n in range(3)]
    playbook = tmp_path / 'play.yml'
    playbook.write_text(json.dumps([{
        'hosts': 'localhost', 'connection': 'local', 'gather_facts': False,
        'vars': {'ansible_python_interpreter': sys.executable},
        'module_defaults': {'group/cinderlib.storage.cinderlib': task},
        'tasks': [{'cinderlib.storage.cinderlib_volume': {'name': name, 'size': 1}, 'register': 'created_' + str(n)}
                  for n, name in enumerate(names)]
        + [{'cinderlib.storage.cinderlib_volume': {'name': name, 'size': 1}} for name in names]
        + [{'cinderlib.storage.cinderlib_volume': {'name': name, 'state': 'absent'}} for name in names],
    }]))
    proc = subprocess.run([str(controller / 'ansible-playbook'), '-i', 'localhost,', str(playbook)],
                          capture_output=True, text=True, env=env, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert 'changed=6' in proc.stdout and 'failed=0' in proc.stdout, proc.stdout[-2000:]
    assert '[WARNING]' not in proc.stdout + proc.stderr
    directory, status = the_worker(worker_root)
    # The 6 changing tasks ran in the worker; the 3 unchanged ones took the fast path.
    assert status['served'] == 6, status
    assert len(status['zygotes']) == 1, status
    assert oct(directory.stat().st_mode & 0o777) == '0o700'
    assert oct(worker_root.stat().st_mode & 0o777) == '0o700'
    assert not [n for n in lv_names(vg, env) if n.startswith('volume-')]
    return status


def test_a_playbook_runs_in_one_worker_and_a_changed_backend_is_started_again(
        tmp_path, env, worker_root, task, lvm_backend_env, collections_path):
    status = run_a_playbook_in_one_worker(BIN, tmp_path, env, worker_root, task, lvm_backend_env['vg'])

    # Another configuration of the backend: the same worker, a backend started again for it.
    changed = dict(task, backend=dict(task['backend'], reserved_percentage=1))
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(changed, name='wk-c', size=1), env)
    assert rc == 0 and result['changed'] is True, out
    _directory, again = the_worker(worker_root)
    assert again['pid'] == status['pid'] and again['served'] == 7
    assert len(again['zygotes']) == 2 and status['zygotes'][0] in again['zygotes'], again
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(changed, name='wk-c', state='absent'), env)
    assert rc == 0 and result['changed'] is True, out
    # A module run from a checkout (not an AnsiballZ payload) is other code: another worker.
    assert run_module(collections_path, dict(task, name='wk-d', size=1), env)['changed'] is True
    assert len(workers(worker_root)) == 2
    assert run_module(collections_path, dict(task, name='wk-d', state='absent'), env)['changed'] is True
    assert not [n for n in lv_names(lvm_backend_env['vg'], env) if n.startswith('volume-')]


def normalized(result: dict) -> dict:
    text = json.dumps(result, sort_keys=True)
    for key in ('id', 'created_at', 'updated_at', 'provider_location'):
        for item in _values(result, key):
            if isinstance(item, str) and item:
                text = text.replace(item, '<%s>' % key)
    return json.loads(text)


def _values(value, key):
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key:
                yield v
            yield from _values(v, key)
    elif isinstance(value, list):
        for v in value:
            yield from _values(v, key)


def test_results_warnings_check_mode_and_diff_are_those_of_a_run_without_the_worker(
        tmp_path, env, collections_path, task, worker_root):
    # iscsi_helper: an old option name, which warns; size 1.5G is rounded up, with a warning.
    legacy = dict(task['backend'])
    legacy['iscsi_helper'] = legacy.pop('target_helper')
    results = {}
    for mode in ('worker', 'no-worker'):
        store = {'connection': 'sqlite:///%s' % (tmp_path / ('%s.db' % mode))}
        base = dict(task, backend=legacy, persistence=store, worker=mode == 'worker')
        steps = [
            (dict(base, name='eq', size='1.5G'), True, True),
            (dict(base, name='eq', size='1.5G'), False, True),
            (dict(base, name='eq', size=2), True, True),
            (dict(base, name='eq', size=2), False, True),
            (dict(base, name='eq', state='absent'), True, True),
            (dict(base, name='eq', state='absent'), False, False),
        ]
        results[mode] = [normalized(run_module(collections_path, args, env, check_mode=check, diff=diff))
                         for args, check, diff in steps]
    for with_worker, without in zip(results['worker'], results['no-worker'], strict=True):
        for result in (with_worker, without):
            for option in ('worker', 'persistence'):
                result.get('invocation', {}).get('module_args', {}).pop(option, None)
        assert with_worker == without
    assert any(r.get('warnings') for r in results['worker'])
    # Tasks that changed something ran in the worker; check-mode tasks run in their own
    # process (a worker is files on the node, and check mode makes none).
    _directory, status = the_worker(worker_root)
    assert status['served'] >= 2


def test_idle_exit_and_a_stale_socket(env, collections_path, task, worker_root):
    result = run_module(collections_path, dict(task, name='idle', size=1, worker_idle_timeout=1), env)
    assert result['changed'] is True, result
    directory, status = the_worker(worker_root)
    wait_until(lambda: not alive(status['pid']), 'the idle worker exits')
    assert not (directory / 'sock').exists()

    # A socket file nobody listens on (a worker killed, a reboot): the next task starts a new worker.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(directory / 'sock'))
    stale.close()
    result = run_module(collections_path, dict(task, name='idle', state='absent'), env)
    assert result['changed'] is True and 'warnings' not in result, result
    _directory, again = the_worker(worker_root)
    assert again['pid'] != status['pid']


def another_version(tmp_path: Path) -> Path:
    """A copy of the collection with one module_utils file changed: another version."""
    other = tmp_path / 'other'
    target = other / 'ansible_collections' / 'cinderlib' / 'storage'
    shutil.copytree(REPO / 'plugins', target / 'plugins', ignore=shutil.ignore_patterns('__pycache__'))
    changed = target / 'plugins' / 'module_utils' / 'volume_state.py'
    changed.write_text(changed.read_text() + '\n# another version\n')
    return other


def test_other_code_gets_another_worker(tmp_path, env, collections_path, task, worker_root):
    run_module(collections_path, dict(task, name='v1', size=1), env)
    other = another_version(tmp_path)
    result = run_module(other, dict(task, name='v1', state='absent'), env)
    assert result['changed'] is True, result
    first, second = workers(worker_root)
    pids = {worker.status(str(d))['status']['pid'] for d in (first, second)}
    assert len(pids) == 2


def test_a_new_worker_removes_the_directories_of_workers_that_are_gone(tmp_path, env, collections_path, task,
                                                                       worker_root):
    run_module(collections_path, dict(task, name='v1', size=1, worker_idle_timeout=1), env)
    old, status = the_worker(worker_root)
    wait_until(lambda: not alive(status['pid']), 'the idle worker exits')
    # Another version of the collection starts its worker: the old one's directory goes.
    other = another_version(tmp_path)
    assert run_module(other, dict(task, name='v1', state='absent'), env)['changed'] is True
    [new] = workers(worker_root)
    assert new != old and worker.status(str(new)) is not None
    # A worker that still listens keeps its directory when another starts.
    assert run_module(collections_path, dict(task, name='v1', size=1), env)['changed'] is True
    assert set(workers(worker_root)) == {old, new}


def test_a_foreign_uid_is_refused(collections_path):
    """The worker checks its peer's uid (SO_PEERCRED). Its directory is 0700 too, which
    keeps other users from its socket at all: this worker is started in a directory
    others may open, to show the check itself."""
    # Outside pytest's own temporary directory, which only root may open.
    directory = Path(tempfile.mkdtemp(prefix='cinderlib-open-worker-'))
    os.chmod(directory, 0o755)
    code = ('import sys; sys.path.insert(0, %r); from ansible_collections.cinderlib.storage.plugins.module_utils '
            'import worker_server; worker_server.serve(%r)' % (collections_path, str(directory)))
    proc = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        wait_until(lambda: (directory / 'sock').exists() or proc.poll() is not None, 'the worker listens')
        assert proc.poll() is None, proc.stderr.read()
        os.chmod(directory / 'sock', 0o777)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # a process of another user connects
            code = 1
            try:
                os.close(read_end)
                os.setgid(65534)
                os.setuid(65534)
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.connect(str(directory / 'sock'))
                    sock.settimeout(120)
                    worker.send_frame(sock, {'protocol': worker.PROTOCOL, 'kind': 'status'})
                    os.write(write_end, json.dumps(worker.recv_frame(sock)).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, 'rb') as answer_file:
            answer = answer_file.read()
        assert os.waitpid(pid, 0)[1] == 0
        answer = json.loads(answer)
        assert 'uid 65534 is not the uid of this worker (0)' in answer.get('refused', ''), answer
        # Its own user is served.
        assert worker.status(str(directory))['status']['served'] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        shutil.rmtree(directory, ignore_errors=True)


def statuses(task: dict) -> dict:
    path = task['persistence']['connection'][len('sqlite:///'):]
    with sqlite3.connect(path) as db:
        return dict(db.execute('SELECT display_name, status FROM cinderlib_volumes'))


def test_a_task_killed_in_the_worker_then_the_next_task_and_reconcile(
        env, collections_path, task, worker_root, lvm_backend_env):
    killed = run_module(collections_path, dict(task, name='killed', size=1),
                        dict(env, CINDERLIB_TEST_KILL_AT='volume.create.after_driver'))
    assert killed.get('failed'), killed
    assert 'ended without a result (killed by signal 9 (SIGKILL))' in killed['msg'], killed['msg']
    assert 'cinderlib_reconcile' in killed['msg']
    assert statuses(task) == {'killed': 'creating'}

    again = run_module(collections_path, dict(task, name='killed', size=1), env)
    assert again.get('failed') and "has status 'creating'" in again['msg'], again
    settled = run_module(collections_path, task, env, module='cinderlib_reconcile')
    assert [(a['name'], a['action']) for a in settled['actions']] == [('killed', 'adopted')], settled
    assert statuses(task) == {'killed': 'available'}

    # The worker itself killed: the next task starts a new one.
    _directory, status = the_worker(worker_root)
    os.kill(status['pid'], signal.SIGKILL)
    wait_until(lambda: not alive(status['pid']), 'the worker is gone')
    removed = run_module(collections_path, dict(task, name='killed', state='absent'), env)
    assert removed['changed'] is True, removed
    _directory, again_status = the_worker(worker_root)
    assert again_status['pid'] != status['pid']
    assert statuses(task) == {}


def test_a_hung_driver_call_is_bounded_by_worker_timeout(tmp_path, env, collections_path, task):
    fake = tmp_path / 'bin'
    fake.mkdir()
    (fake / 'lvcreate').write_text('#!/bin/sh\nexec sleep 60\n')
    (fake / 'lvcreate').chmod(0o755)
    hung_env = dict(env, PATH='%s:%s' % (fake, env['PATH']))
    result = run_module(collections_path, dict(task, name='hung', size=1, worker_timeout=3), hung_env)
    assert result.get('failed'), result
    assert 'ran longer than worker_timeout (3 s)' in result['msg'], result['msg']
    assert statuses(task) == {'hung': 'creating'}
    settled = run_module(collections_path, task, env, module='cinderlib_reconcile')
    assert [(a['name'], a['action']) for a in settled['actions']] == [('hung', 'removed')], settled


def test_with_neither_the_option_nor_the_variable_a_worker_runs_the_task(env, collections_path, task, worker_root):
    env = {k: v for k, v in env.items() if k != 'CINDERLIB_WORKER'}
    assert run_module(collections_path, dict(task, name='default', size=1), env)['changed'] is True
    the_worker(worker_root)
    assert run_module(collections_path, dict(task, name='default', state='absent'), env)['changed'] is True


@pytest.mark.parametrize('off', [{'worker': False}, {'worker_idle_timeout': 0}, 'CINDERLIB_WORKER=0'])
def test_worker_off_runs_the_task_in_its_own_process(env, collections_path, task, worker_root, off):
    if isinstance(off, str):
        name, value = off.split('=')
        env, off = dict(env, **{name: value}), {}
    for state in ('present', 'absent'):
        result = run_module(collections_path, dict(task, name='own', size=1, state=state, **off), env)
        assert result['changed'] is True and 'warnings' not in result, result
    assert not worker_root.exists()
