# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""Connection: a volume exported to a host, and attached on it.

Two halves, as in cinderlib:
- the storage side (``connect``/``disconnect``): the driver exports the
  volume to a host described by its os-brick connector properties
  (``create_export`` + ``initialize_connection``) and gives the connection
  info (``conn_info``) that host needs; ``terminate_connection`` +
  ``remove_export`` undo it;
- the host side (``attach``/``detach``/``extend``): os-brick on the host that
  runs the code turns ``conn_info`` into a local device, and back.

A record per connection lives in the state store, written as
``connecting``/``disconnecting`` before the driver is called (as volumes
are), under the volume's lock. One connection per volume and host: connecting
a volume to a host it is already connected to returns that connection. A
record met ``connecting``/``disconnecting`` with the lock free was left by a
run that died: ``settle_leftovers`` (what a module run on the volume does
first) and reconcile end it (``end_leftover`` says why ending is safe).

Secrets: connection info may hold credentials (CHAP's ``auth_password``, an
RBD keyring). As in cinderlib and Cinder, the record keeps the connection
info as the driver returned it, so that ``conn_info`` is the same in every
process (the store is readable by its owner only); serialized output, views,
facts and the Ansible layer's results leave them out (``secrets``).
"""

from __future__ import annotations

import copy
import os
import socket
import uuid
from typing import Any

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import (
    brick,
    context,
    listing,
    locks,
    views,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    BackendObjectExists,
    CinderlibError,
    ConnectionNotFound,
    InvalidRequest,
    describe_cause,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.objects import (
    Resource,
    Volume,
    VolumeChild,
    child_of,
    validate_id,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.operations import (
    driver_call,
    model_update_changes,
    run_operation,
)

CONNECTED = 'connected'
"""Status of a connection whose export is done (its conn_info is usable)."""


def local_host() -> str:
    """This host's name, as os-brick puts it in connector properties."""
    return socket.gethostname()


BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id'


def boot_id() -> str | None:
    """This boot of the host (Linux; None elsewhere). A device path recorded
    in an earlier boot may name another volume's device now: device names
    are given in the order devices appear."""
    try:
        with open(BOOT_ID_FILE, encoding='ascii') as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def conn_info_with_chap(conn_info: dict, provider_auth: str | None) -> dict:
    """``conn_info`` with the CHAP password put back from a volume's
    ``provider_auth`` ("CHAP user password"), when stored connection info
    lacks it. Cinder-free: the consumer side of the multi-host flow uses it."""
    conn_info = copy.deepcopy(conn_info)
    data = conn_info.get('data')
    if not isinstance(data, dict) or not data.get('auth_method') or data.get('auth_password'):
        return conn_info
    parts = (provider_auth or '').split()
    if len(parts) == 3 and parts[0] == data['auth_method'] and parts[1] == data.get('auth_username'):
        data['auth_password'] = parts[2]
    return conn_info


def _cinderlib_fields(backend, connector: dict | None, kwargs: dict) -> tuple:
    """The volume, connector and record fields of cinderlib's
    ``Connection(backend, volume=..., connection_info=..., **fields)``."""
    kwargs = dict(kwargs)
    volume = kwargs.pop('volume', None)
    if volume is None:
        if not kwargs.get('volume_id'):
            raise InvalidRequest('A Connection needs its volume: Connection(backend, volume=..., '
                                 'connection_info=...), or Connection(volume, connector).')
        volume = Volume.get_by_id(kwargs.pop('volume_id'))
    kwargs.pop('volume_id', None)
    if backend not in (None, volume.backend, volume.backend_name):
        raise InvalidRequest("Volume %s is on backend '%s', not on %r." % (volume.id, volume.backend_name, backend))
    info = kwargs.pop('connection_info', None) or {}
    connector = connector or info.get('connector') or {}
    conn_info = info.get('conn')
    kwargs.pop('status', None)  # cinderlib's 'attached' means connected: the library's statuses say so
    if conn_info:
        kwargs.update(status=CONNECTED, conn_info=copy.deepcopy(conn_info),
                      protocol=conn_info.get('driver_volume_type'))
    if info.get('device'):
        device = copy.deepcopy(info['device'])
        kwargs.update(device=device, path=device.get('path'), attached=True, attach_status='attached')
    return volume, connector, kwargs


def _connector_host(connector: Any, what: str = 'connector') -> str:
    if not isinstance(connector, dict) or not connector:
        raise InvalidRequest('%s must be a dict of os-brick connector properties (cinderlib_connector_facts '
                             'gathers them), not %r.' % (what, connector))
    host = connector.get('host')
    if not isinstance(host, str) or not host:
        raise InvalidRequest("%s has no 'host': connector properties name the host they describe "
                             '(cinderlib_connector_facts gathers them).' % what)
    return host


class Connection(VolumeChild):
    """A volume's connection to one host (cinderlib's Connection)."""

    kind = 'connection'

    @classmethod
    def get_by_id(cls, connection_id: str) -> Connection:
        """The connection of that id (cinderlib's): ConnectionNotFound if none."""
        store = context.store()
        found = store.connection_records(connection_id=connection_id)
        if not found:
            raise ConnectionNotFound('Connection %s is not in the state store.' % connection_id)
        return child_of('connection', found[0], store)

    def __init__(self, volume_or_backend, connector: dict | None = None, **kwargs: Any) -> None:
        """``Connection(volume, connector)``: a connection about to be made
        (``connect``). ``Connection(backend, volume=..., connection_info=...)``,
        cinderlib's form: a connection made elsewhere, to record with
        ``save()`` (``connection_info`` is cinderlib's dict: ``conn``,
        ``connector``, ``device``)."""
        volume = volume_or_backend
        if getattr(volume, 'kind', None) != 'volume':
            volume, connector, kwargs = _cinderlib_fields(volume_or_backend, connector, kwargs)
        host = _connector_host(connector)
        record = {
            'id': validate_id(kwargs.pop('id', None) or uuid.uuid4(), 'Connection'),
            'volume_id': volume.id,
            'backend': volume.backend_name,
            'connector': copy.deepcopy(connector),
            'host': host,
            'node_id': kwargs.pop('node_id', None),
            'status': 'connecting',
            'attach_mode': kwargs.pop('attach_mode', None) or 'rw',
            'attach_status': 'detached',
            'attached': False,
            'attached_host': None,
            'device': None,
            'path': None,
            'conn_info': None,
            'protocol': None,
            'use_multipath': bool(connector.get('multipath')),
            'project_id': context.setting('project_id'),
            'user_id': context.setting('user_id'),
        }
        record.update(kwargs)  # other VolumeAttachment fields (instance_uuid, mountpoint...)
        super().__init__(volume.backend, record)
        self.volume = volume

    @classmethod
    def from_record(cls, volume, record: dict) -> Connection:
        connection = cls._known(volume.backend, record)
        if connection is None:
            connection = cls.__new__(cls)
            Resource.__init__(connection, volume.backend, record)
        connection.volume = volume
        return connection

    def describe(self) -> str:
        return "connection of %s to host '%s'" % (self.volume.describe(), self.host)

    # -- cinderlib's attributes -----------------------------------------------------------
    @property
    def host(self) -> str | None:
        return self._record.get('host') or (self._record.get('connector') or {}).get('host')

    @property
    def connector(self) -> dict:
        return copy.deepcopy(self._record.get('connector') or {})

    connector_info = connector

    @property
    def conn_info(self) -> dict:
        """What the host needs to attach, as the driver returned it,
        credentials included (CHAP's ``auth_password``), in every process
        (cinderlib's ``conn_info``); ``{}`` while not connected. A record
        written by an earlier version, which kept the CHAP password out,
        gets it back from the volume's ``provider_auth``."""
        if not self._record.get('conn_info'):
            return {}
        return conn_info_with_chap(self._record['conn_info'], self.volume._record.get('provider_auth'))

    @property
    def connection_info(self) -> dict | None:
        """cinderlib's attachment dict: ``conn`` (``conn_info``), ``connector``
        and, once attached (here, or elsewhere and recorded with
        ``device_attached``), ``device``; None before anything is recorded."""
        info = {}
        if self._record.get('conn_info'):
            info['conn'] = self.conn_info
        if self._record.get('connector'):
            info['connector'] = self.connector
        if self._record.get('device'):
            info['device'] = self.device
        return info or None

    @property
    def protocol(self) -> str | None:
        return self._record.get('protocol') or (self._record.get('conn_info') or {}).get('driver_volume_type')

    @property
    def connected(self) -> bool:
        status = self._record.get('status')
        # Records cinderlib 5.x wrote have no status: connection info means connected.
        return status == CONNECTED or (status is None and bool(self._record.get('conn_info')))

    @property
    def attached(self) -> bool:
        return bool(self._record.get('attached'))

    @property
    def device(self) -> dict | None:
        return copy.deepcopy(self._record.get('device'))

    @property
    def path(self) -> str | None:
        return self._record.get('path')

    @property
    def attach_mode(self) -> str:
        return self._record.get('attach_mode') or 'rw'

    @property
    def volume_id(self) -> str:
        return self._record['volume_id']

    def attached_here(self) -> bool:
        """Attached on this host in this boot, with its device present."""
        return (self.attached and self._record.get('attached_host') == local_host()
                and bool(self.path) and os.path.exists(self.path)
                and self._record.get('attached_boot') in (None, boot_id()))

    def full_conn_info(self) -> dict:
        """``conn_info``, for the attach: InvalidRequest while not connected."""
        if not self._record.get('conn_info'):
            raise InvalidRequest("%s has no connection info (status '%s'): connect it first."
                                 % (self.describe().capitalize(), self.status))
        return self.conn_info

    def device_attached(self, device: dict) -> None:
        """Record ``device`` (os-brick's ``connect_volume`` result) as attached
        on this host: what a program that attaches with os-brick itself
        calls (cinderlib's ``device_attached``)."""
        with locks.resource_locked(self):
            self._save(device=copy.deepcopy(device), path=(device or {}).get('path'), attached=bool(device),
                       attach_status='attached' if device else 'detached',
                       attached_host=local_host() if device else None, attached_boot=boot_id() if device else None)

    def save(self) -> None:
        """Write the connection's record to the state store (cinderlib's ``save``)."""
        self._save()

    # -- storage side -----------------------------------------------------------------------
    @classmethod
    def connect(cls, volume, connector: dict, **kwargs: Any) -> Connection:
        """Export ``volume`` to the host ``connector`` describes; an existing
        connection to that host is returned as it is."""
        _connector_host(connector)
        with locks.resource_locked(volume):
            return cls._connect_locked(volume, connector, **kwargs)

    @classmethod
    def _connect_locked(cls, volume, connector: dict, **kwargs: Any) -> Connection:
        volume.refresh()
        existing = volume.connection_for(_connector_host(connector))
        if existing is not None and existing.connected:
            return existing
        if existing is not None:
            # Left 'connecting' or 'error_connecting' by an earlier run: export again on the same record.
            existing._record['connector'] = copy.deepcopy(connector)
            connection = existing
        else:
            connection = cls(volume, connector, **kwargs)
        connection._export()
        return connection

    def _export(self) -> None:
        volume, backend = self.volume, self.backend
        connector = self._record['connector']
        try:
            backend.validate_connector(connector)
        except Exception as exc:  # noqa: BLE001 - drivers raise their own types
            raise InvalidRequest(
                "The connector of host '%s' lacks what backend '%s' needs to export to it: %s. Gather it on "
                'that host with cinderlib_connector_facts.' % (self.host, self.backend_name, describe_cause(exc)),
                exc) from exc
        first = not [c for c in volume.connections if c.id != self.id and c.connected]
        if first and not volume.export_owned:
            self._claim_export()
        run_operation(self, 'connect', transitional={'status': 'connecting'},
                      call=lambda: self._export_on_backend(first),
                      on_error={'status': 'error_connecting'}, final=self._connected)

    def _claim_export(self) -> None:
        """Before the collection's first export of a volume: refuse a target
        the backend already has under the export's name (made by hand or by
        another tool; LIO's helper would take it over and a disconnect would
        then remove it), recording nothing (BackendObjectExists). A name found
        free is claimed before the driver exports: what a failed export
        leaves under it is the collection's to remove. A helper that can't
        look its targets up claims nothing until its export succeeds."""
        driver = self.backend.driver
        name = listing.export_name(driver, self.volume)
        if not name:
            return
        if driver_call(self, 'look up the export of', listing.export_exists, driver, name):
            raise BackendObjectExists(
                'export %s' % self.volume.describe(), self.backend_name, 'a target', name,
                'Remove that target yourself if nothing uses it, then run again.')
        self.volume._save(exported=True)

    def _export_on_backend(self, first: bool) -> dict:
        """The driver's export (for the volume's ``first`` connection) and
        connection info for this host."""
        volume, driver, connector = self.volume, self.backend.driver, self._record['connector']
        if first:
            # One export per volume (LVM targets), made for its first connection.
            update = driver_call(self, 'export', driver.create_export, context.cinder_runtime().context, volume._ovo,
                                 connector)
            volume._save(**model_update_changes(update), exported=True)
        return driver_call(self, 'initialize', driver.initialize_connection, volume._ovo, connector)

    def restore_export(self) -> None:
        """Export the volume again as Cinder's volume service does for every
        volume when it starts (the driver's ``ensure_export``): after the
        storage host restarted, an LVM volume's LV is inactive and LIO's
        targets are gone until then. The connection's record and its
        ``conn_info`` stay as they are."""
        with locks.resource_locked(self):
            volume = self.volume
            update = driver_call(self, 'restore the export of', self.backend.driver.ensure_export,
                                 context.cinder_runtime().context, volume._ovo)
            changes = model_update_changes(update)
            if changes:
                volume._save(**changes)

    def device_gone(self) -> str | None:
        """Why a connection recorded as attached on this host no longer has its
        device here (the host restarted since, or the device is gone); None
        when it has it, or is not recorded as attached here."""
        if not self.attached or self._record.get('attached_host') != local_host() or self.attached_here():
            return None
        if self._record.get('attached_boot') not in (None, boot_id()):
            return 'and the host restarted since'
        return 'which is gone'

    def _connected(self, conn_info: dict) -> dict:
        """The record of the connection made from the driver's ``conn_info``
        (saved without secrets); the volume goes ``in-use`` first."""
        conn_info = copy.deepcopy(conn_info)
        if isinstance(conn_info.get('data'), dict):
            conn_info['data'].setdefault('access_mode', self.attach_mode)
        # The volume first: a crash between the two writes leaves this record
        # 'connecting', which settling ends (and puts the volume's status right).
        if self.volume.status == 'available':
            self.volume._save(status='in-use', attach_status='attached')
        return {'status': CONNECTED, 'conn_info': conn_info, 'protocol': conn_info.get('driver_volume_type')}

    def disconnect(self, force: bool = False) -> None:
        """End the export to the host (``terminate_connection``; ``remove_export``
        when it was the volume's last connection) and forget the connection."""
        with locks.resource_locked(self):
            self._disconnect_locked(force)

    def _disconnect_locked(self, force: bool = False) -> None:
        self.volume.refresh()
        others = [c for c in self.volume.connections if c.id != self.id and c.status != 'error_connecting']
        run_operation(self, 'disconnect', transitional={'status': 'disconnecting'},
                      call=lambda: self._end_on_backend(force, last=not others),
                      on_error={'status': 'error_disconnecting'}, final=lambda _: self._disconnected(others))

    def _end_on_backend(self, force: bool, last: bool) -> None:
        """The driver's end of the connection, and of the export when it was
        the volume's ``last`` connection."""
        if not self.volume.export_owned:
            return  # its export failed: what the backend has is not the collection's to end
        driver, ovo, connector = self.backend.driver, self._volume_ovo_with_attachments(), self._record['connector']
        driver_call(self, 'end', lambda: driver.terminate_connection(ovo, connector, force=force))
        if last:
            driver_call(self, 'remove the export of', driver.remove_export, context.cinder_runtime().context, ovo)
            self.volume._save(exported=False)

    def _disconnected(self, others: list) -> None:
        """Forget the connection ended; the volume's status is put right first
        (a crash between the two writes leaves this record 'disconnecting',
        which settling finishes)."""
        volume = self.volume
        _put_volume_status_right(volume, others)
        self._store.remove('connection', self.id)
        self._record['status'] = 'disconnected'
        if volume._connections is not None:
            volume._connections = [c for c in volume._connections if c.id != self.id]

    def _volume_ovo_with_attachments(self):
        """The volume's Cinder object listing its connections as attachments:
        drivers (LVM) decide from them whether an export is still in use."""
        runtime = context.cinder_runtime()
        objects = runtime.cinder_objects
        ovo = self.volume._ovo
        attachments = []
        for connection in [self, *[c for c in self.volume.connections if c.id != self.id]]:
            attachment = objects.VolumeAttachment(
                runtime.context, id=connection.id, volume_id=self.volume.id,
                attach_status='attached' if connection.attached else 'attaching',
                attach_mode=connection.attach_mode, attached_host=connection._record.get('attached_host'),
                instance_uuid=connection._record.get('instance_uuid'), mountpoint=None,
                connector=connection._record.get('connector') or {},
                connection_info=connection._record.get('conn_info') or {})
            attachments.append(attachment)
        ovo.volume_attachment = objects.VolumeAttachmentList(runtime.context, objects=attachments)
        ovo.obj_reset_changes()
        return ovo

    # -- host side --------------------------------------------------------------------------
    def attach(self, device_scan_attempts: int = brick.DEVICE_SCAN_ATTEMPTS) -> None:
        """Attach the connected volume on this host with os-brick (``path``, ``device``)."""
        with locks.resource_locked(self):
            self._attach_locked(device_scan_attempts)

    def _attach_locked(self, device_scan_attempts: int = brick.DEVICE_SCAN_ATTEMPTS) -> None:
        if self.attached_here():
            return
        if self.attached and self._record.get('attached_host') not in (None, local_host()):
            raise InvalidRequest("%s is attached on host '%s', not on this host (%s)."
                                 % (self.describe().capitalize(), self._record['attached_host'], local_host()))
        runtime = brick.get()
        conn_info = self.full_conn_info()
        run_operation(self, 'attach', transitional={'attach_status': 'attaching', 'attached_host': local_host()},
                      call=lambda: brick.attach(runtime, conn_info, self._record.get('use_multipath', False),
                                                device_scan_attempts, what=self.volume.describe()),
                      on_error={'attach_status': 'error_attaching'},
                      final=lambda device: {'attach_status': 'attached', 'attached': True, 'device': device,
                                            'path': device['path'], 'attached_boot': boot_id()})

    def detach(self, force: bool = False) -> None:
        """Detach the device from this host with os-brick; the connection stays
        (``disconnect`` ends it), as in cinderlib. ``force``: even when
        flushing the device fails."""
        with locks.resource_locked(self):
            self._detach_device(force)

    def detach_and_disconnect(self, force: bool = False) -> None:
        """``detach`` then ``disconnect``, under one hold of the volume's lock
        (``Volume.detach``)."""
        with locks.resource_locked(self):
            self._detach_device(force)
            self._disconnect_locked(force)

    def _detach_device(self, force: bool = False) -> None:
        if not self.attached and self._record.get('attach_status') in (None, 'detached'):
            return
        runtime = brick.get()
        run_operation(self, 'detach', transitional={'attach_status': 'detaching'},
                      call=lambda: brick.detach(runtime, self.full_conn_info(), self.device, force,
                                                self._record.get('use_multipath', False), what=self.volume.describe()),
                      on_error={'attach_status': 'error_detaching'},
                      final={'attach_status': 'detached', 'attached': False, 'device': None, 'path': None,
                             'attached_host': None, 'attached_boot': None})

    def extend(self) -> int:
        """Make this host see the volume's new size (after ``Volume.extend``);
        returns the size os-brick reports, in bytes."""
        return brick.extend(brick.get(), self.full_conn_info(), self._record.get('use_multipath', False),
                            what=self.volume.describe())

    # -- attach on this host, the whole flow --------------------------------------------------
    @classmethod
    def attach_volume(cls, volume, multipath: bool = False, enforce_multipath: bool = False,
                      device_scan_attempts: int = brick.DEVICE_SCAN_ATTEMPTS, **kwargs: Any) -> Connection:
        """``Volume.attach``: connect the volume to this host and attach it
        with os-brick, under the volume's lock; idempotent. A failed attach
        undoes the export it made."""
        connector = brick.get().connector_properties(multipath, enforce_multipath)
        with locks.resource_locked(volume):
            volume.refresh()
            existing = volume.connection_for(connector['host'])
            made = existing is None or not existing.connected
            connection = cls._connect_locked(volume, connector, **kwargs)
            try:
                connection._attach_locked(device_scan_attempts)
            except CinderlibError as exc:
                if made:
                    _undo(connection, exc)
                raise
        return connection

    def to_dict(self, full: bool = True) -> dict:
        return views.connection_view(self._record, full=full)


# -- what runs that died left ------------------------------------------------------------------
LEFTOVER_STATUSES = ('connecting', 'disconnecting')
"""Statuses a record has only while a run holds its volume's lock: met with
the lock free, they were left by a run that died (killed, host down)."""

FAILED_STATUSES = ('error_connecting', 'error_disconnecting')
"""Statuses a run that failed cleanly left (the driver raised)."""

_WHY_ENDED = {
    'connecting': 'the run connecting it ended before it finished, so no host got its connection info',
    'disconnecting': 'the run disconnecting it ended before it finished',
    'error_connecting': 'connecting it failed, so no host got its connection info',
    'error_disconnecting': 'disconnecting it failed',
}


def describe_record(record: dict) -> dict:
    """A connection record as reconcile reports it."""
    return {'kind': 'connection', 'id': record['id'], 'volume_id': record.get('volume_id'),
            'host': record.get('host') or (record.get('connector') or {}).get('host'),
            'status': record.get('status')}


def end_leftover(connection: Connection, dry_run: bool = False) -> dict:
    """Finish the disconnect path of a connection a run left ``connecting``,
    ``disconnecting`` or ``error_*`` (its volume's lock is held): end the
    connection (``terminate_connection``), end the export when no other
    connection of the volume needs it (``remove_export``), remove the record
    and put the volume's status right. Returns what was done, as reconcile
    reports it.

    Whether the export exists does not change this: drivers have no call that
    tells, and both calls are safe to repeat (Cinder repeats them when it
    cleans up). Ending it is safe: the connection info of a connect that did
    not finish was never returned, and attaching by ``connection_id`` refuses
    a record that is not ``connected``, so no host can be using the export.
    """
    status = connection.status
    entry = describe_record(connection._record)
    why = _WHY_ENDED.get(status, "its status is '%s'" % status)
    if connection.attached:
        where = connection._record.get('attached_host')
        return dict(entry, action='skipped', new_status=None,
                    reason="it is recorded as attached on host '%s' (connection %s): detach it there first"
                           % (where, connection.id))
    if not connection.volume.export_owned:
        why += ("; the backend's export of its volume was left as it is: this collection's export failed, so "
                'what the backend has is not its own')
    if dry_run:
        return dict(entry, action='removed', new_status=None, reason=why)
    if not connection._store.volume_records(volume_id=connection.volume_id):
        connection._store.remove('connection', connection.id)
        return dict(entry, action='removed', new_status=None,
                    reason="%s, and its volume is no longer in the state store" % why)
    try:
        connection._disconnect_locked()
    except CinderlibError as exc:
        return dict(entry, action='marked_error', new_status=connection.status,
                    reason='%s; ending its export failed: %s' % (why, exc.message))
    return dict(entry, action='removed', new_status=None, reason=why)


def settle_leftovers(volume, dry_run: bool = False) -> list[dict]:
    """End the connections of ``volume`` that runs which died left
    ``connecting`` or ``disconnecting`` (``end_leftover``); what a run on the
    volume does first. Waits for a run in progress (it holds the volume's
    lock) and settles what is left after it; a dry run waits for nothing and
    changes nothing: the records of a run in progress are ``skipped``."""
    if not any(c.status in LEFTOVER_STATUSES for c in volume.connections):
        return []
    if dry_run:
        with locks.resource_locked(volume, wait=False) as free:
            leftovers = [c for c in volume.connections if c.status in LEFTOVER_STATUSES]
            if free:
                return [end_leftover(c, dry_run=True) for c in leftovers]
            return [dict(describe_record(c._record), action='skipped', new_status=None,
                         reason="another run holds its volume's lock: it is still in progress") for c in leftovers]
    with locks.resource_locked(volume):
        volume.refresh()
        return [end_leftover(c) for c in volume.connections if c.status in LEFTOVER_STATUSES]


def _holds_export(connection: Connection) -> bool:
    """Whether a host may be using the volume through this connection: it is
    connected, or its disconnect failed (the export may still be there)."""
    return connection.connected or connection.status == 'error_disconnecting'


def _put_volume_status_right(volume, connections: list) -> None:
    """``in-use`` while one of ``connections`` (the volume's, once this
    operation is done) holds an export, else ``available``; other statuses
    (``error``...) are left alone."""
    wanted = 'in-use' if any(_holds_export(c) for c in connections) else 'available'
    if volume.status in ('available', 'in-use') and volume.status != wanted:
        volume._save(status=wanted, attach_status='attached' if wanted == 'in-use' else 'detached')


def _undo(connection: Connection, exc: CinderlibError) -> None:
    """Disconnect what a failed attach exported; say in ``exc`` what was left."""
    try:
        connection._disconnect_locked(force=True)
    except CinderlibError as undo_exc:
        exc.message = '%s Undoing the export failed too (%s); state=absent removes it.' % (
            exc.message.rstrip(), undo_exc.message)
        exc.args = (exc.message,)
