# The seed's XtremIO and Kaminario examples, through cinderlib.Backend, with
# the real Cinder 29 drivers (and, for Kaminario, the real krest client)
# talking HTTPS to the API simulators of tests/simulators on 127.0.0.1.
# No LVM is used: these tests need no lock.
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from functional_helpers import KAMINARIO_SEED, XTREMIO_SEED, run_adhoc

from ansible_collections.cinderlib.storage.tests.simulators import base
from ansible_collections.cinderlib.storage.tests.simulators.kaminario import KaminarioAPI
from ansible_collections.cinderlib.storage.tests.simulators.xtremio import XtremIOAPI

CONNECTOR = {'initiator': 'iqn.1993-08.org.debian:01:cinderlib-test', 'host': 'consumer-1', 'ip': '127.0.0.1',
             'multipath': False, 'platform': 'x86_64', 'os_type': 'linux'}
GIB = 1024 ** 2  # KiB, the arrays' unit


@pytest.fixture
def library(tmp_path):
    """The library in this process with a fresh registry and a SQLite store."""
    from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import Backend

    def reset():
        Backend.backends, Backend.global_initialization = {}, False
        Backend.settings = Backend.persistence = None

    reset()
    cinderlib.setup(persistence_config={'storage': 'db', 'connection': 'sqlite:///%s' % (tmp_path / 'state.db')},
                    file_locks_path=str(tmp_path / 'locks'))
    yield cinderlib
    reset()


def k2_volume(api, volume):
    hits = [v for v in api.objects['volumes'].values() if v['name'] == 'cv-' + volume.id]
    return hits[0] if hits else None


# -- XtremIO ------------------------------------------------------------------------
def test_xtremio_seed_example_initialises_and_reports_stats(library, xtremio):
    api, server = xtremio
    backend = library.Backend(**dict(XTREMIO_SEED, san_ip=server.address))
    assert backend.initialized
    assert type(backend.driver.client).__name__ == 'XtremIOClient42'  # XMS 4.2: the v2 API
    stats = backend.stats(refresh=True)
    assert stats['vendor_name'] == 'Dell EMC' and stats['storage_protocol'] == 'iSCSI'
    assert stats['pools'][0]['pool_name'] == 'xtremio'
    assert stats['pools'][0]['total_capacity_gb'] == 10240.0
    backend.create_volume(3)
    assert backend.stats(refresh=True)['pools'][0]['provisioned_capacity_gb'] == 3.0


def test_xtremio_volume_snapshot_clone_extend_connect_delete(library, xtremio):
    api, server = xtremio
    backend = library.Backend(**dict(XTREMIO_SEED, san_ip=server.address))
    volume = backend.create_volume(1, name='data')
    snapshot = volume.create_snapshot(name='snap')
    clone = volume.clone(name='clone', size=2)
    restored = snapshot.create_volume(name='restored', size=3)
    volume.extend(4)
    on_array = {v['name']: v for v in api.objects['volumes'].values()}
    assert int(on_array[volume.id]['vol-size']) == 4 * GIB
    assert on_array[snapshot.id]['snapshot-type'] == 'readonly'
    assert on_array[snapshot.id]['ancestor-vol-id'][1] == volume.id
    assert on_array[clone.id]['ancestor-vol-id'][1] == volume.id and int(on_array[clone.id]['vol-size']) == 2 * GIB
    assert on_array[restored.id]['ancestor-vol-id'][1] == snapshot.id
    assert int(on_array[restored.id]['vol-size']) == 3 * GIB

    # Export to another host's connector: cinderlib's Volume.connect().
    connection = volume.connect(CONNECTOR)
    assert connection.connected and volume.status == 'in-use'
    info = connection.conn_info
    assert info['driver_volume_type'] == 'iscsi'
    assert info['data']['target_lun'] == 1 and info['data']['target_portal'] == '127.0.0.1:3260'
    assert info['data']['target_iqn'].startswith('iqn.2008-05.com.xtremio:')
    assert 'auth_method' not in info['data']  # the simulated cluster has CHAP disabled
    [initiator] = api.objects['initiators'].values()
    [group] = api.objects['initiator-groups'].values()
    assert initiator['port-address'] == CONNECTOR['initiator'] and initiator['ig-id'] == group['ig-id']
    [lun_map] = api.objects['lun-maps'].values()
    assert (lun_map['vol-name'], lun_map['ig-name'], lun_map['lun']) == (volume.id, CONNECTOR['initiator'], 1)
    # Again: the same connection, the array is not asked.
    asked = len(api.requests)
    again = volume.connect(CONNECTOR)
    assert again.id == connection.id and len(api.requests) == asked
    assert [c.id for c in backend.volumes_filtered(volume_id=volume.id)[0].connections] == [connection.id]
    clone_connection = clone.connect(CONNECTOR)
    assert clone_connection.conn_info['data']['target_lun'] == 2 and api.count('lun-maps') == 2
    assert api.count('initiator-groups') == api.count('initiators') == 1  # one host, one group

    # A connected volume can't be deleted; nothing changes.
    with pytest.raises(library.InvalidRequest, match="it is connected to host 'consumer-1'; disconnect it first"):
        volume.delete()
    assert api.count('lun-maps') == 2 and volume.id in api.volume_names()

    connection.disconnect()
    assert [m['vol-name'] for m in api.objects['lun-maps'].values()] == [clone.id]
    volume.refresh()
    assert volume.status == 'available' and volume.connections == []
    clone.disconnect(clone_connection)
    assert api.count('lun-maps') == 0
    # The driver keeps the initiator and its group (xtremio_clean_unused_ig is false by default).
    assert api.count('initiator-groups') == api.count('initiators') == 1

    for resource in (restored, clone, snapshot, volume):
        resource.delete()
    assert api.volume_names() == []
    assert backend.volumes == []


def test_xtremio_delete_of_a_volume_gone_from_the_array_succeeds(library, xtremio):
    # The driver treats obj_not_found on delete as done; the simulator must say it that way.
    api, server = xtremio
    backend = library.Backend(**dict(XTREMIO_SEED, san_ip=server.address))
    volume = backend.create_volume(1, name='gone')
    with api.lock:
        api.objects['volumes'].clear()
    volume.delete()
    assert backend.volumes == []


def test_xtremio_verifies_the_simulator_certificate_when_asked(library, xtremio):
    api, server = xtremio
    cert = server.certfile
    backend = library.Backend(**dict(XTREMIO_SEED, san_ip=server.address, driver_ssl_cert_verify=True,
                                     driver_ssl_cert_path=cert))
    assert backend.driver.client.verify == cert
    backend.create_volume(1).delete()


def test_xtremio_clean_unused_ig_removes_the_initiator_group_on_disconnect(library, xtremio):
    api, server = xtremio
    backend = library.Backend(**dict(XTREMIO_SEED, san_ip=server.address, xtremio_clean_unused_ig=True))
    volume = backend.create_volume(1, name='data')
    volume.disconnect(volume.connect(CONNECTOR))
    assert api.count('lun-maps') == api.count('initiator-groups') == api.count('initiators') == 0
    volume.delete()


def test_module_refuses_to_delete_a_connected_volume_before_cascading_to_its_snapshots(library, xtremio):
    # cinderlib_volume's state=absent with cascade=true deletes snapshots
    # before the volume: the connection must stop it before the first one.
    from ansible_collections.cinderlib.storage.plugins.module_utils.volume_state import ensure_volume_absent
    api, server = xtremio
    backend = library.Backend(**dict(XTREMIO_SEED, san_ip=server.address))
    volume = backend.create_volume(1, name='data')
    snapshot = volume.create_snapshot(name='snap')
    volume.connect(CONNECTOR)
    for check_mode in (True, False):
        with pytest.raises(library.InvalidRequest, match="it is connected to host 'consumer-1'; disconnect it"):
            ensure_volume_absent(backend, {'name': 'data', 'id': None, 'cascade': True}, check_mode)
    assert api.volume_names() == sorted([volume.id, snapshot.id]) and api.count('lun-maps') == 1
    volume.refresh()
    assert [s.id for s in volume.snapshots] == [snapshot.id] and volume.status == 'in-use'


def test_xtremio_chap_passwords_are_kept_as_the_driver_gave_them_and_never_shown(library, xtremio_chap, tmp_path):
    # With CHAP on, the driver gives the initiator passwords and puts them in
    # the connection info: conn_info and the record keep them (as cinderlib's
    # did), views and serialized output don't.
    api, server = xtremio_chap
    backend = library.Backend(**dict(XTREMIO_SEED, san_ip=server.address))
    volume = backend.create_volume(1, name='data')
    connection = volume.connect(CONNECTOR)
    [initiator] = api.objects['initiators'].values()
    login = initiator['chap-authentication-initiator-password']
    discovery = initiator['chap-discovery-initiator-password']
    assert login and discovery
    # conn_info is the driver's answer, CHAP included, and so is the record (as in cinderlib):
    # another process attaches with it, discovery's password included.
    full = connection.conn_info['data']
    assert (full['auth_method'], full['auth_username'], full['auth_password']) == ('CHAP', 'chap_user', login)
    assert full['discovery_auth_method'] == 'CHAP' and full['discovery_auth_password'] == discovery
    [stored] = library.Backend.persistence.connection_records(connection_id=connection.id)
    assert stored['conn_info']['data'] == full
    shown = json.dumps([connection.to_dict(), connection.json, volume.json])
    assert login not in shown and discovery not in shown
    # The backend's own credentials are never stored.
    assert b'xtremio_password' not in (tmp_path / 'state.db').read_bytes()
    volume.disconnect(connection)
    assert api.count('lun-maps') == 0
    volume.delete()


# -- Kaminario ----------------------------------------------------------------------
def test_kaminario_seed_example_initialises_and_reports_stats(library, kaminario):
    import krest
    api, server = kaminario
    backend = library.Backend(**dict(KAMINARIO_SEED, san_ip=server.address))
    assert backend.initialized
    assert isinstance(backend.driver.client, krest.EndPoint)
    stats = backend.stats(refresh=True)
    assert stats['vendor_name'] == 'Kaminario' and stats['storage_protocol'] == 'iSCSI'
    assert stats['pools'][0]['pool_name'] == 'kaminario_iscsi'
    assert stats['pools'][0]['total_capacity_gb'] == 10240.0


def test_kaminario_volume_snapshot_extend_connect_delete(library, kaminario):
    api, server = kaminario
    backend = library.Backend(**dict(KAMINARIO_SEED, san_ip=server.address))
    volume = backend.create_volume(1, name='data')
    k2vol = k2_volume(api, volume)
    assert k2vol['size'] == GIB
    assert api.names('volume_groups') == ['cvg-' + volume.id]
    snapshot = volume.create_snapshot(name='snap')
    [k2snap] = api.objects['snapshots'].values()
    assert k2snap['short_name'] == 'cs-' + snapshot.id and k2snap['source'] == k2vol['volume_group']
    volume.extend(2)
    assert k2_volume(api, volume)['size'] == 2 * GIB

    connection = volume.connect(CONNECTOR)
    assert connection.conn_info == {'driver_volume_type': 'iscsi', 'data': {
        'target_iqn': 'iqn.2009-01.com.kaminario:storage.k2.simulator', 'target_portal': '127.0.0.1:3260',
        'target_lun': 1, 'target_discovered': True, 'access_mode': 'rw'}}
    [host] = api.objects['hosts'].values()
    [iqn] = api.objects['host_iqns'].values()
    assert host['name'] == CONNECTOR['host']  # unique_fqdn_network (default): hosts are named after the connector
    assert iqn['iqn'] == CONNECTOR['initiator'] and iqn['host'] == {'ref': '/hosts/%d' % host['id']}
    [mapping] = api.objects['mappings'].values()
    assert mapping == {'id': mapping['id'], 'volume': {'ref': '/volumes/%d' % k2vol['id']},
                       'host': {'ref': '/hosts/%d' % host['id']}, 'lun': 1}
    asked = len(api.requests)
    assert volume.connect(CONNECTOR).id == connection.id and len(api.requests) == asked
    with pytest.raises(library.InvalidRequest, match="it is connected to host 'consumer-1'"):
        volume.delete()
    assert api.count('mappings') == 1 and k2_volume(api, volume) is not None
    connection.disconnect()
    assert api.count('mappings') == 0 and api.count('hosts') == 0  # the driver removes a host left unmapped
    assert api.count('host_iqns') == 0
    volume.refresh()
    assert volume.status == 'available' and volume.connections == []

    snapshot.delete()
    volume.delete()
    assert api.count('volumes') == api.count('volume_groups') == api.count('snapshots') == 0


@pytest.mark.parametrize('operation', ['clone', 'from_snapshot'])
def test_kaminario_copies_need_an_attach_and_fail_cleanly_here(library, kaminario, operation):
    # The K2 driver makes clones and volumes from snapshots by attaching both
    # volumes to this host over iSCSI and copying the data (no array-side
    # copy); this host has no iSCSI initiator (the molecule vm scenario runs
    # them with the simulator's LIO data path). The failure must be clear and
    # leave nothing on the array.
    api, server = kaminario
    backend = library.Backend(**dict(KAMINARIO_SEED, san_ip=server.address))
    volume = backend.create_volume(1, name='source')
    snapshot = volume.create_snapshot(name='snap')
    before = {t: api.count(t) for t in ('volumes', 'volume_groups', 'snapshots', 'hosts', 'mappings')}
    with pytest.raises(library.DriverOperationError) as error:
        if operation == 'clone':
            volume.clone(name='copy')
        else:
            snapshot.create_volume(name='copy')
    assert str(error.value).startswith(("Failed to clone volume 'source' into volume 'copy'",
                                        "Failed to create from snapshot 'snap' volume 'copy'"))
    assert 'KaminarioCinderDriver failure' in str(error.value)
    assert {t: api.count(t) for t in before} == before
    [copy] = backend.volumes_filtered(volume_name='copy')
    assert copy.status == 'error'


# -- both ---------------------------------------------------------------------------
@pytest.mark.parametrize('array', ['xtremio', 'kaminario'])
def test_wrong_password_is_a_clear_error_without_the_secret(library, request, array):
    api, server = request.getfixturevalue(array)
    seed = XTREMIO_SEED if array == 'xtremio' else KAMINARIO_SEED
    wrong = 'Wr0ng-pa55word-%s' % array
    with pytest.raises(library.BackendInitError) as error:
        library.Backend(**dict(seed, san_ip=server.address, san_password=wrong))
    message = str(error.value)
    assert message.startswith("Backend '%s' could not be initialised by its driver" % seed['volume_backend_name'])
    assert '401' in message or 'authentication failed' in message
    assert wrong not in message and seed['san_password'] not in message
    assert seed['volume_backend_name'] not in library.Backend.backends
    assert api.count('volumes') == 0


@pytest.mark.parametrize('array', ['xtremio', 'kaminario'])
def test_module_with_a_wrong_password_fails_clearly_and_never_shows_it(tmp_path, collections_path, request, array):
    api, server = request.getfixturevalue(array)
    seed = XTREMIO_SEED if array == 'xtremio' else KAMINARIO_SEED
    wrong = 'Wr0ng-pa55word-%s' % array
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false')
    args = {'backend': dict(seed, san_ip=server.address, san_password=wrong),
            'persistence': {'storage': 'db', 'connection': 'sqlite:///%s' % (tmp_path / 'state.db')}}
    cmd = [str(Path(sys.executable).parent / 'ansible'), 'localhost', '-c', 'local', '-vvv',
           '-e', 'ansible_python_interpreter=%s' % sys.executable,
           '-m', 'cinderlib.storage.cinderlib_backend_facts', '-a', json.dumps(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "could not be initialised by its driver" in output
    assert wrong not in output
    # And the plain (not -vvv) result message.
    rc, result, raw = run_adhoc('cinderlib.storage.cinderlib_backend_facts', args, env)
    assert rc != 0 and 'msg' in result, raw
    assert result['msg'].startswith("Backend '%s' could not be initialised" % seed['volume_backend_name'])
    assert wrong not in raw


# -- the simulators themselves -------------------------------------------------------
def test_simulators_refuse_wrong_credentials_and_serve_tls_only(xtremio, kaminario):
    for (api, server), path in ((xtremio, '/api/json/v2/types/clusters'), (kaminario, '/api/v2')):
        url = 'https://%s%s' % (server.address, path)
        assert requests.get(url, auth=(api.login, 'nope'), verify=False, timeout=30).status_code == 401
        assert requests.get(url, verify=False, timeout=30).status_code == 401
        assert requests.get(url, auth=(api.login, api.password), verify=False, timeout=30).status_code == 200
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get('http://%s%s' % (server.address, path), timeout=30)


def test_xtremio_simulator_answers_missing_objects_as_the_driver_expects(xtremio):
    api, server = xtremio
    answer = requests.get('https://%s/api/json/v2/types/volumes' % server.address, params={'name': 'nope'},
                          auth=(api.login, api.password), verify=False, timeout=30)
    assert answer.status_code == 400 and answer.json()['message'].endswith('obj_not_found')


def test_simulator_refuses_non_loopback_addresses(tmp_path):
    with pytest.raises(ValueError, match='loopback'):
        base.start(XtremIOAPI('u', 'p'), tmp_path, host='0.0.0.0')


@pytest.mark.parametrize('module', ['xtremio', 'kaminario'])
def test_simulator_cli_writes_its_port_and_stops_on_sigterm(tmp_path, module):
    port_file = tmp_path / 'port'
    env = dict(os.environ, SIMULATOR_PASSWORD='cli-secret')
    proc = subprocess.Popen([sys.executable, '-m', 'ansible_collections.cinderlib.storage.tests.simulators.' + module,
                             '--login', 'admin', '--port-file', str(port_file), '--cert-dir', str(tmp_path / 'c')],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert port_file.exists(), proc.stderr.read() if proc.poll() is not None else 'no port file'
        port = int(port_file.read_text())
        path = '/api/json/types/clusters' if module == 'xtremio' else '/api/v2'
        answer = requests.get('https://127.0.0.1:%d%s' % (port, path), auth=('admin', 'cli-secret'), verify=False,
                              timeout=30)
        assert answer.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert 'cli-secret' not in out + err


# -- the K2 simulator's data path (tests/simulators/datapath.py) --------------------
def _k2(api, method, path, body=None):
    return api.handle(method, '/api/v2' + path, {}, body)[1]


def _read(data, key, offset, length):
    with open(data.path(key), 'rb') as handle:
        handle.seek(offset)
        return handle.read(length)


def _write(data, key, offset, payload):
    with open(data.path(key), 'r+b') as handle:
        handle.seek(offset)
        handle.write(payload)


def test_kaminario_data_path_keeps_snapshots_and_views_point_in_time(tmp_path):
    # The K2 calls the driver makes for a volume, a snapshot and a view of it
    # (create_volume_from_snapshot), with the blocks kept in sparse files; the
    # LIO export of those files runs in the molecule vm scenario.
    (tmp_path / 'data').mkdir()
    (tmp_path / 'data' / 'volume-1').write_bytes(b'left by an earlier run')
    (tmp_path / 'data' / 'notes.txt').write_text('not the simulator\'s')
    api = KaminarioAPI('u', 'p', data_dir=str(tmp_path / 'data'))
    data = api.data
    assert data.keys() == [] and (tmp_path / 'data' / 'notes.txt').exists()
    group = _k2(api, 'POST', '/volume_groups', {'name': 'cvg-1'})
    volume = _k2(api, 'POST', '/volumes', {'name': 'cv-1', 'size': GIB, 'volume_group': {'ref': '/volume_groups/%d'
                                                                                         % group['id']}})
    key = 'volume-%d' % volume['id']
    assert data.size(key) == GIB * 1024
    assert os.stat(data.path(key)).st_blocks == 0  # sparse
    _write(data, key, 4096, b'before the snapshot')

    policy = {'ref': '/retention_policies/1'}
    snap = _k2(api, 'POST', '/snapshots', {'short_name': 'cs-1', 'source': {'ref': '/volume_groups/%d' % group['id']},
                                           'retention_policy': policy})
    _write(data, key, 4096, b'after the snapshot!')
    view = _k2(api, 'POST', '/snapshots', {'short_name': 'cview-1', 'source': {'ref': '/snapshots/%d' % snap['id']},
                                           'retention_policy': policy, 'is_exposable': True})
    snap_key = 'snapshot-%d-volume-%d' % (snap['id'], volume['id'])
    view_key = 'snapshot-%d-volume-%d' % (view['id'], volume['id'])
    assert _read(data, snap_key, 4096, 19) == b'before the snapshot'
    assert _read(data, view_key, 4096, 19) == b'before the snapshot'
    assert _read(data, key, 4096, 19) == b'after the snapshot!'
    assert api._data_key({'ref': '/snapshots/%d' % view['id']}) == view_key
    assert api._data_key({'ref': '/volumes/%d' % volume['id']}) == key

    empty_group = _k2(api, 'POST', '/volume_groups', {'name': 'cvg-empty'})
    empty_view = _k2(api, 'POST', '/snapshots', {'short_name': 'cview-empty', 'retention_policy': policy,
                                                 'source': {'ref': '/volume_groups/%d' % empty_group['id']},
                                                 'is_exposable': True})
    with pytest.raises(base.ApiError, match='has no volumes to map'):
        api._data_key({'ref': '/snapshots/%d' % empty_view['id']})

    _k2(api, 'PATCH', '/volumes/%d' % volume['id'], {'size': 2 * GIB})
    assert data.size(key) == 2 * GIB * 1024
    assert _read(data, key, 4096, 19) == b'after the snapshot!'

    _k2(api, 'DELETE', '/snapshots/%d' % view['id'])
    assert data.keys() == sorted([key, snap_key])
    _k2(api, 'DELETE', '/snapshots/%d' % snap['id'])
    _k2(api, 'DELETE', '/volumes/%d' % volume['id'])
    assert data.keys() == []


def test_kaminario_lio_option_needs_a_data_dir_and_a_kernel_with_lio(tmp_path):
    # Outside the VM scenario this host has no LIO: the simulator says so and stops, without a traceback.
    base_cmd = [sys.executable, '-m', 'ansible_collections.cinderlib.storage.tests.simulators.kaminario',
                '--login', 'admin', '--port-file', str(tmp_path / 'port'), '--cert-dir', str(tmp_path / 'c'), '--lio']
    env = dict(os.environ, SIMULATOR_PASSWORD='cli-secret')
    no_dir = subprocess.run(base_cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert no_dir.returncode == 1 and 'kaminario simulator: --lio needs --data-dir' in no_dir.stderr
    if Path('/sys/kernel/config/target').is_dir():
        pytest.skip('this kernel has LIO: the VM scenario runs the export for real')
    no_lio = subprocess.run(base_cmd + ['--data-dir', str(tmp_path / 'data')], env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    assert no_lio.returncode == 1, no_lio.stderr
    assert no_lio.stderr.startswith("kaminario simulator: can't create the LIO iSCSI target")
    assert 'Traceback' not in no_lio.stderr
    assert not (tmp_path / 'port').exists()
