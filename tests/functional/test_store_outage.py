# Issue 19, the shared PostgreSQL state store going away during a run: a real
# server of this module's own (tests/conftest.py: breakable_postgresql_server) that
# the tests stop and start again, real LVM, real ansible runs. What is asserted
# is what is left: the task's message (the store named, its password never
# shown), the store's records, the volume group's LVs, and that reconcile's
# report agrees with the backend once the server is back. Durations appear only
# as generous timeouts, never in asserts.
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from functional_helpers import lv_names, run_adhoc
from sqlalchemy.engine import make_url

BIN = Path(sys.executable).parent
WAIT = 300  # seconds: a timeout for a step that normally takes a few


def masked(url: str) -> str:
    """The URL as messages must show it."""
    parts = make_url(url)
    return 'postgresql+psycopg2://%s:********@%s:%d/%s' % (parts.username, parts.host, parts.port, parts.database)


def wait_until(condition: Callable[[], bool], what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail('the run ended before %s:\n%s' % (what, proc.communicate()[0][-3000:]), pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail('no %s after %d s' % (what, WAIT), pytrace=False)
        time.sleep(0.1)


def records(url: str) -> list[tuple]:
    """(id, name, status, size) of every volume record, read with SQLAlchemy alone."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table('cinderlib_volumes'):
                return []
            return [tuple(row) for row in conn.execute(sa.text(
                'SELECT id, display_name, status, size FROM cinderlib_volumes ORDER BY display_name'))]
    finally:
        engine.dispose()


def new_lvs(vg: str, env: dict, before: list[str]) -> list[str]:
    return sorted(set(lv_names(vg, env)) - set(before))


def remove_new_lvs(vg: str, env: dict, before: list[str]) -> None:
    for lv in new_lvs(vg, env, before):
        subprocess.run(['lvremove', '-f', '%s/%s' % (vg, lv)], env=env, capture_output=True, check=False)


def assert_store_agrees_with_backend(store: dict, env: dict) -> None:
    """reconcile: report finds nothing to settle and no drift either way."""
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts', dict(store, reconcile='report'), env)
    assert rc == 0, out
    report = result['reconcile']
    assert report['transitional'] == [] and report['actions'] == [], report
    assert report['drift']['status'] == 'checked', report
    assert report['drift']['unknown_on_backend'] == [] and report['drift']['missing_on_backend'] == [], report


def module_cmd(args: dict, *options: str) -> list[str]:
    return [str(BIN / 'ansible'), 'localhost', '-c', 'local', *options,
            '-e', 'ansible_python_interpreter=%s' % sys.executable,
            '-m', 'cinderlib.storage.cinderlib_volume', '-a', json.dumps(args)]


def failure(output: str) -> dict:
    """The result of an ad-hoc task that failed (also at -vvv)."""
    payload = output.partition('FAILED! => ')[2]
    assert payload, output
    return json.JSONDecoder().raw_decode(payload)[0]


@pytest.fixture
def held_lvcreate(tmp_path, run_env) -> dict:
    """An environment whose lvcreate (the LVM driver's, found on PATH) waits,
    once the driver calls it, until the test says go: the task is then inside
    its driver call, after the transitional record was written."""
    real = shutil.which('lvcreate', path=os.pathsep.join([run_env['PATH'], '/usr/sbin', '/sbin']))
    assert real, 'no lvcreate'
    shims = tmp_path / 'shims'
    shims.mkdir()
    called, go = tmp_path / 'lvcreate-called', tmp_path / 'lvcreate-go'
    shim = shims / 'lvcreate'
    shim.write_text(textwrap.dedent('''\
        #!/bin/sh
        touch '%s'
        i=0
        while [ ! -e '%s' ] && [ $i -lt %d ]; do sleep 0.1; i=$((i + 1)); done
        exec '%s' "$@"
        ''') % (called, go, WAIT * 10, real))
    shim.chmod(0o755)
    return {'env': dict(run_env, PATH=os.pathsep.join([str(shims), run_env['PATH']])), 'called': called, 'go': go}


def test_a_stopped_store_fails_the_task_naming_it_and_the_restarted_one_works(
        breakable_postgresql_server, breakable_postgresql_store_url, run_env, lvm_backend, lvm_backend_env):
    server, url = breakable_postgresql_server, breakable_postgresql_store_url
    password, vg = make_url(url).password, lvm_backend_env['vg']
    store = {'backend': lvm_backend, 'persistence': {'connection': url, 'retry_window': 2}}
    task = dict(store, name='outage-a', size=1)
    before = lv_names(vg, run_env)
    try:
        server.stop()
        # -vvv: the module's arguments and the traceback (exception) are shown too.
        proc = subprocess.run(module_cmd(task, '-vvv'), capture_output=True, text=True, env=run_env, timeout=WAIT,
                              check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output
        message = failure(proc.stdout)['msg']
        assert message.startswith("Can't open the state store %s: it is unreachable after 2 s "
                                  '(persistence.retry_window): (psycopg2.OperationalError) connection to server at '
                                  % masked(url)), message
        assert 'Connection refused' in message and 'Traceback' not in message
        assert password not in output and 'MODULE FAILURE' not in output
        assert new_lvs(vg, run_env, before) == []

        server.resume()
        assert records(url) == []
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', task, run_env)
        assert rc == 0 and result['changed'] is True, out
        volume_id = result['volume']['id']
        assert records(url) == [(volume_id, 'outage-a', 'available', 1)]
        assert new_lvs(vg, run_env, before) == ['volume-%s' % volume_id]
        assert_store_agrees_with_backend(store, run_env)
    finally:
        server.resume()
        remove_new_lvs(vg, run_env, before)


@contextlib.contextmanager
def task_in_background(command: list[str], held: dict, server, vg: str, run_env: dict, before: list[str]):
    """The task's process, started with the driver's lvcreate held (held_lvcreate).
    On the way out, whatever the test did: the hold released, the process ended,
    the server running, and the LVs the test made removed."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=held['env'])
    try:
        yield proc
    finally:
        held['go'].touch()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        server.resume()
        remove_new_lvs(vg, run_env, before)


def test_a_store_back_within_the_window_is_reconnected_and_the_task_succeeds(
        tmp_path, breakable_postgresql_server, breakable_postgresql_store_url, held_lvcreate, run_env, lvm_backend,
        lvm_backend_env):
    # The server goes away while the driver creates the volume, and comes back
    # only once the task has met it gone (the retry in the driver log): the
    # task's final write waits for it and the task succeeds.
    server, url = breakable_postgresql_server, breakable_postgresql_store_url
    password, vg = make_url(url).password, lvm_backend_env['vg']
    log = tmp_path / 'driver.log'
    # A window far longer than a restart takes, so that a loaded machine can't fail the test.
    store = {'backend': lvm_backend, 'persistence': {'connection': url, 'retry_window': 120}}
    before = lv_names(vg, run_env)
    command = module_cmd(dict(store, name='outage-b', size=1, driver_log_path=str(log)))
    with task_in_background(command, held_lvcreate, server, vg, run_env, before) as proc:
        wait_until(held_lvcreate['called'].exists, "the driver's lvcreate", proc)
        server.stop()
        held_lvcreate['go'].touch()
        wait_until(lambda: 'is unreachable' in log.read_text(), 'retry in the driver log', proc)
        server.resume()
        output = proc.communicate(timeout=WAIT)[0]
        assert proc.returncode == 0, output
        result = json.loads(output.partition('=>')[2])
        assert result['changed'] is True
        volume_id = result['volume']['id']
        text = log.read_text()
        assert 'The state store %s is unreachable (' % masked(url) in text
        assert 'The state store %s is reachable again after' % masked(url) in text
        assert password not in output and password not in text
        # Exactly one volume, recorded once, available.
        assert records(url) == [(volume_id, 'outage-b', 'available', 1)]
        assert new_lvs(vg, run_env, before) == ['volume-%s' % volume_id]
        assert_store_agrees_with_backend(store, run_env)


def test_a_store_gone_after_the_driver_call_leaves_a_record_that_reconcile_settles(
        breakable_postgresql_server, breakable_postgresql_store_url, held_lvcreate, run_env, lvm_backend,
        lvm_backend_env):
    # The server goes away while the driver creates the volume and stays away
    # past the window: the volume exists, its record says 'creating' (as after
    # a crash there), the task says so, and the crash-safety path settles it.
    server, url = breakable_postgresql_server, breakable_postgresql_store_url
    password, vg = make_url(url).password, lvm_backend_env['vg']
    store = {'backend': lvm_backend, 'persistence': {'connection': url, 'retry_window': 2}}
    task = dict(store, name='outage-d', size=1)
    before = lv_names(vg, run_env)
    with task_in_background(module_cmd(task, '-vvv'), held_lvcreate, server, vg, run_env, before) as proc:
        wait_until(held_lvcreate['called'].exists, "the driver's lvcreate", proc)
        server.stop()
        held_lvcreate['go'].touch()
        output = proc.communicate(timeout=WAIT)[0]
        assert proc.returncode != 0, output
        message = failure(output)['msg']
        [lv] = new_lvs(vg, run_env, before)
        volume_id = lv[len('volume-'):]
        assert message.startswith(
            "Volume 'outage-d' on backend 'lvm' was created by the driver, but the state store could not record it, "
            "so its record may still say status 'creating': once the state store is reachable, settle it as after an "
            'interrupted run (cinderlib.storage.cinderlib_reconcile), then run again. Cause: '
            "Can't write volume %s to the state store %s: it is unreachable after 2 s (persistence.retry_window): "
            % (volume_id, masked(url))), message
        assert password not in output and 'MODULE FAILURE' not in output

        server.resume()
        assert records(url) == [(volume_id, 'outage-d', 'creating', 1)]
        # The same task now refuses the record, as after a crash...
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', task, run_env)
        assert rc != 0 and "has status 'creating' in the state store" in result['msg'], out
        # ...the report shows it, the backend has it, and there is no drift...
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts', dict(store, reconcile='report'),
                                    run_env)
        assert rc == 0, out
        [leftover] = result['reconcile']['transitional']
        assert (leftover['id'], leftover['status'], leftover['on_backend']) == (volume_id, 'creating', True)
        drift = result['reconcile']['drift']
        assert drift['unknown_on_backend'] == [] and drift['missing_on_backend'] == [], drift
        # ...reconcile adopts it, and the task converges.
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_reconcile', store, run_env)
        assert rc == 0 and [(a['id'], a['action']) for a in result['actions']] == [(volume_id, 'adopted')], out
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', task, run_env)
        assert rc == 0 and result['changed'] is False and result['volume']['id'] == volume_id, out
        assert records(url) == [(volume_id, 'outage-d', 'available', 1)]
        assert new_lvs(vg, run_env, before) == [lv]
        assert_store_agrees_with_backend(store, run_env)


PLAYBOOK = textwrap.dedent('''\
    - name: Volumes in a PostgreSQL store that goes away after the first one
      hosts: localhost
      connection: local
      gather_facts: false
      module_defaults:
        group/cinderlib.storage.cinderlib:
          backend: "{{ lvm }}"
          persistence:
            connection: "{{ pg_url }}"
            retry_window: 2
      tasks:
        - name: Create A
          cinderlib.storage.cinderlib_volume:
            name: outage-c-a
            size: 1
        - name: Tell the test that A is made
          ansible.builtin.copy:
            dest: "{{ marker }}"
            content: done
            mode: "0600"
        - name: Wait for the test
          ansible.builtin.wait_for:
            path: "{{ go }}"
            timeout: 300
        - name: Create B
          cinderlib.storage.cinderlib_volume:
            name: outage-c-b
            size: 1
        - name: Extend A
          cinderlib.storage.cinderlib_volume:
            name: outage-c-a
            size: 2
    ''')


def test_a_store_gone_mid_playbook_fails_the_next_task_and_a_rerun_converges(
        tmp_path, breakable_postgresql_server, breakable_postgresql_store_url, run_env, lvm_backend, lvm_backend_env):
    server, url = breakable_postgresql_server, breakable_postgresql_store_url
    password, vg = make_url(url).password, lvm_backend_env['vg']
    store = {'backend': lvm_backend, 'persistence': {'connection': url}}
    marker, go = tmp_path / 'a-made', tmp_path / 'go'
    (tmp_path / 'play.yml').write_text(PLAYBOOK)
    (tmp_path / 'vars.json').write_text(json.dumps({
        'lvm': lvm_backend, 'pg_url': url, 'marker': str(marker), 'go': str(go),
        'ansible_python_interpreter': sys.executable}))
    cmd = [str(BIN / 'ansible-playbook'), '-i', 'localhost,', str(tmp_path / 'play.yml'),
           '-e', '@%s' % (tmp_path / 'vars.json')]
    before = lv_names(vg, run_env)
    outputs = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=run_env)
    try:
        wait_until(marker.exists, 'volume A', proc)
        server.stop()
        go.touch()
        output = proc.communicate(timeout=WAIT)[0]
        outputs.append(output)
        assert proc.returncode != 0, output
        [failed] = [line for line in output.splitlines() if 'FAILED!' in line]
        assert failure(failed)['msg'].startswith(
            "Can't open the state store %s: it is unreachable after 2 s (persistence.retry_window): " % masked(url)), \
            output
        assert 'TASK [Create B]' in output and 'TASK [Extend A]' not in output
        assert len(new_lvs(vg, run_env, before)) == 1  # A only: B was never given to the driver

        server.resume()
        [(a_id, name, status, size)] = records(url)
        assert (name, status, size) == ('outage-c-a', 'available', 1)
        # The same playbook again: A is there, B is made and A extended.
        rerun = subprocess.run(cmd, capture_output=True, text=True, env=run_env, timeout=WAIT, check=False)
        outputs.append(rerun.stdout + rerun.stderr)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        recap = rerun.stdout.rpartition('PLAY RECAP')[2]
        assert 'changed=2 ' in recap and 'failed=0' in recap, rerun.stdout
        volumes = records(url)
        assert [(name, status, size) for _id, name, status, size in volumes] == [
            ('outage-c-a', 'available', 2), ('outage-c-b', 'available', 1)]
        assert volumes[0][0] == a_id
        assert new_lvs(vg, run_env, before) == sorted('volume-%s' % volume[0] for volume in volumes)
        assert_store_agrees_with_backend(store, run_env)
        for output in outputs:
            assert password not in output
    finally:
        go.touch()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        server.resume()
        remove_new_lvs(vg, run_env, before)
