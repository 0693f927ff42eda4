# Connections on a real LVM backend: the export side for real (create_export,
# initialize_connection, terminate_connection, remove_export of Cinder's LVM
# driver with its 'fake' target helper: a real iSCSI target needs LIO, which
# this kernel lacks), the modules, and the multi-host flow between processes
# that share only the state store. The local attach needs an iSCSI initiator
# and a target in the kernel: those tests skip here and run in the VM scenario
# (extensions/molecule/vm/attach.yml).
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from functional_helpers import run_adhoc, run_python

SETUP = textwrap.dedent('''\
    import json, sys
    from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
    cinderlib.setup(persistence_config={{'storage': 'db', 'connection': 'sqlite:///{db}'}},
                    file_locks_path='{locks}')
''')

NODE_A = {'host': 'node-a', 'initiator': 'iqn.1993-08.org.debian:01:node-a', 'ip': '192.0.2.10',
          'platform': 'x86_64', 'os_type': 'linux', 'multipath': False}
NODE_B = dict(NODE_A, host='node-b', initiator='iqn.1993-08.org.debian:01:node-b', ip='192.0.2.11')


def has_iscsi_attach() -> str | None:
    """Why a real iSCSI attach can't run here, or None when it can."""
    if shutil.which('iscsiadm', path=os.environ.get('PATH', '') + ':/usr/sbin:/sbin') is None:
        return 'no iSCSI initiator (iscsiadm) on this host'
    if not Path('/sys/kernel/config/target').is_dir() and not Path('/sys/module/target_core_mod').exists():
        return 'no LIO target (target_core_mod) in this kernel'
    return None


def run_module(module: str, args: dict, env: dict, check: bool = False) -> tuple[int, dict, str]:
    """run_adhoc, with --check --diff when ``check``."""
    if not check:
        return run_adhoc(module, args, env)
    cmd = [str(Path(sys.executable).parent / 'ansible'), 'localhost', '-c', 'local', '--check', '--diff',
           '-e', 'ansible_python_interpreter=%s' % sys.executable, '-m', module, '-a', json.dumps(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    payload = proc.stdout.partition('=>')[2]
    return proc.returncode, json.loads(payload) if payload.strip() else {}, proc.stdout + proc.stderr


def script(tmp_path, body: str) -> str:
    return SETUP.format(db=tmp_path / 'state.db', locks=tmp_path / 'locks') + textwrap.dedent(body)


@pytest.fixture
def fake_target_backend(lvm_backend) -> dict:
    """The test VG with Cinder's 'fake' target helper: real exports, no LIO."""
    return dict(lvm_backend, target_helper='fake', volume_backend_name='lvm_fake')


def last_json(proc) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_connect_and_disconnect_through_the_lvm_driver(tmp_path, run_env, fake_target_backend):
    got = last_json(run_python(script(tmp_path, '''
        lvm = cinderlib.Backend(**%r)
        vol = lvm.create_volume(1, name='data01')
        conn = vol.connect(%r)
        again = vol.connect(%r)
        other = vol.connect(%r)
        try:
            vol.delete()
            refused = ''
        except cinderlib.InvalidRequest as exc:
            refused = str(exc)
        store = cinderlib.Backend.persistence
        print(json.dumps({
            'conn_info': conn.conn_info, 'full': conn.full_conn_info(), 'connected': conn.connected,
            'same': again.id == conn.id, 'other': other.id != conn.id, 'status': vol.status,
            'attach_status': vol.attach_status, 'provider_auth': vol.record.get('provider_auth'),
            'records': store.connection_records(volume_id=vol.id), 'refused': refused,
            'view': vol.to_dict()['connections'], 'hosts': vol.to_dict()['attached_hosts'],
            'dump': vol.dump}))
        ''' % (fake_target_backend, NODE_A, NODE_A, NODE_B)), run_env))
    info = got['conn_info']
    assert info['driver_volume_type'] == 'iscsi' and got['connected'] and got['same'] and got['other']
    data = info['data']
    assert data['target_iqn'].startswith('iqn.2010-10.org.openstack:volume-') and data['access_mode'] == 'rw'
    # CHAP: the driver made credentials; conn_info and the record keep them as the driver returned
    # them (as cinderlib did), the views and the serialized output leave the password out.
    method, user, password = got['provider_auth'].split()
    assert (data['auth_method'], data['auth_username'], data['auth_password']) == ('CHAP', user, password)
    assert got['full'] == info
    assert {r['conn_info']['data']['auth_password'] for r in got['records']} == {password}
    assert password not in json.dumps(got['view']) and password not in json.dumps(got['dump'])
    assert [r['status'] for r in got['records']] == ['connected', 'connected']
    assert got['status'] == 'in-use' and got['attach_status'] == 'attached'
    assert got['hosts'] == ['node-a', 'node-b'] and {c['host'] for c in got['view']} == {'node-a', 'node-b'}
    assert "it is connected to host 'node-a', host 'node-b'; disconnect it first" in got['refused']
    assert len(got['dump']['connections']) == 2

    # Another process disconnects both, then the volume can go.
    got = last_json(run_python(script(tmp_path, '''
        lvm = cinderlib.Backend(**%r)
        [vol] = lvm.volumes_filtered(volume_name='data01')
        first = vol.connection_for('node-a')
        vol.disconnect(first)
        middle = (vol.status, len(vol.connections))
        vol.disconnect(vol.connections[0])
        end = (vol.status, vol.attach_status, len(vol.connections))
        vol.delete()
        print(json.dumps({'middle': middle, 'end': end,
                          'left': cinderlib.Backend.persistence.connection_records()}))
        ''' % fake_target_backend), run_env))
    assert got['middle'] == ['in-use', 1] and got['end'] == ['available', 'detached', 0] and got['left'] == []


def test_extending_a_connected_volume_keeps_it_in_use(tmp_path, run_env, fake_target_backend):
    got = last_json(run_python(script(tmp_path, '''
        lvm = cinderlib.Backend(**%r)
        vol = lvm.create_volume(1, name='grow')
        conn = vol.connect(%r)
        vol.extend(2)
        print(json.dumps({'size': vol.size, 'status': vol.status}))
        vol.disconnect(conn)
        vol.delete()
        ''' % (fake_target_backend, NODE_A)), run_env))
    assert got == {'size': 2, 'status': 'in-use'}


def test_a_connector_without_what_the_backend_needs_is_refused(tmp_path, run_env, fake_target_backend):
    got = last_json(run_python(script(tmp_path, '''
        lvm = cinderlib.Backend(**%r)
        vol = lvm.create_volume(1, name='strict')
        try:
            vol.connect({'host': 'no-initiator'})
            message = ''
        except cinderlib.InvalidRequest as exc:
            message = str(exc)
        print(json.dumps({'message': message, 'left': len(vol.connections), 'status': vol.status}))
        vol.delete()
        ''' % fake_target_backend), run_env))
    assert got['message'].startswith("The connector of host 'no-initiator' lacks what backend 'lvm_fake' needs")
    assert got['left'] == 0 and got['status'] == 'available'


def test_modules_export_idempotently_to_a_stored_node_id(tmp_path, run_env, fake_target_backend):
    store = {'storage': 'db', 'connection': 'sqlite:///%s' % (tmp_path / 'shared.db')}
    # Process A, a consumer host: stores its connector under a node id (os-brick only).
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_connector',
                                {'node_id': 'consumer', 'persistence': store, 'host': 'consumer-host'}, run_env)
    assert rc == 0 and result['changed'] is True, out
    facts = result['connector']
    assert facts['host'] == 'consumer-host' and facts['multipath'] is False and 'os_type' in facts
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_connector',
                                {'node_id': 'consumer', 'persistence': store, 'host': 'consumer-host'}, run_env)
    assert rc == 0 and result['changed'] is False, out

    # This machine has no iSCSI initiator name: the LVM iSCSI export refuses that connector.
    args = {'backend': fake_target_backend, 'persistence': store, 'volume': 'shared01', 'connector': 'consumer'}
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume',
                                {'backend': fake_target_backend, 'persistence': store, 'name': 'shared01',
                                 'size': 1}, run_env)
    assert rc == 0, out
    if 'initiator' not in facts:
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_connection', args, run_env)
        assert rc != 0 and "The connector of host 'consumer-host' lacks what backend 'lvm_fake' needs" in out

    # A node whose connector has an initiator, stored by another process that imports no Cinder.
    proc = run_python(textwrap.dedent('''
        import sys
        from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import open_store
        open_store(%r).put('connector', {'id': 'node-a', 'host': 'node-a', 'connector': %r})
        print('cinder imported:', any(m == 'cinder' or m.startswith('cinder.') for m in sys.modules))
        ''' % (store, NODE_A)), run_env)
    assert proc.returncode == 0 and 'cinder imported: False' in proc.stdout, proc.stderr

    # Process B, the storage host: check mode, real, check mode again, real again.
    args['connector'] = 'node-a'
    outcomes = []
    for check in (True, False, True, False):
        rc, result, out = run_module('cinderlib.storage.cinderlib_connection', args, run_env, check)
        assert rc == 0, out
        outcomes.append(result)
    assert [r['changed'] for r in outcomes] == [True, True, False, False]
    assert outcomes[0]['conn_info'] is None and outcomes[0]['connection']['host'] == 'node-a'
    connection = outcomes[1]['connection']
    assert connection['node_id'] == 'node-a' and connection['status'] == 'connected'
    assert outcomes[1]['conn_info']['driver_volume_type'] == 'iscsi'
    assert 'auth_password' not in outcomes[1]['conn_info']['data']
    assert outcomes[3]['connection']['id'] == connection['id']

    # The volume's facts show the connection.
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts',
                                {'backend': fake_target_backend, 'persistence': store}, run_env)
    [volume] = result['ansible_facts']['cinderlib_backends']['lvm_fake']['volumes']
    assert volume['status'] == 'in-use' and volume['attached_hosts'] == ['node-a']

    # Process A, the consumer, finds the connection in the shared store with the CHAP password
    # (the record keeps it, as cinderlib's did), importing no Cinder.
    proc = run_python(textwrap.dedent('''
        import sys
        from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib, connection_state
        cinderlib.setup(persistence_config=%r, file_locks_path=%r)
        conn_info, record = connection_state._consumer_source({'connection_id': %r})
        [volume] = cinderlib.Backend.persistence.volume_records(volume_id=record['volume_id'])
        print('password given:', conn_info['data']['auth_password'] == volume['provider_auth'].split()[2])
        print('record has it:', 'auth_password' in record['conn_info']['data'])
        print('cinder imported:', any(m == 'cinder' or m.startswith('cinder.') for m in sys.modules))
        ''' % (store, str(tmp_path / 'locks'), connection['id'])), run_env)
    assert proc.returncode == 0, proc.stderr
    assert 'password given: True' in proc.stdout and 'record has it: True' in proc.stdout
    assert 'cinder imported: False' in proc.stdout
    # Its attach, in check mode, needs the initiator's tools to look the device up.
    rc, result, out = run_module('cinderlib.storage.cinderlib_connection',
                                 {'connection_id': connection['id'], 'persistence': store}, run_env, check=True)
    if has_iscsi_attach() is None:
        assert rc == 0 and result['changed'] is True and result['connection']['attached'] is True, out
    elif shutil.which('iscsiadm', path=os.environ.get('PATH', '') + ':/usr/sbin:/sbin') is None:
        assert rc != 0 and "the command 'iscsiadm' is not installed on this host" in out
    # Its conn_info without the password fails clearly, before any os-brick call.
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_connection',
                                {'conn_info': outcomes[1]['conn_info'], 'persistence': store}, run_env)
    assert rc != 0 and 'asks for CHAP authentication' in out and 'Give connection_id' in out

    # node-a's stored properties can be removed while its export remains: a warning names the export,
    # which still ends below (the connection keeps its own copy of the properties).
    for expected in (True, False):
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_connector',
                                    {'node_id': 'node-a', 'persistence': store, 'state': 'absent'}, run_env)
        assert rc == 0 and result['changed'] is expected, out
        if expected:
            # Ad hoc, warnings go to stderr, wrapped.
            assert "1 export(s) to node 'node-a' remain (connections %s)" % connection['id'] in ' '.join(out.split())
    assert run_python(textwrap.dedent('''
        from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import open_store
        print(open_store(%r).get_connector('node-a'))
        ''' % (store,)), run_env).stdout.strip() == 'None'

    # A connected volume can't be deleted; state=absent ends the export (then no change).
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume',
                                {'backend': fake_target_backend, 'persistence': store, 'name': 'shared01',
                                 'state': 'absent'}, run_env)
    assert rc != 0 and "it is connected to host 'node-a'; disconnect it first" in out
    for expected in (True, False):
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_connection', dict(args, state='absent'), run_env)
        assert rc == 0 and result['changed'] is expected, out
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume',
                                {'backend': fake_target_backend, 'persistence': store, 'name': 'shared01',
                                 'state': 'absent'}, run_env)
    assert rc == 0 and result['changed'] is True, out


def test_the_consumer_side_imports_no_cinder(tmp_path, run_env):
    # What cinderlib_connection with connection_id runs, in one process: the store and
    # os-brick only.
    proc = run_python(textwrap.dedent('''
        import sys
        from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
        from ansible_collections.cinderlib.storage.plugins.module_utils import connection_state
        cinderlib.setup(persistence_config={'storage': 'memory'}, file_locks_path=%r)
        changed, _before, connector, _messages = connection_state.ensure_connector_present(
            cinderlib, {'node_id': 'n1'}, False)
        print('stored', cinderlib.Backend.persistence.get_connector('n1')['connector'] == connector)
        print('cinder imported:', any(m == 'cinder' or m.startswith('cinder.') for m in sys.modules))
        ''' % str(tmp_path / 'locks')), run_env)
    assert proc.returncode == 0, proc.stderr
    assert 'stored True' in proc.stdout and 'cinder imported: False' in proc.stdout


@pytest.mark.skipif(has_iscsi_attach() is not None, reason='%s: the local attach runs in the VM scenario '
                    '(extensions/molecule/vm/attach.yml)' % has_iscsi_attach())
def test_local_attach_write_read_detach(tmp_path, run_env, lvm_backend):
    got = last_json(run_python(script(tmp_path, '''
        import os
        lvm = cinderlib.Backend(**%r)
        vol = lvm.create_volume(1, name='attach01')
        conn = vol.attach()
        pattern = os.urandom(4096)
        with open(conn.path, 'r+b', buffering=0) as device:
            device.write(pattern)
            os.fsync(device.fileno())
            device.seek(0)
            same = device.read(4096) == pattern
        again = vol.attach()
        vol.detach()
        vol.delete()
        print(json.dumps({'same': same, 'reused': again.id == conn.id, 'path': conn.path}))
        ''' % lvm_backend), run_env))
    assert got['same'] and got['reused'] and got['path'].startswith('/dev/')


def test_conn_info_connection_info_and_device_attached_across_processes(tmp_path, run_env, fake_target_backend):
    # cinderlib's multi-process flow: one process connects, a later one reads the connection
    # back (the same conn_info, CHAP password included, as the driver gave it), a program on
    # the consuming host records the device it attached with os-brick itself, and another
    # process sees it.
    first = last_json(run_python(script(tmp_path, '''
        lvm = cinderlib.Backend(**%r)
        conn = lvm.create_volume(1, name='shared').connect(%r)
        print(json.dumps({'id': conn.id, 'conn_info': conn.conn_info, 'connection_info': conn.connection_info}))
        ''' % (fake_target_backend, NODE_A)), run_env))
    data = first['conn_info']['data']
    assert data['auth_method'] == 'CHAP' and data['auth_password']
    assert first['connection_info'] == {'conn': first['conn_info'], 'connector': NODE_A}
    device = {'type': 'block', 'path': '/dev/disk/by-path/ip-192.0.2.5:3260-iscsi-%s-lun-0' % data['target_iqn']}
    second = last_json(run_python(script(tmp_path, '''
        lvm = cinderlib.Backend(**%r)
        [vol] = lvm.volumes_filtered(volume_name='shared')
        [conn] = vol.connections
        before = {'conn_info': conn.conn_info, 'attached': conn.attached, 'device': conn.device}
        conn.device_attached(%r)
        print(json.dumps(before))
        ''' % (fake_target_backend, device)), run_env))
    assert second == {'conn_info': first['conn_info'], 'attached': False, 'device': None}
    third = last_json(run_python(script(tmp_path, '''
        lvm = cinderlib.Backend(**%r)
        [conn] = lvm.volumes_filtered(volume_name='shared')[0].connections
        print(json.dumps({'connection_info': conn.connection_info, 'attached': conn.attached, 'path': conn.path,
                          'json': conn.jsons}))
        conn.volume.disconnect(conn)
        conn.volume.delete()
        ''' % fake_target_backend), run_env))
    assert third['connection_info'] == dict(first['connection_info'], device=device)
    assert third['attached'] is True and third['path'] == device['path']
    assert data['auth_password'] not in third['json']  # serialized output leaves it out


CONNECTION_PLAYBOOK = '''
- hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/cinderlib.storage.cinderlib:
      backend: {backend}
      persistence: {persistence}
  tasks:
    - cinderlib.storage.cinderlib_volume: {{name: chap, size: 1}}
    - cinderlib.storage.cinderlib_connection: {{volume: chap, connector: {connector}}}
      register: export
    - cinderlib.storage.cinderlib_connection: {{volume: chap, connector: {connector}}}
      check_mode: true
      diff: true
    - cinderlib.storage.cinderlib_backend_facts: {{}}
    - ansible.builtin.debug: {{var: export}}
'''


def test_no_chap_password_in_vvv_output_of_the_connection_modules(tmp_path, run_env, fake_target_backend):
    # The store keeps the CHAP password as the driver gave it; no module shows it, even at -vvv.
    store = {'storage': 'db', 'connection': 'sqlite:///%s' % (tmp_path / 'state.db')}
    playbook = tmp_path / 'chap.yml'
    playbook.write_text(CONNECTION_PLAYBOOK.format(backend=json.dumps(fake_target_backend),
                                                   persistence=json.dumps(store), connector=json.dumps(NODE_A)))
    inventory = tmp_path / 'store.cinderlib.yml'
    inventory.write_text('plugin: cinderlib.storage.cinderlib\npersistence:\n  connection: %s\n' % store['connection'])
    bindir = Path(sys.executable).parent
    proc = subprocess.run([str(bindir / 'ansible-playbook'), '-vvv', '-i', 'localhost,', '-e',
                           'ansible_python_interpreter=%s' % sys.executable, str(playbook)],
                          capture_output=True, text=True, env=run_env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]
    listed = subprocess.run([str(bindir / 'ansible-inventory'), '-vvv', '-i', str(inventory), '--list'],
                            capture_output=True, text=True, env=run_env, timeout=300, check=False)
    assert listed.returncode == 0, listed.stderr
    got = last_json(run_python(script(tmp_path, '''
        lvm = cinderlib.Backend(**%r)
        [vol] = lvm.volumes_filtered(volume_name='chap')
        [conn] = vol.connections
        print(json.dumps({'password': conn.conn_info['data']['auth_password'], 'auth': vol.record['provider_auth']}))
        vol.disconnect(conn)
        vol.delete()
        ''' % fake_target_backend), run_env))  # the same store: script() opens tmp_path/state.db
    password = got['password']
    assert password and got['auth'].split()[2] == password
    assert '"auth_method": "CHAP"' in proc.stdout  # the connection info is there, without its password
    for text in (proc.stdout, proc.stderr, listed.stdout, listed.stderr):
        assert password not in text
