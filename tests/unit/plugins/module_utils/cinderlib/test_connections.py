# Connections over a fake driver and a mocked os-brick: the records, the order of the
# driver and os-brick calls, secrets, idempotence and failures (the real export on LVM:
# tests/functional/test_connections_lvm.py; the real attach: extensions/molecule/vm/attach.yml).
from __future__ import annotations

import json
from types import SimpleNamespace
from unittest import mock

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils import connection_state
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import (
    brick,
    connections,
    context,
    loader,
    locks,
    operations,
    secrets,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import Backend
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    BackendObjectExists,
    DriverOperationError,
    InvalidRequest,
    NotFound,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.reconcile import reconcile

CHAP = 'CHAP chapuser s3cret-chap-pw'
NODE = {'host': 'node-a', 'initiator': 'iqn.1993-08.org.debian:01:node-a', 'multipath': False}


def conn_info_for(volume) -> dict:
    return {'driver_volume_type': 'iscsi',
            'data': {'target_iqn': 'iqn.2010-10.org.openstack:%s' % volume.name, 'target_portal': '192.0.2.5:3260',
                     'target_lun': 0, 'volume_id': volume.id, 'auth_method': 'CHAP', 'auth_username': 'chapuser',
                     'auth_password': 's3cret-chap-pw'}}


class ExportingDriver:
    """The export half of a driver, recording its calls."""

    def __init__(self, base) -> None:
        self.base = base
        self.exports: set[str] = set()

    def validate_connector(self, connector):
        self.base._called('validate_connector')
        if 'initiator' not in connector:
            raise ValueError('The volume driver requires the iSCSI initiator name in the connector.')

    def create_export(self, context, volume, connector):
        self.base._called('create_export')
        self.exports.add(volume.name)
        return {'provider_location': '192.0.2.5:3260,1 iqn %s 0' % volume.name, 'provider_auth': CHAP}

    def initialize_connection(self, volume, connector):
        self.base._called('initialize_connection')
        return conn_info_for(volume)

    def terminate_connection(self, volume, connector, force=False):
        self.base._called('terminate_connection')

    def remove_export(self, context, volume):
        self.base._called('remove_export')
        self.exports.discard(volume.name)

    def ensure_export(self, context, volume):
        self.base._called('ensure_export')
        self.exports.add(volume.name)


class FakeInitiator:
    """os-brick's connector object: a device appears at ``path`` when connected."""

    def __init__(self, path) -> None:
        self.path = path
        self.calls: list[tuple] = []
        self.fail: dict[str, BaseException] = {}

    def _called(self, name, *args):
        self.calls.append((name, *args))
        if name in self.fail:
            raise self.fail[name]

    def connect_volume(self, data):
        self._called('connect_volume', data)
        self.path.write_bytes(b'')
        return {'type': 'block', 'path': str(self.path), 'scsi_wwn': '36001405'}

    def disconnect_volume(self, data, device_info, force=False, ignore_errors=False):
        self._called('disconnect_volume', data, device_info, force, ignore_errors)
        self.path.unlink(missing_ok=True)

    def extend_volume(self, data):
        self._called('extend_volume', data)
        return 2 * 1024 ** 3

    def get_volume_paths(self, data):
        self._called('get_volume_paths', data)
        return [str(self.path)]


@pytest.fixture
def exporting(fake_backend, monkeypatch, tmp_path):
    """fake_backend with an exporting driver and a mocked os-brick on host 'node-a'."""
    driver = fake_backend.driver
    exports = ExportingDriver(driver)
    for name in ('validate_connector', 'create_export', 'initialize_connection', 'terminate_connection',
                 'remove_export', 'ensure_export'):
        setattr(driver, name, getattr(exports, name))
    monkeypatch.setattr(Backend, 'validate_connector', lambda self, c: self.driver.validate_connector(c))
    monkeypatch.setattr(context, 'cinder_runtime', lambda: SimpleNamespace(context=None))
    monkeypatch.setattr(connections.Connection, '_volume_ovo_with_attachments', lambda self: self.volume._ovo)
    monkeypatch.setattr(connections, 'local_host', lambda: 'node-a')
    initiator = FakeInitiator(tmp_path / 'sdb')
    runtime = SimpleNamespace(
        connector_properties=mock.Mock(return_value=dict(NODE)),
        initiator=mock.Mock(return_value=initiator),
        settings=Backend.settings)
    monkeypatch.setattr(brick, 'get', lambda settings=None: runtime)
    return SimpleNamespace(backend=fake_backend, driver=driver, exports=exports, initiator=initiator,
                           runtime=runtime)


def test_connect_exports_once_and_reuses_the_connection_of_a_host(exporting):
    volume = exporting.backend.create_volume(1, name='data')
    connection = volume.connect(NODE)
    again = volume.connect(dict(NODE))
    other = volume.connect(dict(NODE, host='node-b'))
    assert again.id == connection.id and other.id != connection.id
    # One export per volume: the second host only gets initialize_connection.
    assert exporting.driver.calls == ['create_volume', 'validate_connector', 'create_export',
                                      'initialize_connection', 'validate_connector', 'initialize_connection']
    assert volume.status == 'in-use' and volume.attach_status == 'attached'
    assert volume.record['provider_auth'] == CHAP
    # The record keeps the connection info as the driver returned it, as cinderlib did, so that
    # conn_info is the same when read back; serialized output and views lack the CHAP password.
    stored = Backend.persistence.connection_records(connection_id=connection.id)[0]
    assert stored['status'] == 'connected' and stored['host'] == 'node-a' and stored['protocol'] == 'iscsi'
    returned = conn_info_for(volume)
    assert stored['conn_info'] == dict(returned, data=dict(returned['data'], access_mode='rw'))
    assert 's3cret-chap-pw' not in json.dumps([volume.dump, connection.dump, connection.to_dict(), volume.to_dict()])
    assert connection.conn_info['data']['access_mode'] == 'rw'
    assert connection.conn_info['data']['auth_password'] == 's3cret-chap-pw'
    reread = connections.Connection.from_record(volume, stored)
    assert reread.conn_info == connection.conn_info == reread.full_conn_info()
    assert reread.connection_info == {'conn': connection.conn_info, 'connector': NODE}


def test_disconnect_removes_the_export_with_the_last_connection(exporting):
    volume = exporting.backend.create_volume(1, name='data')
    first = volume.connect(NODE)
    second = volume.connect(dict(NODE, host='node-b'))
    exporting.driver.calls.clear()
    volume.disconnect(first)
    assert exporting.driver.calls == ['terminate_connection'] and volume.status == 'in-use'
    volume.disconnect(second)
    assert exporting.driver.calls == ['terminate_connection', 'terminate_connection', 'remove_export']
    assert volume.status == 'available' and volume.attach_status == 'detached'
    assert volume.connections == [] and exporting.exports.exports == set()


def test_a_failed_export_is_recorded_and_a_retry_reuses_the_record(exporting):
    volume = exporting.backend.create_volume(1, name='data')
    exporting.driver.fail['create_export'] = RuntimeError('target busy')
    with pytest.raises(DriverOperationError, match="Failed to export connection of volume 'data' to host "
                                                   "'node-a' on backend 'fake': target busy"):
        volume.connect(NODE)
    [record] = Backend.persistence.connection_records(volume_id=volume.id)
    assert record['status'] == 'error_connecting' and volume.status == 'available'
    del exporting.driver.fail['create_export']
    connection = volume.connect(NODE)
    assert connection.id == record['id'] and connection.connected


def test_a_connector_the_driver_refuses_changes_nothing(exporting):
    volume = exporting.backend.create_volume(1, name='data')
    with pytest.raises(InvalidRequest, match="The connector of host 'bare' lacks what backend 'fake' needs to "
                                             'export to it: The volume driver requires the iSCSI initiator'):
        volume.connect({'host': 'bare'})
    with pytest.raises(InvalidRequest, match="connector has no 'host'"):
        volume.connect({'initiator': 'iqn.x'})
    assert Backend.persistence.connection_records() == [] and 'create_export' not in exporting.driver.calls


def test_delete_is_refused_while_connected(exporting):
    volume = exporting.backend.create_volume(1, name='data')
    volume.connect(NODE)
    with pytest.raises(InvalidRequest, match="it is connected to host 'node-a'; disconnect it first"):
        volume.delete()
    assert 'delete_volume' not in exporting.driver.calls


def test_a_connections_detach_keeps_it_connected_until_disconnect(exporting):
    # cinderlib's test_attach_detach_volume_via_attachment: Connection.detach only detaches the device.
    volume = exporting.backend.create_volume(1, name='data')
    attach = volume.attach()
    attach.detach()
    assert not attach.attached and attach.connected and volume.local_attach is None
    assert attach in volume.connections and exporting.driver.calls[-1] != 'terminate_connection'
    attach.disconnect()
    assert attach not in volume.connections
    assert exporting.driver.calls[-2:] == ['terminate_connection', 'remove_export']


def test_attach_connects_and_attaches_with_os_brick_then_detach_undoes_both(exporting):
    volume = exporting.backend.create_volume(1, name='data')
    connection = volume.attach(device_scan_attempts=5)
    exporting.runtime.connector_properties.assert_called_once_with(False, False)
    [conn_info, multipath, attempts] = exporting.runtime.initiator.call_args.args
    assert (conn_info['driver_volume_type'], multipath, attempts) == ('iscsi', False, 5)
    [call] = exporting.initiator.calls
    assert call[0] == 'connect_volume' and call[1]['auth_password'] == 's3cret-chap-pw'
    assert connection.path == str(exporting.initiator.path) and connection.attached
    assert volume.local_attach.id == connection.id
    stored = Backend.persistence.connection_records(connection_id=connection.id)[0]
    assert stored['attach_status'] == 'attached' and stored['attached_host'] == 'node-a'
    assert stored['device']['scsi_wwn'] == '36001405' and stored['path'] == str(exporting.initiator.path)

    # Attached already: nothing is called again.
    assert volume.attach().id == connection.id and len(exporting.initiator.calls) == 1

    path = connection.path
    volume.detach(force=True)
    name, data, device, force, ignore_errors = exporting.initiator.calls[-1]
    assert name == 'disconnect_volume' and device['path'] == path and force and ignore_errors
    # One object per connection, as in cinderlib: the one attach() gave is detached too.
    assert not connection.attached and connection.path is None
    assert exporting.driver.calls[-2:] == ['terminate_connection', 'remove_export']
    assert volume.connections == [] and volume.status == 'available'


@pytest.mark.parametrize('how, why', [('gone', 'which is gone'), ('restarted', 'and the host restarted since')])
@pytest.mark.parametrize('state', ['present', 'absent'])
def test_an_attach_whose_device_is_gone_gets_its_export_restored_then_attached_again_or_detached(
        exporting, monkeypatch, state, how, why):
    monkeypatch.setattr(connections, 'boot_id', lambda: 'boot-1')
    volume = exporting.backend.create_volume(1, name='data')
    connection = volume.attach()
    assert connection.record['attached_boot'] == 'boot-1'
    exporting.exports.exports.clear()
    if how == 'gone':
        exporting.initiator.path.unlink()
    else:
        # The host restarted: the recorded path exists, but may be another volume's device now.
        monkeypatch.setattr(connections, 'boot_id', lambda: 'boot-2')
    ensure = connection_state.ensure_local_present if state == 'present' else connection_state.ensure_local_absent
    calls = len(exporting.driver.calls)

    changed, before, _after, [message] = ensure(exporting.backend, params(state=state), True)
    assert changed and before['path'] == connection.path and 'will be restored' in message
    assert len(exporting.driver.calls) == calls and not exporting.exports.exports

    changed, before, after, [message] = ensure(exporting.backend, params(state=state), False)
    assert changed and '%s: its export was restored' % why in message, message
    assert exporting.driver.calls[calls] == 'ensure_export'
    if state == 'present':
        assert after['attached'] and after['path'] == str(exporting.initiator.path)
        assert exporting.initiator.path.exists() and exporting.exports.exports == {volume.name}
        assert exporting.initiator.calls[-1][0] == 'connect_volume'
        assert Backend.persistence.connection_records(connection_id=connection.id)[0]['attached_boot'] == \
            connections.boot_id()
        # Attached again: the next run changes nothing and warns of nothing.
        assert ensure(exporting.backend, params(state=state), False)[0::3] == (False, [])
    else:
        assert after is None and exporting.driver.calls[-2:] == ['terminate_connection', 'remove_export']
        assert conn_records(volume) == {} and volume_status(volume) == 'available'


def test_a_failed_attach_undoes_the_export_it_made(exporting):
    volume = exporting.backend.create_volume(1, name='data')
    exporting.initiator.fail['connect_volume'] = RuntimeError('iSCSI login failed')
    with pytest.raises(DriverOperationError, match="Failed to attach volume 'data' on this host: iSCSI login failed"):
        volume.attach()
    assert volume.connections == [] and exporting.driver.calls[-1] == 'remove_export'
    assert volume.status == 'available'


def test_each_connection_operation_stores_its_transitional_status_around_its_call(exporting, monkeypatch):
    volume = exporting.backend.create_volume(1, name='data')
    seen = []

    def at_point(point):
        [record] = Backend.persistence.connection_records(volume_id=volume.id)
        seen.append((point, record['status'], record['attach_status']))
    monkeypatch.setattr(operations, '_test_kill_point', at_point)
    connection = volume.attach()
    exporting.initiator.fail['disconnect_volume'] = RuntimeError('device busy')
    with pytest.raises(DriverOperationError, match='device busy'):
        connection.detach()
    assert Backend.persistence.connection_records(volume_id=volume.id)[0]['attach_status'] == 'error_detaching'
    del exporting.initiator.fail['disconnect_volume']
    connection.detach()
    connection.disconnect()
    assert seen == [
        ('connection.connect.before_driver', 'connecting', 'detached'),
        ('connection.connect.after_driver', 'connecting', 'detached'),
        ('connection.attach.before_driver', 'connected', 'attaching'),
        ('connection.attach.after_driver', 'connected', 'attaching'),
        ('connection.detach.before_driver', 'connected', 'detaching'),
        ('connection.detach.before_driver', 'connected', 'detaching'),
        ('connection.detach.after_driver', 'connected', 'detaching'),
        ('connection.disconnect.before_driver', 'disconnecting', 'detached'),
        ('connection.disconnect.after_driver', 'disconnecting', 'detached'),
    ]
    assert volume.connections == [] and volume.status == 'available'


def test_extend_of_an_attached_volume_grows_the_device(exporting):
    volume = exporting.backend.create_volume(1, name='data')
    volume.attach()
    volume.extend(2)
    assert exporting.initiator.calls[-1][0] == 'extend_volume' and volume.size == 2 and volume.status == 'in-use'
    exporting.initiator.fail['extend_volume'] = RuntimeError('rescan failed')
    with pytest.raises(DriverOperationError, match=r"Volume 'data' grew to 3 GiB on the backend, but its device on "
                                                   r'this host was not grown: .*rescan failed'):
        volume.extend(3)
    assert volume.size == 3


def test_connect_in_a_new_process_reads_connections_from_the_store(exporting):
    volume = exporting.backend.create_volume(1, name='data')
    connection = volume.connect(NODE)
    [found] = exporting.backend.volumes_filtered(volume_name='data')
    assert [c.id for c in found.connections] == [connection.id] and found.connection_for('node-a').connected


# -- the module's state functions ----------------------------------------------------------------
def params(**given):
    base = {'volume': 'data', 'state': 'present', 'connector': None, 'connection_id': None, 'conn_info': None,
            'multipath': False, 'enforce_multipath': False, 'device_scan_attempts': 3, 'attach_mode': 'rw',
            'force': False, 'output_all_backend_info': False, 'backend': 'fake'}
    base.update(given)
    return base


def test_export_to_a_node_id_check_mode_real_and_again(exporting):
    exporting.backend.create_volume(1, name='data')
    Backend.persistence.put('connector', {'id': 'n1', 'host': 'node-a', 'connector': NODE})
    changed, before, after, _messages = connection_state.ensure_export_present(
        exporting.backend, params(connector='n1'), True)
    assert changed and before is None and after['host'] == 'node-a' and after['conn_info'] is None
    assert Backend.persistence.connection_records() == []
    changed, _before, after, _messages = connection_state.ensure_export_present(
        exporting.backend, params(connector='n1'), False)
    assert changed and after['node_id'] == 'n1' and after['conn_info']['driver_volume_type'] == 'iscsi'
    assert 'auth_password' not in after['conn_info']['data']
    changed, _before, again, messages = connection_state.ensure_export_present(
        exporting.backend, params(connector='n1'), False)
    assert not changed and again['id'] == after['id'] and messages == []
    changed, _before, shown, messages = connection_state.ensure_export_present(
        exporting.backend, params(connector=dict(NODE, initiator='iqn.new'), output_all_backend_info=True), False)
    assert not changed and shown['conn_info']['data']['auth_password'] == 's3cret-chap-pw'
    assert 'exists with other connector properties' in messages[0]
    # absent by node id: check mode, real, again
    assert connection_state.ensure_export_absent(exporting.backend, params(connector='n1'), True)[0]
    assert connection_state.ensure_export_absent(exporting.backend, params(connector='n1'), False)[0]
    assert not connection_state.ensure_export_absent(exporting.backend, params(connector='n1'), False)[0]


def test_export_to_an_unknown_node_id_fails_clearly(exporting):
    exporting.backend.create_volume(1, name='data')
    with pytest.raises(NotFound, match="no connector properties are stored under node id 'ghost'; run "
                                       'cinderlib.storage.cinderlib_connector with node_id=ghost'):
        connection_state.ensure_export_present(exporting.backend, params(connector='ghost'), False)


def test_consumer_attach_by_connection_id_restores_chap_and_records_the_attach(exporting):
    volume = exporting.backend.create_volume(1, name='data')
    connection = volume.connect(NODE)
    exporting.initiator.path.unlink(missing_ok=True)
    library = SimpleNamespace(Backend=Backend)
    given = params(volume=None, connection_id=connection.id, backend=None)
    changed, before, after, _messages = connection_state.ensure_consumer_present(library, given, True)
    assert changed and not before['attached'] and after['attached'] and exporting.initiator.calls[-1][0] != (
        'connect_volume')
    changed, _before, after, _messages = connection_state.ensure_consumer_present(library, given, False)
    assert changed and after['path'] == str(exporting.initiator.path)
    assert exporting.initiator.calls[-1][1]['auth_password'] == 's3cret-chap-pw'
    stored = Backend.persistence.connection_records(connection_id=connection.id)[0]
    assert stored['attached'] and stored['attached_host'] == 'node-a'
    assert not connection_state.ensure_consumer_present(library, given, False)[0]
    assert connection_state.ensure_consumer_absent(library, given, False)[0]
    assert not connection_state.ensure_consumer_absent(library, given, False)[0]
    assert not Backend.persistence.connection_records(connection_id=connection.id)[0]['attached']


def test_consumer_conn_info_without_the_chap_password_is_refused(exporting):
    volume = exporting.backend.create_volume(1, name='data')
    info = secrets.without_secrets(volume.connect(NODE).conn_info)  # as the Ansible layer shows it
    library = SimpleNamespace(Backend=Backend)
    with pytest.raises(InvalidRequest, match="conn_info asks for CHAP authentication \\(user 'chapuser'\\) but "
                                             'holds no auth_password'):
        connection_state.ensure_consumer_present(library, params(volume=None, conn_info=info), False)
    assert not any(call[0] == 'connect_volume' for call in exporting.initiator.calls)


@pytest.mark.parametrize('given, message', [
    ({'conn_info': {'data': {}}}, "conn_info must be a backend's connection info"),
    ({'conn_info': {'driver_volume_type': 'iscsi', 'data': {}}, 'connector': 'n1'},
     'connector is for the storage host'),
    ({'volume': None}, 'volume is required'),
    ({'backend': None}, "backend is required to connect volume 'data'"),
    ({'connector': 5}, 'connector must be a dict of connector properties or a node id'),
    ({'connector': ''}, 'connector is empty'),
    ({'device_scan_attempts': 0}, 'device_scan_attempts must be 1 or more'),
])
def test_bad_options_are_refused_before_anything_opens(given, message):
    with pytest.raises(InvalidRequest, match=message):
        connection_state.check_connection_params(params(**given))


# -- os-brick itself -----------------------------------------------------------------------------
def test_brick_runtime_calls_os_brick_with_the_library_settings(tmp_path, monkeypatch):
    from os_brick import exception as brick_exception
    from os_brick.initiator import connector as brick_connector
    settings = loader.make_settings({'file_locks_path': str(tmp_path / 'locks')})
    monkeypatch.setattr(brick.BrickRuntime, '_instance', None)
    runtime = brick.BrickRuntime.get(settings)
    made = mock.Mock()
    made.connect_volume.return_value = {'path': '/dev/sdz', 'type': 'block'}
    factory = mock.Mock(return_value=made)
    properties = mock.Mock(return_value={'host': 'h', 'initiator': 'iqn.h'})
    monkeypatch.setattr(brick_connector.InitiatorConnector, 'factory', factory)
    monkeypatch.setattr(brick_connector, 'get_connector_properties', properties)

    assert runtime.connector_properties(True, False, my_ip='192.0.2.1', host='h')['initiator'] == 'iqn.h'
    properties.assert_called_once_with(settings.root_helper, '192.0.2.1', True, False, host='h')
    info = {'driver_volume_type': 'iscsi', 'data': {'target_iqn': 'iqn.t'}}
    assert brick.attach(runtime, info, use_multipath=True, device_scan_attempts=7)['path'] == '/dev/sdz'
    factory.assert_called_with('iscsi', settings.root_helper, use_multipath=True, device_scan_attempts=7,
                               conn=info, do_local_attach=True)
    made.connect_volume.assert_called_once_with({'target_iqn': 'iqn.t'})
    brick.detach(runtime, info, {'path': '/dev/sdz'}, force=True)
    made.disconnect_volume.assert_called_once_with({'target_iqn': 'iqn.t'}, {'path': '/dev/sdz'}, force=True,
                                                   ignore_errors=True)
    made.extend_volume.return_value = 5
    assert brick.extend(runtime, info) == 5
    made.connect_volume.return_value = {'type': 'block'}
    with pytest.raises(DriverOperationError, match='gave no device path'):
        brick.attach(runtime, info)
    made.get_volume_paths.side_effect = OSError("[Errno 2] No such file or directory: 'iscsiadm'")
    with pytest.raises(DriverOperationError, match="the command 'iscsiadm' is not installed on this host"):
        brick.existing_paths(runtime, info)
    factory.side_effect = brick_exception.InvalidConnectorProtocol('Invalid InitiatorConnector protocol')
    with pytest.raises(InvalidRequest, match="os-brick can't attach volumes of protocol 'carrier-pigeon'"):
        brick.attach(runtime, {'driver_volume_type': 'carrier-pigeon', 'data': {}})


def test_rbd_volumes_are_mapped_as_local_block_devices(tmp_path, monkeypatch):
    # As cinderlib made its connectors: os-brick's own RBD connector with
    # do_local_attach, which attaches with `rbd map` (a /dev/rbd/<pool>/<image>
    # path) instead of a librbd handle inside this process.
    settings = loader.make_settings({'file_locks_path': str(tmp_path / 'locks')})
    monkeypatch.setattr(brick.BrickRuntime, '_instance', None)
    runtime = brick.BrickRuntime.get(settings)
    info = {'driver_volume_type': 'rbd', 'data': {'name': 'volumes/volume-1', 'hosts': ['127.0.0.1']}}
    initiator = runtime.initiator(info)
    assert type(initiator).__name__ == 'RBDConnector' and initiator.do_local_attach is True


def test_conn_info_with_chap_only_fills_a_matching_user():
    info = {'driver_volume_type': 'iscsi', 'data': {'auth_method': 'CHAP', 'auth_username': 'u'}}
    assert connections.conn_info_with_chap(info, 'CHAP u pw')['data']['auth_password'] == 'pw'
    assert 'auth_password' not in connections.conn_info_with_chap(info, 'CHAP other pw')['data']
    assert 'auth_password' not in connections.conn_info_with_chap(info, None)['data']
    assert 'auth_password' not in info['data']


# -- what runs that died left: settled by the next run and by reconcile ----------------------------
class Killed(BaseException):
    """Stands for SIGKILL at a crash point: no handler of the library runs."""


@pytest.fixture
def kill_at(monkeypatch):
    """``kill_at('connection.connect.after_driver', func, *args)``: run ``func``
    until that crash point, as a process killed there would."""
    def run(point, func, *args):
        def crash(at):
            if at == point:
                raise Killed(at)
        monkeypatch.setattr(operations, '_test_kill_point', crash)
        with pytest.raises(Killed):
            func(*args)
        monkeypatch.setattr(operations, '_test_kill_point', lambda at: None)
    return run


def conn_records(volume) -> dict:
    return {r['host']: r['status'] for r in Backend.persistence.connection_records(volume_id=volume.id)}


def volume_status(volume) -> str:
    return Backend.persistence.volume_records(volume_id=volume.id)[0]['status']


def test_reconcile_ends_the_connections_killed_runs_left(exporting, kill_at):
    backend = exporting.backend
    half_made = backend.create_volume(1, name='half-made')
    kill_at('connection.connect.after_driver', half_made.connect, NODE)
    half_gone = backend.create_volume(1, name='half-gone')
    kill_at('connection.disconnect.before_driver', half_gone.disconnect, half_gone.connect(NODE))
    shared = backend.create_volume(1, name='shared')
    shared.connect(dict(NODE, host='node-b'))
    kill_at('connection.connect.before_driver', shared.connect, NODE)
    assert (conn_records(half_made), conn_records(half_gone), conn_records(shared)) == (
        {'node-a': 'connecting'}, {'node-a': 'disconnecting'}, {'node-a': 'connecting', 'node-b': 'connected'})
    assert exporting.exports.exports == {'volume-%s' % v.id for v in (half_made, half_gone, shared)}

    for mode, check_mode in (('report', False), ('resolve', True)):
        report = reconcile(backend, mode, check_mode)
        assert sorted((t['kind'], t['host'], t['status'], t['in_progress']) for t in report['transitional']) == [
            ('connection', 'node-a', 'connecting', False), ('connection', 'node-a', 'connecting', False),
            ('connection', 'node-a', 'disconnecting', False)]
    assert {a['action'] for a in report['actions']} == {'removed'}
    assert conn_records(half_made) == {'node-a': 'connecting'} and conn_records(half_gone) == {
        'node-a': 'disconnecting'}

    exporting.driver.calls.clear()
    report = reconcile(backend, 'resolve')
    actions = {a['volume_id']: a for a in report['actions']}
    assert {v: (a['kind'], a['action'], a['new_status']) for v, a in actions.items()} == {
        v.id: ('connection', 'removed', None) for v in (half_made, half_gone, shared)}
    assert 'no host got its connection info' in actions[half_made.id]['reason']
    # The export stays for node-b, which still uses it; the others are gone.
    assert exporting.exports.exports == {'volume-%s' % shared.id}
    assert exporting.driver.calls.count('terminate_connection') == 3
    assert (conn_records(half_made), conn_records(half_gone), conn_records(shared)) == (
        {}, {}, {'node-b': 'connected'})
    assert [volume_status(v) for v in (half_made, half_gone, shared)] == ['available', 'available', 'in-use']
    assert reconcile(backend, 'resolve')['actions'] == []
    half_made.refresh()
    half_made.delete()


def test_reconcile_skips_a_run_in_progress_and_an_attached_connection(exporting, kill_at):
    busy = exporting.backend.create_volume(1, name='busy')
    kill_at('connection.connect.before_driver', busy.connect, NODE)
    with locks.locked(locks.volume_lock_name(busy.id), 'busy'):
        [action] = reconcile(exporting.backend, 'resolve')['actions']
        assert (action['action'], action['in_progress']) == ('skipped', True)
        # The next run's check mode does not wait for the lock either.
        changed, _before, _after, messages = connection_state.ensure_export_present(
            exporting.backend, params(volume='busy', connector=dict(NODE, host='node-b')), True)
        assert changed and "has status 'connecting' and was left alone: another run holds" in messages[0]
    assert conn_records(busy) == {'node-a': 'connecting'}
    # A record that says a host attached through it is never ended behind that host's back.
    record = Backend.persistence.connection_records(volume_id=busy.id)[0]
    Backend.persistence.put('connection', dict(record, status='error_disconnecting', attached=True,
                                               attached_host='node-a'))
    [action] = reconcile(exporting.backend, 'resolve')['actions']
    assert action['action'] == 'skipped' and "attached on host 'node-a'" in action['reason']
    assert conn_records(busy) == {'node-a': 'error_disconnecting'}


def test_a_driver_that_fails_to_end_a_leftover_marks_it(exporting, kill_at):
    volume = exporting.backend.create_volume(1, name='stuck')
    kill_at('connection.disconnect.before_driver', volume.disconnect, volume.connect(NODE))
    exporting.driver.fail['terminate_connection'] = RuntimeError('array unreachable')
    [action] = reconcile(exporting.backend, 'resolve')['actions']
    assert (action['action'], action['new_status']) == ('marked_error', 'error_disconnecting')
    assert 'ending its export failed' in action['reason'] and 'array unreachable' in action['reason']
    # Its export may still be there: the volume stays in-use until a resolve succeeds.
    assert conn_records(volume) == {'node-a': 'error_disconnecting'} and volume_status(volume) == 'in-use'
    del exporting.driver.fail['terminate_connection']
    [action] = reconcile(exporting.backend, 'resolve')['actions']
    assert action['action'] == 'removed' and conn_records(volume) == {} and volume_status(volume) == 'available'


def test_reconcile_removes_the_connection_of_a_volume_that_is_gone(exporting):
    volume = exporting.backend.create_volume(1, name='gone')
    connection = connections.Connection(volume, NODE)
    connection._save(status='error_connecting')
    Backend.persistence.remove('volume', volume.id)
    [action] = reconcile(exporting.backend, 'resolve')['actions']
    assert action['action'] == 'removed' and 'no longer in the state store' in action['reason']
    assert Backend.persistence.connection_records() == []


def test_a_crash_between_the_last_two_writes_leaves_a_leftover(exporting, monkeypatch):
    # The volume's status is written before the connection's record: a crash in between
    # leaves the record transitional, which settling finds (never a silent in-use volume).
    volume = exporting.backend.create_volume(1, name='order')
    real_save = connections.Connection._save

    def crash_on_final_save(self, **changes):
        if changes.get('status') == connections.CONNECTED:
            raise Killed('between the writes')
        real_save(self, **changes)
    monkeypatch.setattr(connections.Connection, '_save', crash_on_final_save)
    with pytest.raises(Killed):
        volume.connect(NODE)
    monkeypatch.setattr(connections.Connection, '_save', real_save)
    assert conn_records(volume) == {'node-a': 'connecting'} and volume_status(volume) == 'in-use'
    [action] = reconcile(exporting.backend, 'resolve')['actions']
    assert action['action'] == 'removed' and volume_status(volume) == 'available'


def test_the_next_run_on_the_volume_settles_leftovers_first(exporting, kill_at):
    backend = exporting.backend
    volume = backend.create_volume(1, name='data')
    kill_at('connection.connect.after_driver', volume.connect, dict(NODE, host='node-b'))
    kill_at('connection.connect.before_driver', volume.connect, NODE)
    # Check mode says what it would do and does nothing.
    changed, before, after, messages = connection_state.ensure_export_present(backend, params(connector=NODE), True)
    assert changed and before['status'] == 'connecting' and after['status'] == 'connected'
    assert sorted(messages) == sorted(
        "Connection of volume 'data' to host '%s' was left with status 'connecting' (the run connecting it ended "
        'before it finished, so no host got its connection info): will end its export and remove its record.' % h
        for h in ('node-a', 'node-b'))
    assert conn_records(volume) == {'node-a': 'connecting', 'node-b': 'connecting'}
    # For real: both ended, then node-a connected anew.
    changed, before, after, messages = connection_state.ensure_export_present(backend, params(connector=NODE), False)
    assert changed and after['status'] == 'connected' and after['id'] != before['id'] and len(messages) == 2
    assert 'ended its export and removed its record' in messages[0]
    assert conn_records(volume) == {'node-a': 'connected'} and volume_status(volume) == 'in-use'
    # A run that finds its connection in place but another host's leftover still reports a change.
    kill_at('connection.disconnect.after_driver', connection_state.ensure_export_absent, backend,
            params(connector=NODE), False)
    kill_at('connection.connect.after_driver', volume.connect, dict(NODE, host='node-b'))
    changed, before, after, messages = connection_state.ensure_export_absent(backend, params(connector=NODE), True)
    assert changed and before['status'] == 'disconnecting' and after is None and len(messages) == 2
    changed, before, after, messages = connection_state.ensure_export_absent(backend, params(connector=NODE), False)
    assert changed and after is None and conn_records(volume) == {} and volume_status(volume) == 'available'
    assert exporting.exports.exports == set()
    assert connection_state.ensure_export_absent(backend, params(connector=NODE), False) == (False, None, None, [])
    volume.refresh()
    volume.delete()


def test_the_local_attach_run_settles_leftovers_too(exporting, kill_at):
    volume = exporting.backend.create_volume(1, name='data')
    kill_at('connection.connect.after_driver', volume.attach)
    assert conn_records(volume) == {'node-a': 'connecting'}
    changed, before, after, messages = connection_state.ensure_local_absent(exporting.backend, params(), True)
    assert changed and before['status'] == 'connecting' and 'will end its export' in messages[0]
    changed, _before, after, messages = connection_state.ensure_local_present(exporting.backend, params(), False)
    assert changed and after['attached'] and 'ended its export' in messages[0]
    assert conn_records(volume) == {'node-a': 'connected'}
    kill_at('connection.disconnect.before_driver', connection_state.ensure_local_absent, exporting.backend,
            params(), False)
    changed, before, after, messages = connection_state.ensure_local_absent(exporting.backend, params(), False)
    assert changed and before['status'] == 'disconnecting' and after is None and len(messages) == 1
    assert conn_records(volume) == {} and volume_status(volume) == 'available'


def test_an_export_the_collection_did_not_make_is_never_ended(exporting):
    # The backend already has a target for the volume (made by hand): the driver's export fails.
    volume = exporting.backend.create_volume(1, name='shared')
    exporting.exports.exports.add(volume.name)
    exporting.driver.fail['create_export'] = RuntimeError('target iqn...:%s already exists' % volume.name)
    with pytest.raises(DriverOperationError, match="already exists"):
        volume.connect(NODE)
    assert conn_records(volume) == {'node-a': 'error_connecting'}
    del exporting.driver.fail['create_export']
    exporting.driver.calls.clear()
    report = reconcile(exporting.backend, 'report')
    assert report['actions'] == [] and exporting.driver.calls == []
    [action] = reconcile(exporting.backend, 'resolve')['actions']
    assert action['action'] == 'removed'
    assert "the backend's export of its volume was left as it is" in action['reason']
    # Neither its connection nor its export was touched on the backend.
    assert exporting.driver.calls == [] and exporting.exports.exports == {volume.name}
    assert conn_records(volume) == {} and volume_status(volume) == 'available'
    # An export the collection makes later is its own, and is removed on disconnect.
    exporting.exports.exports.clear()
    connection = volume.connect(NODE)
    volume.disconnect(connection)
    assert exporting.driver.calls[-2:] == ['terminate_connection', 'remove_export']
    assert exporting.exports.exports == set()


def test_a_target_the_backend_already_has_is_refused_before_anything_is_recorded(exporting):
    # An iSCSI target helper that can look its targets up (LIO, tgt): one named as the export would be.
    volume = exporting.backend.create_volume(1, name='shared')
    hand_made = 'iqn.2010-10.org.openstack:%s' % volume.name
    exporting.driver.target_driver = SimpleNamespace(
        configuration=SimpleNamespace(target_prefix='iqn.2010-10.org.openstack:'),
        _get_target=lambda iqn: 1 if iqn == hand_made else None)
    exporting.driver.calls.clear()
    for connect in (lambda: volume.connect(NODE), volume.attach):
        with pytest.raises(BackendObjectExists, match="already has a target named '%s', which this collection did "
                           'not make.*Nothing was recorded or changed' % hand_made):
            connect()
    # Only the connector was looked at.
    assert set(exporting.driver.calls) == {'validate_connector'}
    assert conn_records(volume) == {} and volume_status(volume) == 'available'
    # Once it is gone, the export is the collection's, and so are its later connections.
    hand_made = None
    volume.connect(NODE)
    volume.connect(dict(NODE, host='node-b'))
    assert exporting.driver.calls.count('create_export') == 1


def test_what_a_failed_export_leaves_under_a_name_that_was_free_is_the_collections(exporting):
    # The helper can look its targets up: the name was free, so a half-made target is the collection's.
    volume = exporting.backend.create_volume(1, name='data')
    exporting.driver.target_driver = SimpleNamespace(
        configuration=SimpleNamespace(target_prefix='iqn.2010-10.org.openstack:'), _get_target=lambda iqn: None)
    exporting.driver.fail['create_export'] = RuntimeError('portal bind failed')
    with pytest.raises(DriverOperationError, match='portal bind failed'):
        volume.connect(NODE)
    del exporting.driver.fail['create_export']
    exporting.driver.calls.clear()
    [action] = reconcile(exporting.backend, 'resolve')['actions']
    assert action['action'] == 'removed' and exporting.driver.calls == ['terminate_connection', 'remove_export']
    assert exporting.exports.exports == set() and conn_records(volume) == {}


def test_connect_keeps_cinderlibs_attachment_fields(exporting):
    volume = exporting.backend.create_volume(1, name='data')
    connection = volume.connect(NODE, attached_host='node-a', mountpoint='/dev/vdb', instance_uuid=None)
    [record] = Backend.persistence.connection_records(connection_id=connection.id)
    assert (record['attached_host'], record['mountpoint']) == ('node-a', '/dev/vdb')
    assert connection.connected and not connection.attached  # recorded, not attached by this library
