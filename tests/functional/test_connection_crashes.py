# Connections of runs killed half-way (CINDERLIB_TEST_KILL_AT at the connection
# kill points), on real metadata-only LVM with Cinder's 'fake' target helper (real
# create_export/initialize_connection/terminate_connection/remove_export calls of
# the LVM driver; LIO is not in this kernel): what reconcile and the next
# cinderlib_connection run make of them.
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from functional_helpers import library, lv_names, run_adhoc, run_python

BIN = Path(sys.executable).parent
NODE_A = {'host': 'node-a', 'initiator': 'iqn.1993-08.org.debian:01:node-a', 'ip': '192.0.2.10',
          'platform': 'x86_64', 'os_type': 'linux', 'multipath': False}
NODE_B = dict(NODE_A, host='node-b', initiator='iqn.1993-08.org.debian:01:node-b', ip='192.0.2.11')


@pytest.fixture
def fake(tmp_path, lvm_big_vg) -> dict:
    """Module options: the big VG exported with the 'fake' target, a state store of the test's own."""
    return {'backend': dict(volume_driver='cinder.volume.drivers.lvm.LVMVolumeDriver', volume_group=lvm_big_vg,
                            target_protocol='iscsi', target_helper='fake', volume_backend_name='lvm-fake',
                            lvm_type='default', volume_clear='none'),
            'persistence': {'storage': 'db', 'connection': 'sqlite:///%s' % (tmp_path / 'state.db')}}


def rows(opts: dict, table: str) -> list[dict]:
    """The records of a table of the state store, read with plain SQL."""
    path = opts['persistence']['connection'].split('///', 1)[1]
    with sqlite3.connect(path) as db:
        return [json.loads(data) for (data,) in db.execute('SELECT data FROM cinderlib_%s' % table)]


def state(opts: dict) -> tuple[dict, dict]:
    """({volume name: status}, {(volume name, host): connection status})."""
    volumes = {v['id']: v for v in rows(opts, 'volumes')}
    return ({v['display_name']: v['status'] for v in volumes.values()},
            {(volumes[c['volume_id']]['display_name'], c['host']): c['status'] for c in rows(opts, 'connections')})


def module_cmd(module: str, args: dict, check: bool = False) -> list[str]:
    return [str(BIN / 'ansible'), 'localhost', '-c', 'local', '-e', 'ansible_python_interpreter=%s' % sys.executable,
            *(['--check'] if check else []), '-m', 'cinderlib.storage.' + module, '-a', json.dumps(args)]


def run_module(module: str, args: dict, env: dict, check: bool = False) -> tuple[int, dict, str]:
    proc = subprocess.run(module_cmd(module, args, check), capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    payload = proc.stdout.partition('=>')[2]
    return proc.returncode, json.loads(payload) if payload.strip() else {}, proc.stdout + proc.stderr


def killed_at(point: str, args: dict, env: dict) -> subprocess.Popen:
    """cinderlib_connection with ``args``, killed at ``point`` (started, not awaited)."""
    return subprocess.Popen(module_cmd('cinderlib_connection', args), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=dict(env, CINDERLIB_TEST_KILL_AT=point))


def setup_volumes(opts: dict, env: dict, body: str) -> None:
    proc = run_python(library(opts, body), env)
    assert proc.returncode == 0, proc.stderr[-3000:]


# Each run is killed at its point; all run at once (each on its own volume).
KILLS = [
    ('connection.connect.before_driver', {'volume': 'c-before', 'connector': NODE_A}),
    ('connection.connect.after_driver', {'volume': 'c-after', 'connector': NODE_A}),
    ('connection.disconnect.before_driver', {'volume': 'd-before', 'connector': NODE_A, 'state': 'absent'}),
    ('connection.disconnect.after_driver', {'volume': 'd-after', 'connector': NODE_A, 'state': 'absent'}),
    # node-b stays connected: its export must outlive the settling of node-a's.
    ('connection.connect.after_driver', {'volume': 'shared', 'connector': NODE_A}),
]
LEFT = {('c-before', 'node-a'): 'connecting', ('c-after', 'node-a'): 'connecting',
        ('d-before', 'node-a'): 'disconnecting', ('d-after', 'node-a'): 'disconnecting',
        ('shared', 'node-a'): 'connecting', ('shared', 'node-b'): 'connected'}


def test_connection_runs_killed_half_way_are_settled_by_reconcile(run_env, fake, lvm_big_vg):
    setup_volumes(fake, run_env, '''
        for name in ('c-before', 'c-after', 'd-before', 'd-after', 'shared'):
            volume = lvm.create_volume(1, name=name)
            if name.startswith('d-'):
                volume.connect(%r)
        lvm.volumes_filtered(volume_name='shared')[0].connect(%r)
        ''' % (NODE_A, NODE_B))
    procs = [killed_at(point, dict(fake, **args), run_env) for point, args in KILLS]
    for proc, (point, _args) in zip(procs, KILLS, strict=True):
        out = proc.communicate(timeout=300)[0]
        assert proc.returncode != 0 and 'FAILED' in out, (point, out[-3000:])
    volumes, connections = state(fake)
    assert connections == LEFT
    # The volumes' status is only written after the driver calls: what each killed run found.
    assert volumes == {'c-before': 'available', 'c-after': 'available', 'd-before': 'in-use',
                       'd-after': 'in-use', 'shared': 'in-use'}

    # A leftover connection keeps its volume from being deleted...
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(fake, name='c-after', state='absent'),
                                run_env)
    assert rc != 0 and "it is connected to host 'node-a'; disconnect it first" in result['msg'], out

    # ...report lists them and changes nothing...
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts', dict(fake, reconcile='report'),
                                run_env)
    assert rc == 0 and result['changed'] is False and result['reconcile']['actions'] == [], out
    found = {(t['host'], t['status'], t['in_progress'], t['on_backend'])
             for t in result['reconcile']['transitional'] if t['kind'] == 'connection'}
    assert found == {('node-a', 'connecting', False, None), ('node-a', 'disconnecting', False, None)}
    assert len(result['reconcile']['transitional']) == 5
    # ...and so does resolve in check mode, which says what it would do.
    rc, result, out = run_module('cinderlib_reconcile', fake, run_env, check=True)
    assert rc == 0 and result['changed'] is True, out
    assert [a['action'] for a in result['actions']] == ['removed'] * 5
    assert state(fake) == (volumes, connections)

    # resolve: ends each export (not node-b's), removes the records, puts the volumes' status right.
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_reconcile', fake, run_env)
    assert rc == 0 and result['changed'] is True, out
    names = {v['id']: v['display_name'] for v in rows(fake, 'volumes')}
    actions = {names[a['volume_id']]: a for a in result['actions']}
    assert {n: (a['kind'], a['host'], a['status'], a['action'], a['new_status']) for n, a in actions.items()} == {
        n: ('connection', h, s, 'removed', None) for (n, h), s in LEFT.items() if h == 'node-a'}
    assert 'no host got its connection info' in actions['c-after']['reason']
    assert state(fake) == ({'c-before': 'available', 'c-after': 'available', 'd-before': 'available',
                            'd-after': 'available', 'shared': 'in-use'}, {('shared', 'node-b'): 'connected'})
    assert {v['name']: v['attached_hosts'] for v in result['volumes']}['shared'] == ['node-b']
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_reconcile', fake, run_env)
    assert rc == 0 and result['changed'] is False and result['actions'] == [], out

    # No ghost records, and every volume can go: the module deletes one, the library the rest.
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(fake, name='c-after', state='absent'),
                                run_env)
    assert rc == 0 and result['changed'] is True, out
    setup_volumes(fake, run_env, '''
        shared = lvm.volumes_filtered(volume_name='shared')[0]
        shared.disconnect(shared.connection_for('node-b'))
        for volume in lvm.volumes:
            volume.delete()
        ''')
    assert rows(fake, 'volumes') == [] and rows(fake, 'connections') == [] and lv_names(lvm_big_vg, run_env) == []


def test_the_next_connection_run_settles_what_a_killed_run_left(run_env, fake, lvm_big_vg):
    setup_volumes(fake, run_env, "lvm.create_volume(1, name='next')\n")
    args = dict(fake, volume='next', connector=NODE_A)
    assert killed_at('connection.connect.after_driver', args, run_env).wait(timeout=300) != 0
    assert state(fake) == ({'next': 'available'}, {('next', 'node-a'): 'connecting'})
    # A run for another host settles node-a's leftover first, then is killed in turn.
    assert killed_at('connection.connect.before_driver', dict(args, connector=NODE_B), run_env).wait(300) != 0
    assert state(fake) == ({'next': 'available'}, {('next', 'node-b'): 'connecting'})

    rc, result, out = run_module('cinderlib_connection', args, run_env, check=True)
    assert rc == 0 and result['changed'] is True and result['conn_info'] is None, out
    assert "Connection of volume 'next' to host 'node-b' was left with status 'connecting'" in out, out
    assert 'will end its export' in out
    assert state(fake)[1] == {('next', 'node-b'): 'connecting'}

    rc, result, out = run_module('cinderlib_connection', args, run_env)
    assert rc == 0 and result['changed'] is True and result['connection']['status'] == 'connected', out
    assert "to host 'node-b' was left with status 'connecting'" in out and 'ended its export' in out
    assert result['conn_info']['driver_volume_type'] == 'iscsi'
    assert state(fake) == ({'next': 'in-use'}, {('next', 'node-a'): 'connected'})
    rc, result, out = run_module('cinderlib_connection', args, run_env)
    assert rc == 0 and result['changed'] is False and 'was left' not in out, out

    # A killed disconnect: state=absent finishes it.
    absent = dict(args, state='absent')
    assert killed_at('connection.disconnect.after_driver', absent, run_env).wait(timeout=300) != 0
    assert state(fake) == ({'next': 'in-use'}, {('next', 'node-a'): 'disconnecting'})
    rc, result, out = run_module('cinderlib_connection', absent, run_env)
    assert rc == 0 and result['changed'] is True and "was left with status 'disconnecting'" in out, out
    assert state(fake) == ({'next': 'available'}, {})
    rc, result, out = run_module('cinderlib_connection', absent, run_env)
    assert rc == 0 and result['changed'] is False, out
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(fake, name='next', state='absent'),
                                run_env)
    assert rc == 0 and result['changed'] is True, out
    assert rows(fake, 'volumes') == [] and rows(fake, 'connections') == [] and lv_names(lvm_big_vg, run_env) == []
