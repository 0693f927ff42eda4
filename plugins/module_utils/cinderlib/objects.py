# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""Volume and Snapshot: records in the state store, handed to drivers as
Cinder's versioned objects.

Status follows Cinder's state machine. Every operation runs through
``operations.run_operation``, which writes the transitional status
(``creating``/``deleting``/``extending``) before the driver is called and
the final one after, so a process killed half-way leaves a record that a
later run can see; each holds the volume's inter-process lock
(``locks.resource_locked``) from the first record to the last, so a later
run can also tell a leftover from an operation still in progress.
``reconcile.py`` resolves leftovers.
"""

from __future__ import annotations

import copy
import datetime
import logging
import uuid
import weakref
from typing import Any

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import (
    context,
    fields,
    listing,
    locks,
    serialization,
    views,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    BackendObjectExists,
    CinderlibError,
    InvalidRequest,
    InvalidVolume,
    NotFound,
    NotLocal,
    SnapshotNotFound,
    VolumeNotFound,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.operations import driver_call, run_operation

# Record keys that are ours, or are set on the driver's object apart.
_VOLUME_OWN_KEYS = ('backend', 'volume_type', 'metadata', 'admin_metadata', 'created_at', 'updated_at',
                    'deleted_at', 'pool_name')
_SNAPSHOT_OWN_KEYS = ('metadata', 'created_at', 'updated_at', 'deleted_at', 'backend')

LOG = logging.getLogger(__name__)


def record_owned(record: dict) -> bool:
    """Whether the backend object under a record's name is the collection's
    to remove (``Resource.owned``). A record written before records said so
    is owned unless a create failed on it ('error'): the old code could not
    tell whether that create's name was already taken on the backend."""
    if 'owned' in record:
        return bool(record['owned'])
    return record.get('status') != 'error'


def validate_id(value: Any, what: str) -> str:
    value = str(value)
    if context.setting('non_uuid_ids'):
        return value
    try:
        uuid.UUID(value)
    except ValueError:
        raise InvalidRequest('%s id %r is not a UUID (set non_uuid_ids to allow other ids).' % (what, value)) from None
    return value


class Resource(serialization.Serializable):
    """What volumes, snapshots and connections share: a record and its store.

    Attributes are the fields of Cinder's object (``fields.py``), read from
    the record. One object per resource lives in a process at a time (as
    cinderlib's objects did): looking a resource up again gives the object
    already in use, its record refreshed, so a change made through one
    reference is seen through every other.
    """

    kind = 'resource'
    _live: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
    backend_class = None
    """cinderlib's ``backend_class``: the Backend class (backend.py sets it)."""

    def __init__(self, backend, record: dict) -> None:
        self.backend = backend
        self._record = record
        Resource._live[(self.kind, record['id'])] = self

    @classmethod
    def _known(cls, backend, record: dict):
        """The live object of ``record``'s resource, refreshed with it, or None."""
        found = Resource._live.get((cls.kind, record['id']))
        if not isinstance(found, cls):
            return None
        found.backend = backend
        found._record = record
        return found

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Resource) and (self.kind, self.id) == (other.kind, other.id)

    def __hash__(self) -> int:
        return hash((self.kind, self.id))

    @property
    def _store(self):
        return context.store()

    @property
    def backend(self):
        """The resource's Backend (the backend's name where this process has
        not initialised it)."""
        return self._backend

    @backend.setter
    def backend(self, value) -> None:
        self._backend = value

    @staticmethod
    def new_uuid() -> str:
        return str(uuid.uuid4())

    def save(self) -> None:
        """Write the record to the state store as it is (cinderlib's ``save``)."""
        self._save()

    @property
    def backend_name(self) -> str:
        return getattr(self.backend, 'id', self.backend)

    def __getattr__(self, name: str) -> Any:
        record = self.__dict__.get('_record')
        if record is not None:
            if name in record:
                return record[name]
            defaults = fields.DEFAULTS.get(self.kind, {})
            if name in defaults:
                return copy.deepcopy(defaults[name])
        raise AttributeError(name)

    def __repr__(self) -> str:
        return '<cinderlib.%s %s on %s (%s)>' % (type(self).__name__, self.id, self.backend_name, self.status)

    @property
    def id(self) -> str:
        return self._record['id']

    @property
    def name(self) -> str:
        """The name on the backend, as Cinder's ``name`` (``volume-<id>``);
        what a user named it is ``display_name``."""
        return fields.NAME_TEMPLATES.get(self.kind, '%s') % (self._record.get('_name_id') or self.id)

    @property
    def name_in_storage(self) -> str:
        """cinderlib's name for ``name``: the backend's name of the resource."""
        return self.name

    @property
    def display_name(self) -> str:
        return self._record.get('display_name') or ''

    @property
    def description(self) -> str:
        return self._record.get('display_description') or ''

    @property
    def status(self) -> str:
        return self._record.get('status')

    def describe(self) -> str:
        return "%s '%s'" % (self.kind, self.display_name or self.id)

    # -- what on the backend is the collection's ------------------------------------------
    @property
    def owned(self) -> bool:
        """Whether the collection made the backend object under this
        resource's name (its id was a random UUID made here, or the backend
        did not have the name when the collection's create began, or the
        driver's create succeeded), so that deleting it is the collection's
        to do. A record that is not owned is only forgotten on delete: the
        object of that name, if any, is someone else's (a hand-made LV, an
        old Cinder's image) and is left as it is."""
        return record_owned(self._record)

    def backend_object_name(self) -> str:
        """The name of the resource's object on the backend, as ``listing``
        names it (an LVM snapshot is ``_snapshot-<id>``, an RBD one
        ``volume-<vid>@snapshot-<id>``), else Cinder's ``name``."""
        return listing.object_name(listing.for_backend(self.backend), self)

    def check_name_free(self) -> bool:
        """Before a create: refuse a name the backend already has
        (BackendObjectExists; nothing is recorded or changed). True when the
        backend was asked and has no such name (the object a create then
        makes is the collection's), False when that needs no asking (a
        random id made here: no one else has its name) or can't be asked (a
        driver that can't list: its own error says when the name is taken)."""
        if self._record.get('owned'):
            return False
        found = listing.for_backend(self.backend)
        if found is None:
            return False
        name = listing.object_name(found, self)
        if driver_call(self, 'look up', found.find, name)[0]:
            raise BackendObjectExists(
                'create %s' % self.describe(), self.backend_name, 'an object', name,
                'Give another id, or remove or rename that object on the backend yourself if it holds nothing '
                'of value.')
        return True

    def _claim_backend_name(self) -> None:
        """``check_name_free``; a name found free makes the record owned."""
        if self.check_name_free():
            self._record['owned'] = True

    def _forget_record_only(self) -> None:
        """Delete a record that is not owned: the record goes, the backend
        object of its name (if any) is left, and the log says so."""
        LOG.warning("%s on backend '%s' was forgotten; the backend's object named '%s', if any, was left: "
                    'the collection did not make it.', self.describe().capitalize(), self.backend_name,
                    self.backend_object_name())
        self._removed()

    # -- adopt and release (Cinder's manage_existing and unmanage) ----------------------
    def _adopt(self, reference: Any, get_size, manage, size_field: str) -> None:
        """Make the backend object ``reference`` names this resource, crash-safely.

        Checked before anything is recorded: the reference (the driver's size
        call fails on one it can't find) and that no record of the store has
        it already. Then the record is written ``managing`` (not owned: the
        object is not the collection's until the driver made it this
        resource) and the driver adopts it: Cinder's LVM driver renames the LV
        to ``volume-<id>``, RBD renames the image. A failed adopt leaves no
        record; an interrupted one is settled by reconcile (``managing``).
        """
        ref = manage_reference(reference)
        with locks.resource_locked(self):
            self._record[size_field] = self._adoptable_size(ref, get_size)
            try:
                run_operation(self, 'manage', transitional={'status': 'managing', 'manage_reference': ref},
                              call=lambda: driver_call(self, 'adopt %s as' % describe_reference(ref), manage,
                                                       self._ovo, ref),
                              on_error={'status': 'error_managing'},
                              final={'status': 'available', 'owned': True}, model_update=True)
            except CinderlibError:
                self._store.remove(self.kind, self.id)  # what the driver refused stays as it was
                raise

    def _adoptable_size(self, ref: dict, get_size) -> int:
        """What adopting ``ref`` checks first, changing nothing (check mode
        runs it too): this resource's own name is free on the backend, no
        record names ``ref`` already, and the driver finds it; its size."""
        self._record['owned'] = False
        self.check_name_free()
        self._refuse_managed(ref)
        return driver_call(self, 'size up %s for' % describe_reference(ref), get_size, self._ovo, ref)

    def _refuse_managed(self, ref: dict) -> None:
        """A reference to an object a resource of the backend already is (its
        name on the backend) is refused."""
        name = str(ref.get('source-name') or ref.get('source-id') or '')
        for volume in self.backend.volumes_filtered():
            for known in (volume, *volume.snapshots):
                if known.id != self.id and known.backend_object_name() == name:
                    raise InvalidRequest("Can't adopt %s on backend '%s': it is %s, already known to the state "
                                         'store. Nothing was recorded or changed.'
                                         % (describe_reference(ref), self.backend_name, known.describe()))

    def _release(self, unmanage) -> None:
        """Forget the resource and leave its backend object (Cinder's unmanage)."""
        name = self.backend_object_name()
        driver_call(self, 'release', unmanage, self._ovo)
        self._removed()
        LOG.info("%s on backend '%s' was released: its object '%s' stays on the backend.",
                 self.describe().capitalize(), self.backend_name, name)

    def _forget(self) -> None:
        """Mark the record deleted, as Cinder's objects are once destroyed."""
        self._record.update(status='deleted', deleted=True,
                            deleted_at=datetime.datetime.now(datetime.UTC).replace(tzinfo=None).isoformat())

    def _save(self, **changes: Any) -> None:
        self._record.update(changes)
        self._record = self._store.put(self.kind, self._record)

    # Fields kept only in the state store: changing them needs no driver call.
    _updatable: tuple = ()

    def update(self, **changes: Any) -> None:
        """Change record-only fields (``display_description``, or
        ``description`` as cinderlib spelled it...); the driver is not called."""
        changes = fields.with_display_fields(changes)
        unknown = sorted(set(changes) - set(self._updatable))
        if unknown:
            raise InvalidRequest("Can't change %s of %s: only %s can be changed." % (
                ', '.join(unknown), self.describe(), ', '.join(self._updatable)))
        self._save(**copy.deepcopy(changes))

    def to_json(self, simplified: bool = True) -> dict:
        """``json``, or with ``simplified`` (the default, as in cinderlib) the
        resource's own data only: a snapshot or connection without its
        volume's. What persistence plugins store."""
        data = self.json
        if simplified:
            data.pop('volume', None)
        return data

    def to_jsons(self, simplified: bool = True) -> str:
        return serialization.to_string(self.to_json(simplified))

    def refresh(self) -> None:
        found = self._store.get(self.kind, id=self.id)
        if not found:
            raise NotFound('%s is no longer in the state store.' % self.describe())
        self._record = found[0]

    @property
    def record(self) -> dict:
        return copy.deepcopy(self._record)

    # -- serialization (properties from serialization.Serializable) -------------------
    def _serialized(self, full: bool) -> dict:
        return serialization.resource_data(self, full=full)


class Volume(Resource):
    kind = 'volume'
    _updatable = ('display_name', 'display_description', 'bootable', 'metadata')
    # Snapshots (connections) that loading serialized data gave without
    # saving them; None: the state store knows them.
    _snapshots: list | None = None
    _connections: list | None = None

    def __init__(self, backend_or_vol, **kwargs: Any) -> None:
        source = None
        if isinstance(backend_or_vol, Volume):
            source = backend_or_vol
            backend = source.backend
        else:
            backend = backend_or_vol
        kwargs = fields.with_display_fields(kwargs)
        record: dict = {}
        if source is not None:
            # A clone or a volume from a snapshot starts with its source's
            # fields, as in cinderlib (its display name included).
            for key in ('size', 'display_name', 'display_description', 'bootable', 'metadata', 'volume_type',
                        'pool_name'):
                if key in source._record:
                    record[key] = copy.deepcopy(source._record[key])
        size = kwargs.pop('size', record.get('size'))
        given_id = kwargs.pop('id', None)
        record.update({
            'id': validate_id(given_id or uuid.uuid4(), 'Volume'),
            'backend': backend.id,
            'display_name': kwargs.pop('display_name', record.get('display_name', '')) or '',
            'display_description': kwargs.pop('display_description', record.get('display_description', '')) or '',
            'size': size,
            'bootable': bool(kwargs.pop('bootable', record.get('bootable', False))),
            'status': 'creating',
            'attach_status': 'detached',
            'exported': False,
            'deleted': False,
            'metadata': dict(kwargs.pop('metadata', None) or record.get('metadata') or {}),
            'admin_metadata': {},
            'project_id': kwargs.pop('project_id', None) or context.setting('project_id'),
            'user_id': kwargs.pop('user_id', None) or context.setting('user_id'),
        })
        pool_name = kwargs.pop('pool_name', None) or record.get('pool_name')
        if not pool_name:
            pools = backend.pool_names
            pool_name = pools[0] if pools else backend.id
        elif pool_name not in backend.pool_names:
            raise InvalidRequest("Backend '%s' has no pool %r; its pools are: %s." % (
                backend.id, pool_name, ', '.join(backend.pool_names) or 'none'))
        record['pool_name'] = pool_name
        record['host'] = '%s@%s#%s' % (_host(backend), backend.id, pool_name)
        extra_specs = kwargs.pop('extra_specs', None)
        qos_specs = kwargs.pop('qos_specs', None)
        if extra_specs or qos_specs:
            # Each volume gets a private type, as cinderlib did: the type is
            # how Cinder passes extra and QoS specs to drivers.
            type_id = str(uuid.uuid4())
            record['volume_type'] = {
                'id': type_id, 'name': type_id, 'is_public': True, 'extra_specs': dict(extra_specs or {}),
                'qos_specs_id': str(uuid.uuid4()) if qos_specs else None,
            }
            if qos_specs:
                record['volume_type']['qos_specs'] = {
                    'id': record['volume_type']['qos_specs_id'], 'name': type_id,
                    'consumer': 'back-end', 'specs': dict(qos_specs)}
        record['volume_type_id'] = (record.get('volume_type') or {}).get('id')
        record.update(kwargs)  # other Cinder Volume fields, as cinderlib allowed
        record['owned'] = not given_id  # a name the caller chose may be taken: create looks first
        if not isinstance(record['size'], int) or isinstance(record['size'], bool) or record['size'] < 1:
            raise InvalidRequest('Volume size must be a positive whole number of GiB, not %r.' % (record['size'],))
        super().__init__(backend, record)

    @classmethod
    def from_record(cls, backend, record: dict) -> Volume:
        volume = cls._known(backend, record)
        if volume is None:
            volume = cls.__new__(cls)
            Resource.__init__(volume, backend, record)
        return volume

    @classmethod
    def get_by_id(cls, volume_id: str) -> Volume:
        """The volume of that id (cinderlib's): VolumeNotFound if none."""
        found = context.store().volume_records(volume_id=volume_id)
        if not found:
            raise VolumeNotFound('Volume %s is not in the state store.' % volume_id)
        return volume_of(found[0])

    @classmethod
    def get_by_name(cls, volume_name: str) -> list:
        """The volumes of that display name (cinderlib's; names are labels)."""
        return [volume_of(r) for r in context.store().volume_records(display_name=volume_name)]

    @property
    def volume_type(self):
        """The volume's type as Cinder's VolumeType object (extra and QoS specs), or None."""
        return self._ovo.volume_type

    @property
    def size(self) -> int:
        return self._record['size']

    @property
    def snapshots(self) -> list:
        if self._snapshots is not None:
            return list(self._snapshots)
        return [Snapshot.from_record(self, r) for r in self._store.get('snapshot', volume_id=self.id)]

    @property
    def connections(self) -> list:
        """The volume's connections (``connections.Connection``)."""
        if self._connections is not None:
            return list(self._connections)
        from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.connections import Connection
        return [Connection.from_record(self, r) for r in self._store.connection_records(volume_id=self.id)]

    @property
    def export_owned(self) -> bool:
        """Whether the volume's export on the backend (an LVM volume's iSCSI
        target...) is the collection's: its ``create_export`` succeeded, or
        began when the backend had no target of that name (``connections``),
        and no ``remove_export`` ended it since. An export the collection did
        not make is never ended or removed. Records written before records
        said so: True, as then."""
        return bool(self._record.get('exported', True))

    def connection_for(self, host: str):
        """The connection to host ``host`` (connector ``host``), or None."""
        found = [c for c in self.connections if c.host == host]
        return found[0] if found else None

    @property
    def local_attach(self):
        """The connection attached on this host, or None (cinderlib's attribute)."""
        from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.connections import local_host
        found = [c for c in self.connections if c.attached and c.record.get('attached_host') == local_host()]
        return found[0] if found else None

    def connect(self, connector_dict: dict, **ovo_fields: Any):
        """Export the volume to the host ``connector_dict`` describes (its
        os-brick connector properties); returns the Connection, whose
        ``conn_info`` that host attaches with. Idempotent per host."""
        from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.connections import Connection
        connection = Connection.connect(self, connector_dict, **ovo_fields)
        self.refresh()
        return connection

    def disconnect(self, connection, force: bool = False) -> None:
        connection.disconnect(force)
        self.refresh()

    def attach(self, multipath: bool = False, enforce_multipath: bool = False, **kwargs: Any):
        """Connect the volume to this host and attach it with os-brick;
        returns the Connection (``path`` is the device). Idempotent."""
        from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.connections import Connection
        connection = Connection.attach_volume(self, multipath, enforce_multipath, **kwargs)
        self.refresh()
        return connection

    def detach(self, force: bool = False) -> None:
        """Detach the volume from this host and disconnect it."""
        connection = self.local_attach
        if connection is None:
            raise NotLocal('%s is not attached on this host.' % self.describe().capitalize())
        connection.detach_and_disconnect(force)
        self.refresh()

    def cleanup(self) -> None:
        """Detach the volume's devices on this host and remove its export
        (cinderlib's ``cleanup``); the connections stay recorded."""
        with locks.resource_locked(self):
            for connection in self.connections:
                connection.detach()
            if self.export_owned:
                driver = self.backend.driver
                driver_call(self, 'remove the export of', driver.remove_export, context.cinder_runtime().context,
                            self._ovo)
                self._save(exported=False)

    def exists_on_backend(self) -> bool | None:
        """Whether the driver still has this volume; None when it can't tell.

        Cinder drivers have no common "does it exist" call; LVM-based drivers
        and RBD can answer (``listing``).
        """
        found = listing.for_backend(self.backend)
        if found is None:
            return None
        return driver_call(self, 'look up', found.find, self.name)[0]

    # -- Cinder object for the driver ------------------------------------------------
    @property
    def _ovo(self):
        """A Cinder Volume object made from the record, for the driver (a
        new one each time: changing it changes nothing)."""
        runtime = context.cinder_runtime()
        objects = runtime.cinder_objects
        ctx = runtime.context
        ovo_fields = {k: v for k, v in self._record.items()
                      if k not in _VOLUME_OWN_KEYS and k in objects.Volume.fields}
        ovo = objects.Volume(ctx, **ovo_fields)
        ovo.metadata = dict(self._record.get('metadata') or {})
        ovo.admin_metadata = dict(self._record.get('admin_metadata') or {})
        ovo.glance_metadata = {}
        ovo.volume_attachment = objects.VolumeAttachmentList(ctx, objects=[])
        ovo.consistencygroup = None
        ovo.group = None
        ovo.cluster = None
        vtype = self._record.get('volume_type')
        if vtype:
            qos = vtype.get('qos_specs')
            type_ovo = objects.VolumeType(ctx, id=vtype['id'], name=vtype['name'], is_public=True,
                                          extra_specs=dict(vtype.get('extra_specs') or {}),
                                          qos_specs_id=vtype.get('qos_specs_id'))
            type_ovo.qos_specs = (objects.QualityOfServiceSpecs(
                ctx, id=qos['id'], name=qos['name'], consumer=qos['consumer'], specs=dict(qos['specs']))
                if qos else None)
            ovo.volume_type = type_ovo
        else:
            ovo.volume_type = None
        _fill_unset_fields(ovo)
        ovo.obj_reset_changes()
        return ovo

    # -- operations (the crash-safe sequence: operations.run_operation) ----------------
    def create(self) -> None:
        """Create the volume on the array (cinderlib's Volume.create); a name
        the backend already has is refused (``_claim_backend_name``)."""
        with locks.resource_locked(self):
            self._claim_backend_name()
            run_operation(self, 'create', transitional={'status': 'creating'}, call=self._create_on_backend,
                          on_error={'status': 'error'},
                          final={'status': 'available', 'owned': True}, model_update=True)

    def _create_on_backend(self) -> Any:
        """The driver's create: a clone, from a snapshot or empty; its model update."""
        driver = self.backend.driver
        if self._record.get('source_volid'):
            source = self.backend.volumes_filtered(volume_id=self._record['source_volid'])
            if not source:
                raise NotFound("Source volume %s is not known on backend '%s'."
                               % (self._record['source_volid'], self.backend_name))
            return driver_call(self, 'clone %s into' % source[0].describe(), driver.create_cloned_volume,
                               self._ovo, source[0]._ovo)
        if self._record.get('snapshot_id'):
            snapshot = Snapshot.known_on(self.backend, self._record['snapshot_id'])
            return driver_call(self, 'create from %s' % snapshot.describe(), driver.create_volume_from_snapshot,
                               self._ovo, snapshot._ovo)
        return driver_call(self, 'create', driver.create_volume, self._ovo)

    def manage(self, reference: Any) -> None:
        """Adopt the backend object ``reference`` names (an LV or RBD image
        name, or the driver's reference dict) as this volume; its size is the
        object's, rounded up to GiB by the driver. See ``Resource._adopt``."""
        driver = self.backend.driver
        self._adopt(reference, driver.manage_existing_get_size, driver.manage_existing, 'size')

    def adoptable_size(self, reference: Any) -> int:
        """The size ``manage(reference)`` would give this volume, checking
        what it checks first; nothing is recorded or changed."""
        return self._adoptable_size(manage_reference(reference), self.backend.driver.manage_existing_get_size)

    def refuse_unmanage(self) -> None:
        """A volume with connections or snapshots can't be released: InvalidVolume."""
        if self.connections or self.snapshots:
            raise InvalidVolume("Can't release %s on backend '%s': it has %s; release or delete them first."
                                % (self.describe(), self.backend_name,
                                   'connections' if self.connections else 'snapshots'))

    def unmanage(self) -> None:
        """Forget this volume and leave its data on the backend, under the
        name the driver gave it (``volume-<id>`` for LVM and RBD)."""
        with locks.resource_locked(self):
            self.refuse_unmanage()
            self._release(self.backend.driver.unmanage)

    def manage_snapshot(self, reference: Any, name: str = '', description: str = '', **kwargs: Any) -> Snapshot:
        """Adopt the backend snapshot ``reference`` names as a snapshot of this volume."""
        snapshot = Snapshot(self, name=name, description=description, **kwargs)
        driver = self.backend.driver
        snapshot._adopt(reference, driver.manage_existing_snapshot_get_size, driver.manage_existing_snapshot,
                        'volume_size')
        snapshot._save(progress='100%')
        if self._snapshots is not None:
            self._snapshots.append(snapshot)
        return snapshot

    def refuse_delete_if_connected(self) -> None:
        """A connected volume can't be deleted: InvalidRequest naming its hosts."""
        connections = self.connections
        if connections:
            raise InvalidRequest("Can't delete %s on backend '%s': it is connected to %s; disconnect it first "
                                 '(cinderlib_connection with state=absent).' % (
                                     self.describe(), self.backend_name,
                                     ', '.join("host '%s'" % c.host for c in connections)))

    def delete(self) -> None:
        with locks.resource_locked(self):
            self.refuse_delete_if_connected()
            if self.snapshots:
                raise InvalidVolume("Can't delete %s on backend '%s': it has snapshots (%s); delete them first."
                                    % (self.describe(), self.backend_name,
                                       ', '.join(s.display_name or s.id for s in self.snapshots)))
            if not self.owned:
                self._forget_record_only()
                return
            run_operation(self, 'delete', transitional={'status': 'deleting'},
                          call=lambda: driver_call(self, 'delete', self.backend.driver.delete_volume, self._ovo),
                          on_error={'status': 'error_deleting'}, final=lambda _: self._removed())

    def _removed(self) -> None:
        """Forget the deleted volume: its record, its lock and the backend's list."""
        self._store.remove('volume', self.id)
        self._forget()
        locks.forget(locks.resource_lock_name(self))  # ids are never reused
        if hasattr(self.backend, '_volume_removed'):
            self.backend._volume_removed(self)

    def extend(self, new_size: int) -> int:
        """Grow the volume; returns its new size in bytes, as the host sees
        it when it is attached here (os-brick's answer), else as asked."""
        with locks.resource_locked(self):
            if not isinstance(new_size, int) or isinstance(new_size, bool) or new_size <= self.size:
                raise InvalidRequest('New size of %s must be a whole number of GiB larger than its current %s GiB, '
                                     'not %r.' % (self.describe(), self.size, new_size))
            previous = self._record['status']
            driver = self.backend.driver
            run_operation(self, 'extend', transitional={'status': 'extending'},
                          call=lambda: driver_call(self, 'extend', driver.extend_volume, self._ovo, new_size),
                          on_error={'status': 'error_extending'},
                          final={'status': previous if previous in ('available', 'in-use') else 'available',
                                 'size': new_size})
            if previous == 'in-use':
                seen = self._extend_attached_devices()
                if seen is not None:
                    return seen
            return new_size * 1024 ** 3

    def _extend_attached_devices(self) -> int | None:
        """Tell os-brick on this host that an attached volume grew (cinderlib
        did); hosts that attached it elsewhere rescan themselves. Returns the
        size os-brick sees here, None when it is not attached here."""
        for connection in self.connections:
            if connection.attached_here():
                try:
                    return connection.extend()
                except CinderlibError as exc:
                    exc.message = ('%s grew to %s GiB on the backend, but its device on this host was not '
                                   'grown: %s' % (self.describe().capitalize(), self.size, exc.message))
                    exc.args = (exc.message,)
                    raise
        return None

    def clone(self, **new_fields: Any) -> Volume:
        new_fields['source_volid'] = self.id
        new_fields.setdefault('size', self.size)
        if new_fields['size'] < self.size:
            raise InvalidRequest("A clone of %s can't be smaller than its %s GiB." % (self.describe(), self.size))
        # A bigger clone is the driver's to grow, as in Cinder's create flow.
        clone = Volume(self, **new_fields)
        clone.create()
        return clone

    def create_snapshot(self, name: str = '', description: str = '', **kwargs: Any) -> Snapshot:
        snapshot = Snapshot(self, name=name, description=description, **kwargs)
        snapshot.create()
        if self._snapshots is not None:
            self._snapshots.append(snapshot)
        return snapshot

    def to_dict(self) -> dict:
        # self.snapshots: the store's, or those loaded data gave (serialization).
        return views.volume_view(self._record, [s.record for s in self.snapshots],
                                 [c.record for c in self._connections] if self._connections is not None
                                 else self._store.connection_records(volume_id=self.id))


class VolumeChild(Resource):
    """A resource of a volume (a snapshot, a connection): its ``volume`` is
    looked up in the state store when it was not given (cinderlib's)."""

    _volume = None

    @property
    def volume(self) -> Volume:
        if self._volume is None:
            self._volume = Volume.get_by_id(self._record['volume_id'])
        return self._volume

    @volume.setter
    def volume(self, value: Volume) -> None:
        self._volume = value


class Snapshot(VolumeChild):
    kind = 'snapshot'
    _updatable = ('display_name', 'display_description')

    def __init__(self, volume: Volume, **kwargs: Any) -> None:
        kwargs = fields.with_display_fields(kwargs)
        given_id = kwargs.pop('id', None)
        record = {
            'id': validate_id(given_id or uuid.uuid4(), 'Snapshot'),
            'volume_id': volume.id,
            'backend': volume.backend_name,
            'display_name': kwargs.pop('display_name', '') or '',
            'display_description': kwargs.pop('display_description', '') or '',
            'volume_size': volume.size,
            'status': 'creating',
            'deleted': False,
            'progress': '0%',
            'metadata': dict(kwargs.pop('metadata', None) or {}),
            'project_id': context.setting('project_id'),
            'user_id': context.setting('user_id'),
            'volume_type_id': volume._record.get('volume_type_id'),
        }
        record.update(kwargs)
        record['owned'] = not given_id  # a name the caller chose may be taken: create looks first
        super().__init__(volume.backend, record)
        self.volume = volume

    @classmethod
    def from_record(cls, volume: Volume, record: dict) -> Snapshot:
        snapshot = cls._known(volume.backend, record)
        if snapshot is None:
            snapshot = cls.__new__(cls)
            Resource.__init__(snapshot, volume.backend, record)
        snapshot.volume = volume
        return snapshot

    @classmethod
    def get_by_id(cls, snapshot_id: str) -> Snapshot:
        """The snapshot of that id (cinderlib's): SnapshotNotFound if none."""
        found = cls._store_of().snapshot_records(snapshot_id=snapshot_id)
        if not found:
            raise SnapshotNotFound('Snapshot %s is not in the state store.' % snapshot_id)
        return child_of('snapshot', found[0], cls._store_of())

    @classmethod
    def get_by_name(cls, snapshot_name: str) -> list:
        """The snapshots of that display name (cinderlib's; names are labels)."""
        store = cls._store_of()
        return [child_of('snapshot', r, store) for r in store.snapshot_records(display_name=snapshot_name)]

    @classmethod
    def known_on(cls, backend, snapshot_id: str) -> Snapshot:
        """The snapshot of that id on ``backend``: NotFound naming the backend if none."""
        found = cls._store_of().get('snapshot', id=snapshot_id)
        volumes = backend.volumes_filtered(volume_id=found[0]['volume_id']) if found else []
        if not volumes:
            raise NotFound("Snapshot %s is not known on backend '%s'." % (snapshot_id, backend.id))
        return cls.from_record(volumes[0], found[0])

    @staticmethod
    def _store_of():
        return context.store()

    @property
    def _ovo(self):
        """A Cinder Snapshot object made from the record (and its volume's), for the driver."""
        runtime = context.cinder_runtime()
        objects = runtime.cinder_objects
        ovo_fields = {k: v for k, v in self._record.items()
                      if k not in _SNAPSHOT_OWN_KEYS and k in objects.Snapshot.fields}
        ovo = objects.Snapshot(runtime.context, **ovo_fields)
        ovo.volume = self.volume._ovo
        ovo.metadata = dict(self._record.get('metadata') or {})
        _fill_unset_fields(ovo)
        ovo.obj_reset_changes()
        return ovo

    def create(self) -> None:
        with locks.resource_locked(self):
            self._claim_backend_name()
            run_operation(self, 'create', transitional={'status': 'creating'},
                          call=lambda: driver_call(self, 'create', self.backend.driver.create_snapshot, self._ovo),
                          on_error={'status': 'error'},
                          final={'status': 'available', 'progress': '100%', 'owned': True}, model_update=True)

    def delete(self) -> None:
        with locks.resource_locked(self):
            if not self.owned:
                self._forget_record_only()
                return
            run_operation(self, 'delete', transitional={'status': 'deleting'},
                          call=lambda: driver_call(self, 'delete', self.backend.driver.delete_snapshot, self._ovo),
                          on_error={'status': 'error_deleting'}, final=lambda _: self._removed())

    def unmanage(self) -> None:
        """Forget this snapshot and leave it on the backend."""
        with locks.resource_locked(self):
            self._release(self.backend.driver.unmanage_snapshot)

    def _removed(self) -> None:
        """Forget the deleted snapshot: its record and its volume's list."""
        self._store.remove('snapshot', self.id)
        self._forget()
        if self.volume._snapshots is not None:
            self.volume._snapshots = [s for s in self.volume._snapshots if s.id != self.id]

    def create_volume(self, **new_fields: Any) -> Volume:
        new_fields['snapshot_id'] = self.id
        new_fields.setdefault('size', self._record.get('volume_size') or self.volume.size)
        volume = Volume(self.volume, **new_fields)
        volume.create()
        return volume

    def to_dict(self) -> dict:
        return views.snapshot_view(self._record)


def manage_reference(reference: Any) -> dict:
    """The driver's reference to a backend object: a name, or a dict as
    Cinder's manage API takes it (``{'source-name': ...}``)."""
    if isinstance(reference, str) and reference.strip():
        return {'source-name': reference.strip()}
    if isinstance(reference, dict) and reference and all(isinstance(k, str) for k in reference):
        return dict(reference)
    raise InvalidRequest('A reference to a backend object is its name (an LV or RBD image name) or a dict such '
                         "as {'source-name': NAME}, not %r." % (reference,))


def describe_reference(ref: dict) -> str:
    return ', '.join("%s '%s'" % (key, value) for key, value in sorted(ref.items()))


def _fill_unset_fields(ovo) -> None:
    """Give every unset field its default (or None), as a DB row would.

    Cinder's objects lazy-load unset fields from Cinder's DB, which is not
    there: a driver reading one must get a value, not a load attempt.
    """
    from oslo_versionedobjects import fields as ovo_fields
    for name, field in ovo.fields.items():
        if ovo.obj_attr_is_set(name):
            continue
        if field.default is not ovo_fields.UnspecifiedDefault:
            setattr(ovo, name, field.default)
        elif field.nullable:
            setattr(ovo, name, None)


def _host(backend) -> str:
    return context.setting('host') or 'cinderlib'


def volume_of(record: dict) -> Volume:
    """The Volume of a stored record, bound to its backend when this process
    has initialised it, else to the backend's name."""
    return Volume.from_record(context.STATE.backends.get(record['backend'], record['backend']), record)


def child_of(kind: str, record: dict, store) -> Resource:
    """The Snapshot or Connection of a stored record, with its volume."""
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.connections import Connection
    volumes = store.volume_records(volume_id=record['volume_id'])
    volume = volume_of(volumes[0] if volumes else {'id': record['volume_id'], 'backend': record.get('backend')})
    return (Snapshot if kind == 'snapshot' else Connection).from_record(volume, record)
