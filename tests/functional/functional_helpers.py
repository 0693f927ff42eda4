# Plain helpers for functional tests (fixtures are in conftest.py).
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa


def library(opts: dict, body: str) -> str:
    """A script that sets the library up with ``opts`` (``backend`` and
    ``persistence``, as module options) as ``lvm``, then runs ``body``."""
    return ('from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib\n'
            'cinderlib.setup(persistence_config=%r)\n' % opts['persistence']
            + 'lvm = cinderlib.Backend(**%r)\n' % opts['backend'] + textwrap.dedent(body))


def run_python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=300,
                          check=False)


def run_adhoc(module: str, args, env: dict, interpreter: str | None = None,
              check: bool = False) -> tuple[int, dict, str]:
    """Run one module ad hoc on localhost (``check``: in check mode); return
    (rc, result, raw output)."""
    cmd = [str(Path(sys.executable).parent / 'ansible'), 'localhost', '-c', 'local',
           '-e', 'ansible_python_interpreter=%s' % (interpreter or sys.executable),
           *(['--check'] if check else []), '-m', module, '-a', args if isinstance(args, str) else json.dumps(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    out = proc.stdout
    # one-line output: "localhost | SUCCESS => {...}"
    payload = out.partition('=>')[2]
    try:
        result = json.loads(payload) if payload.strip() else {}
    except ValueError:
        result = {}
    return proc.returncode, result, out + proc.stderr


def assert_drift_only_reported(opts: dict, env: dict, by_hand: str, vanished_id: str, unchanged) -> None:
    """Both ways of seeing drift (cinderlib_backend_facts with reconcile: report,
    and cinderlib_reconcile) report the 1 GiB volume ``volume-<by_hand>`` made
    behind the store's back and the volume named 'vanished' removed behind it,
    and act on neither: ``unchanged()`` asserts the backend and store are as they were."""
    for module, args in (('cinderlib_backend_facts', dict(opts, reconcile='report')), ('cinderlib_reconcile', opts)):
        rc, result, out = run_adhoc('cinderlib.storage.' + module, args, env)
        assert rc == 0, out
        report = result.get('reconcile', result)
        drift = report['drift']
        assert drift['status'] == 'checked', drift
        assert drift['unknown_on_backend'] == [
            {'kind': 'volume', 'id': by_hand, 'backend_name': 'volume-%s' % by_hand, 'size': 1}]
        [missing] = drift['missing_on_backend']
        assert (missing['kind'], missing['id'], missing['name'], missing['status']) == (
            'volume', vanished_id, 'vanished', 'available')
        assert result['changed'] is False and report['actions'] == []
        unchanged()


def rbd(cluster: dict, *args: str) -> subprocess.CompletedProcess:
    """The ``rbd`` CLI on a ceph_cluster (with its admin's keyring, named by its conf)."""
    return subprocess.run(['rbd', '--conf', cluster['CEPH_CONF'], *args], capture_output=True, text=True,
                          timeout=120, check=False)


def images(cluster: dict) -> list[str]:
    """The images in the ceph_cluster's pool."""
    proc = rbd(cluster, 'ls', '--format', 'json', cluster['CEPH_POOL'])
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout or '[]')


def lvm_command(*args: str, env: dict) -> None:
    proc = subprocess.run(list(args), capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr


def lv_names(vg: str, env: dict) -> list[str]:
    out = subprocess.run(['lvs', '--noheadings', '-o', 'lv_name', vg], capture_output=True, text=True, env=env,
                         check=False)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def plain(value):
    """ansible-core 2.19 marks inventory strings as unsafe in --list output."""
    if isinstance(value, dict):
        if set(value) == {'__ansible_unsafe'}:
            return value['__ansible_unsafe']
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def assert_unchanged_on_the_fast_path(run, args: dict, key: str | None = None, expected=None, **kwargs) -> None:
    """``run(args, check_mode=..., **kwargs)`` (a module_runner's run) in normal,
    then check mode: nothing changed, ``result[key] == expected`` when a key is
    given, and nothing heavy imported (the fast path answered)."""
    for check_mode in (False, True):
        again, heavy = run(args, check_mode=check_mode, **kwargs)
        assert again['changed'] is False, again
        if key is not None:
            assert again[key] == expected, again
        assert heavy == [], 'the unchanged run imported %s' % heavy


def store_volumes(url: str) -> list[dict]:
    """The volume rows of a state store, read with plain SQL."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text('SELECT id, display_name, status, size, backend FROM cinderlib_volumes')).all()
    finally:
        engine.dispose()
    return [dict(row._mapping) for row in rows]


def wait_for_files(paths: list[Path], procs: list[subprocess.Popen], timeout: float) -> None:
    """Wait until every path exists; fail the test when a process ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        finished = [p for p in procs if p.poll() is not None]
        if finished:
            out = finished[0].stdout.read() if finished[0].stdout else ''
            pytest.fail('a worker ended before the barrier (rc=%s):\n%s' % (finished[0].returncode, out[-4000:]))
        if time.monotonic() > deadline:
            pytest.fail('workers did not reach the barrier in %ss' % timeout)
        time.sleep(0.5)


# The seed's configurations (/work/shared/seed/backends.rst), san_ip aside.
XTREMIO_SEED = dict(volume_driver='cinder.volume.drivers.dell_emc.xtremio.XtremIOISCSIDriver',
                    xtremio_cluster_name='xtremio_cluster', san_login='xtremio_user',
                    san_password='xtremio_password', volume_backend_name='xtremio')
KAMINARIO_SEED = dict(volume_driver='cinder.volume.drivers.kaminario.kaminario_iscsi.KaminarioISCSIDriver',
                      san_login='kaminario_user', san_password='kaminario_password',
                      volume_backend_name='kaminario_iscsi')
