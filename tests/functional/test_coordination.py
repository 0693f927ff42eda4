# Locks across hosts: coordination_url sends Cinder's coordination (and the
# collection's volume locks) to a real Redis server (tests/conftest.py starts one).
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from functional_helpers import lv_names, run_adhoc, run_python

BIN = Path(sys.executable).parent

# Two "hosts": each process has its own locks directory, so file locks can't
# serialize them; only a shared coordination backend can.
CONTENDER = textwrap.dedent('''\
    import json, os, time
    from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import loader, locks
    cinderlib.setup(persistence_config={{'storage': 'memory_db'}}, file_locks_path={locks!r},
                    coordination_url={url!r})
    runtime = loader.CinderRuntime.get(cinderlib.Backend.settings)
    from cinder import coordination
    redis_keys = None
    if {url!r}:
        import redis
        client = redis.Redis.from_url({url!r})
        redis_keys = lambda: sorted(k.decode() for k in client.keys('*cinderlib-*critical*'))
    while not os.path.exists({go!r}):
        time.sleep(0.01)
    spans, seen = [], []
    for turn in range(4):
        # Cinder's own lock API and the collection's: one lock of one coordinator.
        section = (coordination.COORDINATOR.get_lock('cinderlib-volume-critical') if turn % 2 == 0
                   else locks.locked('cinderlib-volume-critical', 'Volume critical'))
        with section:
            enter = time.time()
            if redis_keys:
                seen.append(redis_keys())
            time.sleep(0.25)
            spans.append((enter, time.time()))
    print(json.dumps({{'spans': spans, 'redis_keys': seen}}))
    ''')


def contend(tmp_path: Path, env: dict, url: str | None) -> list[dict]:
    go = tmp_path / ('go-%s' % bool(url))
    scripts = [CONTENDER.format(locks=str(tmp_path / ('host%d-%s' % (n, bool(url)))), url=url, go=str(go))
               for n in range(2)]
    procs = [subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for script in scripts]
    time.sleep(4)  # both import Cinder and connect, then start together
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def overlaps(results: list[dict]) -> bool:
    spans = sorted(tuple(span) for result in results for span in result['spans'])
    return any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


@pytest.fixture
def env(collections_path) -> dict:
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path,
                PYTHONPATH=os.pathsep.join(p for p in (collections_path, os.environ.get('PYTHONPATH')) if p))


def test_two_hosts_take_turns_through_redis(tmp_path, env, redis_url):
    results = contend(tmp_path, env, redis_url)
    assert all(len(r['spans']) == 4 for r in results)
    assert not overlaps(results)
    # The locks were Redis keys while held (tooz names them <namespace>_cinder-<name>_lock).
    for result in results:
        assert result['redis_keys'] == [['_tooz_cinder-cinderlib-volume-critical_lock']] * 4


def test_without_coordination_url_two_hosts_do_not_share_locks(tmp_path, env):
    # The control: file locks of two different directories serialize nothing, which
    # is what the test above would see if coordination_url were ignored.
    assert overlaps(contend(tmp_path, env, None))


def test_modules_with_coordination_url_extend_one_volume_at_once(tmp_path, run_env, lvm_backend, redis_url):
    args = {'backend': lvm_backend, 'coordination_url': redis_url,
            'persistence': {'storage': 'db', 'connection': 'sqlite:///%s' % (tmp_path / 'state.db')}}
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(args, name='shared', size=1), run_env)
    assert rc == 0 and result['changed'] is True, out
    cmd = [str(BIN / 'ansible'), 'localhost', '-c', 'local', '-e', 'ansible_python_interpreter=%s' % sys.executable,
           '-m', 'cinderlib.storage.cinderlib_volume', '-a', json.dumps(dict(args, name='shared', size=2))]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=run_env)
             for _proc in range(2)]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    changed = sorted(json.loads(out.partition('=>')[2])['changed'] for out in outputs)
    assert changed == [False, True]  # one extended it, the other found it extended
    proc = run_python(textwrap.dedent('''\
        from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
        cinderlib.setup(persistence_config=%r, coordination_url=%r)
        [volume] = cinderlib.Backend(**%r).volumes
        print(volume.size, volume.status)
        volume.delete()
        ''') % (args['persistence'], redis_url, lvm_backend), run_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ['2', 'available']


@pytest.mark.parametrize('url, expected', [
    ('redis://:s3cret@127.0.0.1:1', "Can't start Cinder's lock coordination at coordination_url "
                                    "redis://:********@127.0.0.1:1: Error 111 connecting to 127.0.0.1:1"),
    ('nosuch://127.0.0.1', "Can't start Cinder's lock coordination at coordination_url nosuch://127.0.0.1: "
                           "No 'tooz.backends' driver found, looking for 'nosuch'"),
])
def test_an_unusable_coordination_url_fails_clearly(run_env, lvm_backend, url, expected):
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts',
                                {'backend': lvm_backend, 'persistence': {'storage': 'memory_db'},
                                 'coordination_url': url}, run_env)
    assert rc != 0, out
    assert result['msg'].startswith(expected), result['msg']
    assert 's3cret' not in out and 'Traceback' not in result['msg']


def test_a_stopped_lock_server_fails_before_any_change_and_a_restarted_one_works(
        tmp_path, run_env, lvm_backend, lvm_backend_env, redis_server):
    # Issue 19's lock-server fault: the Redis of coordination_url is down.
    opts = {'backend': lvm_backend, 'persistence': {'connection': 'sqlite:///%s' % (tmp_path / 'state.db')},
            'coordination_url': redis_server.url, 'name': 'locked-out', 'size': 1}
    lvs = lv_names(lvm_backend_env['vg'], run_env)
    redis_server.stop()
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', opts, run_env)
    assert rc != 0, out
    assert result['msg'].startswith("Can't start Cinder's lock coordination at coordination_url %s"
                                    % redis_server.url), result['msg']
    assert 'Traceback' not in result['msg']
    assert lv_names(lvm_backend_env['vg'], run_env) == lvs
    assert store_volume_names(tmp_path / 'state.db') == []

    redis_server.start()
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', opts, run_env)
    assert rc == 0 and result['changed'], out
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(opts, state='absent'), run_env)
    assert rc == 0 and result['changed'], out
    assert lv_names(lvm_backend_env['vg'], run_env) == lvs


def store_volume_names(db: Path) -> list[str]:
    """The display names of the volumes a SQLite store holds (none when there is no file)."""
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        rows = conn.execute('SELECT display_name FROM cinderlib_volumes').fetchall()
    conn.close()
    return sorted(row[0] for row in rows)
