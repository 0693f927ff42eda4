# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""Desired state of connections, as pure functions over the library (no Ansible).

Three ways cinderlib_connection works, each a pair of ``ensure_*`` functions
returning an ``Outcome`` (changed, before, after, messages) like ``volume_state``'s:

- export (``backend`` + ``volume`` + ``connector``): the storage host exports
  the volume to another host; ``after`` carries ``conn_info``;
- local attach (``backend`` + ``volume``, no ``connector``): export to this
  host and attach with os-brick; ``after`` carries ``path``;
- consumer (``conn_info`` or ``connection_id``, no backend): attach on this
  host what another host exported, with os-brick only (Cinder is not
  imported); ``connection_id`` reads the connection from a shared state
  store and records the attach there.

Every run with a backend first settles the connections of its volume that a
run which died left ``connecting`` or ``disconnecting``
(``connections.settle_leftovers``: their export is ended and their record
removed, as cinderlib_reconcile does), says so in its warnings, then does
what it was asked.

Connector properties: read by cinderlib_connector_facts, stored under a node
id by cinderlib_connector.

The functions that take ``library`` take it set up by the module
(``CinderlibModule.library``, with the task's options); what they read and
write is then found through ``cinderlib.context``.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import brick, connections, context, views
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.connections import (
    CONNECTED,
    conn_info_with_chap,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    InvalidRequest,
    NotFound,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.secrets import without_secrets
from ansible_collections.cinderlib.storage.plugins.module_utils.volume_state import (
    Outcome,
    check_name,
    check_usable,
    find_source_volume,
)


def consumer_mode(params: dict) -> bool:
    """Whether the task attaches what another host exported (no backend)."""
    return params.get('conn_info') is not None or params.get('connection_id') is not None


def check_connection_params(params: dict) -> None:
    """cinderlib_connection's options, checked before anything is opened."""
    if consumer_mode(params):
        if params.get('conn_info') is not None and params.get('connection_id') is not None:
            raise InvalidRequest('conn_info and connection_id are mutually exclusive; give only one.')
        if params.get('conn_info') is not None:
            try:
                brick.protocol_of(params['conn_info'])
            except InvalidRequest as exc:
                raise InvalidRequest(exc.message[:-1] + ' (what cinderlib_connection returns as conn_info when '
                                     'it exports a volume).') from None
        else:
            check_name(params['connection_id'], 'connection_id')
        if params.get('connector') is not None:
            raise InvalidRequest('connector is for the storage host (export to that host); with conn_info or '
                                 'connection_id the volume is attached on this host: leave connector out.')
        return
    if not params.get('volume'):
        raise InvalidRequest('volume is required (the name or id of the volume to connect), unless conn_info or '
                             'connection_id says what to attach on this host.')
    check_name(params['volume'], 'volume')
    if params.get('backend') is None:
        raise InvalidRequest('backend is required to connect volume %r (or give conn_info / connection_id to '
                             'attach on this host what another host exported).' % params['volume'])
    connector = params.get('connector')
    if connector is not None and not isinstance(connector, (dict, str)):
        raise InvalidRequest('connector must be a dict of connector properties or a node id (a string), not %r.'
                             % (connector,))
    if isinstance(connector, str):
        check_name(connector, 'connector')
    if params.get('device_scan_attempts') is not None and params['device_scan_attempts'] < 1:
        raise InvalidRequest('device_scan_attempts must be 1 or more, not %r.' % params['device_scan_attempts'])


def _volume(backend, params: dict, must_exist: bool):
    try:
        volume = find_source_volume(backend, params['volume'], 'volume')
    except NotFound:
        if must_exist:
            raise
        return None
    return volume


def resolve_connector(store, connector: Any) -> tuple[dict, str | None]:
    """(connector properties, node id): a dict as given, or the properties
    stored under a node id by cinderlib_connector."""
    if isinstance(connector, dict):
        return copy.deepcopy(connector), None
    record = store.get_connector(connector)
    if record is None:
        raise NotFound("connector: no connector properties are stored under node id '%s'; run "
                       'cinderlib.storage.cinderlib_connector with node_id=%s on that host, with the '
                       'same persistence, first.' % (connector, connector))
    return copy.deepcopy(record['connector']), connector


_SETTLED = {
    'removed': '%s was left with status \'%s\' (%s): %s its export and %s its record.',
    'marked_error': '%s was left with status \'%s\': %s; it is marked error_disconnecting.',
    'skipped': '%s has status \'%s\' and was left alone: %s.',
}


def _settled_message(volume, action: dict, check_mode: bool) -> str:
    what = "Connection of %s to host '%s'" % (volume.describe(), action['host'])
    if action['action'] == 'removed':
        done = ('will end', 'remove') if check_mode else ('ended', 'removed')
        return _SETTLED['removed'] % (what, action['status'], action['reason'], done[0], done[1])
    return _SETTLED[action['action']] % (what, action['status'], action['reason'])


def _settled_lookup(volume, find, check_mode: bool):
    """Settle what runs that died left on ``volume``, then find the connection
    the task is about. Returns (that connection or None, its view before,
    whether settling changed anything, warnings)."""
    found = find(volume)
    before = found.to_dict() if found is not None else None
    actions = connections.settle_leftovers(volume, check_mode)
    removed = {a['id'] for a in actions if a['action'] == 'removed'}
    current = find(volume)
    if current is not None and current.id in removed:  # check mode: still in the store
        current = None
    return (current, before, any(a['action'] != 'skipped' for a in actions),
            [_settled_message(volume, a, check_mode) for a in actions])


def _result_view(connection, output_all: bool) -> dict:
    view = connection.to_dict()
    if output_all and connection.connected:
        view['conn_info'] = connection.full_conn_info()
    return view


def _predicted(volume, host: str, node_id: str | None, attach_mode: str, attached: bool) -> dict:
    return {'id': None, 'volume_id': volume.id, 'status': CONNECTED, 'host': host, 'node_id': node_id,
            'protocol': None, 'attach_mode': attach_mode, 'attached': attached,
            'attached_host': connections.local_host() if attached else None, 'path': None, 'conn_info': None,
            'connector': {}, 'device': None, 'created_at': None, 'updated_at': None}


# -- export to another host ------------------------------------------------------------------
def ensure_export_present(backend, params: dict, check_mode: bool) -> Outcome:
    volume = _volume(backend, params, must_exist=True)
    connector, node_id = resolve_connector(context.store(), params['connector'])
    host = connector.get('host')
    existing, before, settled, messages = _settled_lookup(
        volume, lambda v: v.connection_for(host) if isinstance(host, str) else None, check_mode)
    output_all = bool(params.get('output_all_backend_info'))
    if existing is not None and existing.connected:
        if existing.connector != connector:
            messages.append("%s exists with other connector properties than the ones given; it is kept. To "
                            'export with the new ones, remove it (state=absent) and run again.'
                            % existing.describe().capitalize())
        view = _result_view(existing, output_all)
        return settled, view, view, messages
    check_usable(volume)
    attach_mode = params.get('attach_mode') or 'rw'
    if check_mode:
        return Outcome(True, before, _predicted(volume, host, node_id, attach_mode, False), messages)
    connection = volume.connect(connector, node_id=node_id, attach_mode=attach_mode)
    return Outcome(True, before, _result_view(connection, output_all), messages)


def _connection_to(volume, store, connector: Any):
    """The volume's connection to the host a connector (dict or node id) names."""
    if isinstance(connector, str):
        by_node = [c for c in volume.connections if c.record.get('node_id') == connector]
        if by_node:
            return by_node[0]
        record = store.get_connector(connector)
        host = (record or {}).get('host')
    else:
        host = connector.get('host')
    return volume.connection_for(host) if host else None


def ensure_export_absent(backend, params: dict, check_mode: bool) -> Outcome:
    volume = _volume(backend, params, must_exist=False)
    if volume is None:
        return Outcome(False, None, None, [])
    connection, before, settled, messages = _settled_lookup(
        volume, lambda v: _connection_to(v, context.store(), params['connector']), check_mode)
    if connection is None:
        return settled, before, None, messages
    if connection.attached and not params.get('force'):
        raise InvalidRequest(
            "%s is attached on host '%s'; detach it there first (cinderlib_connection with state=absent and "
            'connection_id=%s on that host), or set force=true to end the export anyway.'
            % (connection.describe().capitalize(), connection.record.get('attached_host'), connection.id))
    if not check_mode:
        volume.disconnect(connection, force=bool(params.get('force')))
    return Outcome(True, before, None, messages)


# -- attach on this host, with a backend -----------------------------------------------------
_RECOVERED = {
    (False, True): 'its export was restored and the volume attached again',
    (True, True): 'its export will be restored and the volume attached again',
    (False, False): 'its export was restored, then the volume detached',
    (True, False): 'its export will be restored, then the volume detached',
}


def _recover_gone_device(connection, check_mode: bool, attach: bool) -> list[str]:
    """A connection recorded as attached on this host whose device is gone,
    or was attached before the host restarted (its path may now name another
    volume's device): its export is restored first (what Cinder's volume
    service does for each volume when it starts), so that the task can attach
    it again, or detach it and end the export. Returns the warning saying so."""
    why = connection.device_gone() if connection is not None else None
    if why is None:
        return []
    if not check_mode:
        connection.restore_export()
    return ['%s was recorded as attached on this host at %s, %s: %s.'
            % (connection.describe().capitalize(), connection.path or 'no device', why, _RECOVERED[check_mode, attach])]


def ensure_local_present(backend, params: dict, check_mode: bool) -> Outcome:
    volume = _volume(backend, params, must_exist=True)
    existing, before, settled, messages = _settled_lookup(
        volume, lambda v: v.connection_for(connections.local_host()), check_mode)
    if existing is not None and existing.attached_here():
        view = _result_view(existing, bool(params.get('output_all_backend_info')))
        return settled, view, view, messages
    check_usable(volume)
    messages += _recover_gone_device(existing, check_mode, attach=True)
    if check_mode:
        here = connections.local_host()
        return Outcome(True, before, _predicted(volume, here, None, params.get('attach_mode') or 'rw', True), messages)
    connection = volume.attach(
        bool(params.get('multipath')), bool(params.get('enforce_multipath')),
        device_scan_attempts=params.get('device_scan_attempts') or brick.DEVICE_SCAN_ATTEMPTS,
        attach_mode=params.get('attach_mode') or 'rw')
    return Outcome(True, before, _result_view(connection, bool(params.get('output_all_backend_info'))), messages)


def ensure_local_absent(backend, params: dict, check_mode: bool) -> Outcome:
    volume = _volume(backend, params, must_exist=False)
    if volume is None:
        return Outcome(False, None, None, [])
    connection, before, settled, messages = _settled_lookup(
        volume, lambda v: v.connection_for(connections.local_host()), check_mode)
    if connection is None:
        return settled, before, None, messages
    messages += _recover_gone_device(connection, check_mode, attach=False)
    if not check_mode:
        force = bool(params.get('force'))
        if connection.attached or connection.record.get('attach_status') not in (None, 'detached'):
            connection.detach_and_disconnect(force)
        else:
            connection.disconnect(force)
        volume.refresh()
    return Outcome(True, before, None, messages)


# -- consumer: attach what another host exported, os-brick only ---------------------------------
def _consumer_source(params: dict) -> tuple[dict, dict | None]:
    """(conn_info with secrets, stored connection record or None)."""
    if params.get('conn_info') is not None:
        return copy.deepcopy(params['conn_info']), None
    store = context.store()
    found = store.connection_records(connection_id=params['connection_id'])
    if not found:
        raise NotFound('connection_id: no connection %s in the state store %s; give the id that '
                       'cinderlib_connection returned on the storage host (connection.id), with the same '
                       'persistence.' % (params['connection_id'], getattr(store, 'connection', store.storage)))
    record = found[0]
    if record.get('status') != CONNECTED or not record.get('conn_info'):
        raise InvalidRequest("Connection %s has status '%s' in the state store, not 'connected': export it again "
                             'on the storage host first.' % (record['id'], record.get('status')))
    volumes = store.volume_records(volume_id=record['volume_id'])
    provider_auth = volumes[0].get('provider_auth') if volumes else None
    return conn_info_with_chap(record['conn_info'], provider_auth), record


def _check_chap(conn_info: dict) -> None:
    data = conn_info.get('data') or {}
    if data.get('auth_method') and not data.get('auth_password'):
        raise InvalidRequest(
            "conn_info asks for %s authentication (user '%s') but holds no auth_password: results never carry "
            'it. Give connection_id (connection.id of the storage host\'s result) with the shared persistence '
            'instead, so that the password is read from the state store.'
            % (data['auth_method'], data.get('auth_username')))


def _consumer_view(conn_info: dict, record: dict | None, device: dict | None, path: str | None) -> dict:
    if record is not None:
        view = views.connection_view(record, full=True)
    else:
        data = conn_info.get('data') or {}
        view = {'id': None, 'volume_id': data.get('volume_id'), 'status': CONNECTED, 'host': connections.local_host(),
                'node_id': None, 'protocol': conn_info.get('driver_volume_type'),
                'attach_mode': data.get('access_mode'), 'attached': False, 'attached_host': None, 'path': None,
                'conn_info': None, 'connector': {}, 'device': None, 'created_at': None, 'updated_at': None}
        view['conn_info'] = without_secrets(conn_info)
    view.update(attached=bool(path), attached_host=connections.local_host() if path else None, path=path,
                device=copy.deepcopy(device))
    return view


def _record_attach(record: dict | None, **changes: Any) -> dict | None:
    if record is None:
        return None
    record = copy.deepcopy(record)
    record.update(changes)
    return context.store().put('connection', record)


def ensure_consumer_present(library, params: dict, check_mode: bool) -> Outcome:
    conn_info, record = _consumer_source(params)
    _check_chap(conn_info)
    runtime = brick.get()
    use_multipath = bool(params.get('multipath')) or bool((record or {}).get('use_multipath'))
    found = brick.existing_paths(runtime, conn_info, use_multipath)
    if found:
        path = (record or {}).get('path') if (record or {}).get('path') in found else found[0]
        device = (record or {}).get('device') or {'path': path}
        view = _consumer_view(conn_info, record, device, path)
        here = connections.local_host()
        if record is not None and not (record.get('attached') and record.get('attached_host') == here):
            # Attached, but the store did not know it (the attach ran without connection_id).
            if check_mode:
                return Outcome(True, _consumer_view(conn_info, record, None, None), view, [])
            _record_attach(record, attached=True, attach_status='attached',
                           attached_host=connections.local_host(), device=device, path=path)
            return Outcome(True, _consumer_view(conn_info, record, None, None), view, [])
        return Outcome(False, view, view, [])
    before = _consumer_view(conn_info, record, None, None)
    if check_mode:
        after = copy.deepcopy(before)
        after.update(attached=True, attached_host=connections.local_host())
        return Outcome(True, before, after, [])
    device = brick.attach(runtime, conn_info, use_multipath,
                          params.get('device_scan_attempts') or brick.DEVICE_SCAN_ATTEMPTS,
                          what='the volume of %s' % ('connection %s' % record['id'] if record else 'conn_info'))
    stored = _record_attach(record, attached=True, attach_status='attached',
                            attached_host=connections.local_host(), device=device, path=device['path'])
    return Outcome(True, before, _consumer_view(conn_info, stored, device, device['path']), [])


def ensure_consumer_absent(library, params: dict, check_mode: bool) -> Outcome:
    conn_info, record = _consumer_source(params)
    runtime = brick.get()
    use_multipath = bool(params.get('multipath')) or bool((record or {}).get('use_multipath'))
    found = brick.existing_paths(runtime, conn_info, use_multipath)
    recorded_here = bool(record and record.get('attached') and record.get('attached_host') == connections.local_host())
    if not found and not recorded_here:
        return Outcome(False, None, None, [])
    path = (record or {}).get('path') if recorded_here else (found[0] if found else None)
    before = _consumer_view(conn_info, record, (record or {}).get('device') or {'path': path}, path)
    if check_mode:
        return Outcome(True, before, None, [])
    if found:
        device = (record or {}).get('device') or ({'path': path} if path and os.path.exists(path) else {})
        brick.detach(runtime, conn_info, device, bool(params.get('force')), use_multipath,
                     what='the volume of %s' % ('connection %s' % record['id'] if record else 'conn_info'))
    _record_attach(record, attached=False, attach_status='detached', attached_host=None, device=None,
                   path=None)
    return Outcome(True, before, None, [])


# -- connectors -------------------------------------------------------------------------------
def connector_argument_spec() -> dict:
    """The options that shape this host's connector properties (doc fragment:
    cinderlib.connector)."""
    return dict(
        multipath=dict(type='bool', default=False),
        enforce_multipath=dict(type='bool', default=False),
        my_ip=dict(type='str'),
        host=dict(type='str'),
    )


def connector_properties(library, params: dict) -> dict:
    """This host's os-brick connector properties (cinderlib_connector_facts)."""
    runtime = brick.get()
    return runtime.connector_properties(bool(params.get('multipath')), bool(params.get('enforce_multipath')),
                                        my_ip=params.get('my_ip'), host=params.get('host'))


def ensure_connector_present(library, params: dict, check_mode: bool) -> Outcome:
    """Store this host's connector properties under ``node_id``
    (cinderlib_connector): (changed, before, after, messages)."""
    store = context.store()
    node_id = params['node_id']
    previous = store.get_connector(node_id)
    connector = connector_properties(library, params)
    before = (previous or {}).get('connector') or {}
    if previous is not None and before == connector:
        return Outcome(False, before, connector, [])
    if not check_mode:
        store.put('connector', {'id': node_id, 'host': connector.get('host'), 'connector': connector})
    return Outcome(True, before, connector, [])


def ensure_connector_absent(library, params: dict, check_mode: bool) -> Outcome:
    """Remove the properties stored under ``node_id``. Exports made to that
    node keep their own copy of them, so they can still be ended; the
    messages say which remain."""
    store = context.store()
    node_id = params['node_id']
    previous = store.get_connector(node_id)
    if previous is None:
        return Outcome(False, {}, {}, [])
    messages = []
    exports = [c for c in store.get('connection') if c.get('node_id') == node_id]
    if exports:
        ids = ', '.join(sorted(c['id'] for c in exports))
        messages.append("%d export(s) to node '%s' remain (connections %s): they are ended with "
                        'cinderlib.storage.cinderlib_connection state=absent as before, but new exports to this node '
                        'need its properties stored again.' % (len(exports), node_id, ids))
    if not check_mode:
        store.remove('connector', node_id)
    return Outcome(True, previous.get('connector') or {}, {}, messages)
