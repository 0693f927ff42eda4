# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""Serialization with cinderlib's semantics: ``json`` (dict), ``jsons``
(str), ``dump``/``dumps`` (fully loaded) of backends, volumes, snapshots
and connections, and ``load`` of any of them.

Format ``cinderlib.storage/2`` (``FORMAT``, the ``format`` key of every
serialized object; format 1 held ``name``/``description`` where records
now hold Cinder's ``display_name``/``display_description``, and is read too):

- Backend: ``{'format', 'class': 'Backend', 'backend': CONFIG, 'volumes': [...]}``,
  its volumes' ``json`` (or, in its ``dump``, their ``dump``).
- Volume: ``{'format', 'class': 'Volume', 'backend': CONFIG, 'record': {...}}``;
  its ``dump`` adds ``snapshots`` and ``connections``, lists of records.
- Snapshot (Connection alike): ``{'format', 'class', 'backend': CONFIG,
  'record': {...}, 'volume': {...}}``: it carries its volume's record, as
  cinderlib's snapshots carried their volume.
- A list of any of these: the module's ``json()``/``dump()`` (every backend).

CONFIG is ``{'volume_backend_name': name}``. With ``output_all_backend_info``
it is the whole driver configuration (credentials included), and volumes
inside a Backend keep only the name. Records are the state store's and never
hold backend configuration; the credentials they keep for hosts
(``provider_auth``, passwords in connection info: ``secrets.is_secret_field``)
are left out unless ``output_all_backend_info``, and loading data without
them keeps the ones the store has.

``load`` reads this format, the same objects without ``format`` (written
before it existed) and what cinderlib 5.x wrote (see ``cinderlib5_json``).
``parse`` (data to records) and ``save_records`` are cinder-free; only
``load`` builds the library's objects.
"""

from __future__ import annotations

import copy
import json as jsonlib
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import (
    cinderlib5_json,
    context,
    fields,
    secrets,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    InvalidRequest,
    NotFound,
)

FORMAT_NAME = 'cinderlib.storage'
FORMAT_VERSION = 2  # 2: records with Cinder's field names (display_name...); 1 is read too
FORMAT = '%s/%d' % (FORMAT_NAME, FORMAT_VERSION)
CLASSES = ('Backend', 'Volume', 'Snapshot', 'Connection')
KIND_OF = {'Volume': 'volume', 'Snapshot': 'snapshot', 'Connection': 'connection'}


# -- output -----------------------------------------------------------------------------
def _backend_class():
    # backend.py imports this module.
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import Backend
    return Backend


def _output_all() -> bool:
    return bool(context.setting('output_all_backend_info'))


def backend_output(backend) -> dict:
    """What output says of a backend: a Backend's ``config``, or a name's."""
    if isinstance(backend, str):
        return {'volume_backend_name': backend}
    return copy.deepcopy(backend.config)


def public_record(record: dict, kind: str) -> dict:
    """A record as output shows it: no credentials unless output_all_backend_info."""
    return copy.deepcopy(record) if _output_all() else secrets.record_without_secrets(record, kind)


def _connection_records(volume) -> list[dict]:
    if isinstance(getattr(type(volume), 'connections', None), property):
        return [c.record for c in volume.connections]
    return volume._store.connection_records(volume_id=volume.id)


def resource_data(resource, full: bool) -> dict:
    """``json`` (``full=False``) or ``dump`` of a Volume, Snapshot or Connection."""
    data = {'format': FORMAT, 'class': type(resource).__name__, 'backend': backend_output(resource.backend),
            'record': public_record(resource.record, resource.kind)}
    if resource.kind == 'volume':
        if full:
            data['snapshots'] = [public_record(s.record, 'snapshot') for s in resource.snapshots]
            data['connections'] = [public_record(c, 'connection') for c in _connection_records(resource)]
    else:
        data['volume'] = public_record(resource.volume.record, 'volume')
    return data


def backend_data(backend, full: bool) -> dict:
    """``json`` or ``dump`` of a Backend (or a DetachedBackend)."""
    volumes = [resource_data(v, full) for v in backend.volumes]
    for volume in volumes:
        # The backend's configuration is said once, at the top.
        volume['backend'] = {'volume_backend_name': backend.id}
    return {'format': FORMAT, 'class': 'Backend', 'backend': backend_output(backend), 'volumes': volumes}


def to_string(data: Any) -> str:
    return jsonlib.dumps(data, default=str, separators=(',', ':'))


class Serializable:
    """cinderlib's serialization properties, for Backend and every resource:
    ``json``/``jsons`` (light) and ``dump``/``dumps`` (fully loaded)."""

    def _serialized(self, full: bool) -> dict:
        raise NotImplementedError

    @property
    def json(self) -> dict:
        return self._serialized(full=False)

    @property
    def jsons(self) -> str:
        return to_string(self.json)

    @property
    def dump(self) -> dict:
        """Like ``json``, fully loaded (a volume's snapshots and connections)."""
        return self._serialized(full=True)

    @property
    def dumps(self) -> str:
        return to_string(self.dump)

    @classmethod
    def load(cls, data, save: bool = False):
        """Objects from serialized data (see ``serialization.load``)."""
        return load(data, save)


def json() -> list:
    """``json`` of every backend of this process."""
    return [backend_data(b, full=False) for b in context.STATE.backends.values()]


def jsons() -> str:
    return to_string(json())


def dump() -> list:
    """``dump`` of every backend of this process: all their volumes, fully."""
    return [backend_data(b, full=True) for b in context.STATE.backends.values()]


def dumps() -> str:
    return to_string(dump())


class DetachedBackend:
    """A backend known by name only: what ``load`` gives, with
    ``fail_on_missing_backend=False``, for a serialized backend that this
    process has not initialised. Its volumes can be saved, listed and
    serialized; nothing reaches a driver."""

    def __init__(self, name: str, volumes: list) -> None:
        self.id = name
        self.volumes = volumes

    def __repr__(self) -> str:
        return '<cinderlib.Backend %s (not initialised)>' % self.id

    @property
    def config(self) -> dict:
        return {'volume_backend_name': self.id}

    json = property(lambda self: backend_data(self, full=False))
    jsons = property(lambda self: to_string(self.json))
    dump = property(lambda self: backend_data(self, full=True))
    dumps = property(lambda self: to_string(self.dump))


# -- reading ----------------------------------------------------------------------------
@dataclass
class VolumeData:
    record: dict
    snapshots: list | None = None  # None: the data did not hold them
    connections: list | None = None


@dataclass
class Item:
    """One serialized object, as records."""

    cls: str
    backend: dict
    volumes: list = field(default_factory=list)  # a Backend's; a Volume itself; a Snapshot's volume
    record: dict | None = None  # a Snapshot's or a Connection's

    @property
    def backend_name(self) -> str:
        return self.backend['volume_backend_name']


def _at(where: str) -> str:
    return ' (at %s)' % where if where else ''


def _sub(where: str, key: str) -> str:
    return '%s.%s' % (where, key) if where else key


def decode(data: Any) -> Any:
    """A JSON string (or bytes) parsed; anything else as it is."""
    if isinstance(data, bytes):
        data = data.decode('utf-8')
    if isinstance(data, str):
        try:
            return jsonlib.loads(data)
        except ValueError as exc:
            raise InvalidRequest('The data to load is not valid JSON: %s.' % exc, exc) from exc
    return data


def parse(data: Any) -> list[Item]:
    """Every object of ``data`` (any serialized form, or a list of them)."""
    data = decode(data)
    if isinstance(data, list):
        return [_item(element, '[%d]' % index, None) for index, element in enumerate(data)]
    return [_item(data, '', None)]


def _check_format(value: Any, where: str) -> None:
    if value is None:
        return  # cinderlib 5.x, or this collection before 'format'
    name, sep, version = str(value).partition('/')
    if name != FORMAT_NAME or not sep or not version.isdigit():
        raise InvalidRequest("The data to load%s has format %r: this library reads %s and cinderlib 5.x's JSON."
                             % (_at(where), value, FORMAT))
    if int(version) > FORMAT_VERSION:
        raise InvalidRequest('The data to load%s has format %r, from a newer cinderlib.storage; this one reads '
                             'up to %s: upgrade the collection where you load it.' % (_at(where), value, FORMAT))


def _backend(item: dict, where: str, parent: dict | None) -> dict:
    backend = item.get('backend', parent)
    if isinstance(backend, str):
        backend = {'volume_backend_name': backend}
    name = backend.get('volume_backend_name') if isinstance(backend, dict) else None
    if not isinstance(name, str) or not name:
        raise InvalidRequest("The data to load%s names no backend: it needs 'backend': {'volume_backend_name': ...}."
                             % _at(where))
    if parent is not None and name != parent['volume_backend_name']:
        raise InvalidRequest('The data to load%s puts a volume of backend %r in backend %r.'
                             % (_at(where), name, parent['volume_backend_name']))
    return copy.deepcopy(backend)


def _item(item: Any, where: str, parent: dict | None) -> Item:
    if not isinstance(item, dict) or item.get('class') not in CLASSES:
        raise InvalidRequest("The data to load%s is not a serialized %s: it needs a 'class' naming one."
                             % (_at(where), ', '.join(CLASSES)))
    _check_format(item.get('format'), where)
    backend = _backend(item, where, parent)
    cls = item['class']
    if parent is not None and cls != 'Volume':
        raise InvalidRequest('The data to load%s is a %s where a Volume belongs.' % (_at(where), cls))
    if cls == 'Backend':
        volumes = []
        nested = item.get('volumes') or []
        for index, volume in enumerate(nested if isinstance(nested, list) else [nested]):
            volumes.extend(_item(volume, '%s[%d]' % (_sub(where, 'volumes'), index), backend).volumes)
        return Item(cls, backend, volumes)
    name = backend['volume_backend_name']
    if 'ovo' in item:
        return _cinderlib5_item(item, cls, backend, name, where)
    record = _checked(item.get('record'), KIND_OF[cls], name, _sub(where, 'record'))
    if cls == 'Volume':
        return Item(cls, backend, [_volume_data(record, item.get('snapshots'), item.get('connections'), where)])
    volume = item.get('volume')
    volumes = [VolumeData(_checked(volume, 'volume', name, _sub(where, 'volume')))] if volume is not None else []
    return _with_volume(Item(cls, backend, volumes, record), where)


def _cinderlib5_item(item: dict, cls: str, backend: dict, name: str, where: str) -> Item:
    where = _sub(where, 'ovo')
    if cls == 'Volume':
        record, snapshots, connections = cinderlib5_json.volume(item['ovo'], name, where)
        return Item(cls, backend, [_volume_data(_checked(record, 'volume', name, where), snapshots, connections,
                                                where)])
    reader = cinderlib5_json.snapshot if cls == 'Snapshot' else cinderlib5_json.connection
    record = _checked(reader(item['ovo'], name, where), KIND_OF[cls], name, where)
    volume = cinderlib5_json.item_volume(item, name, where)
    volumes = [VolumeData(_checked(volume, 'volume', name, _sub(where, 'volume')))] if volume else []
    return _with_volume(Item(cls, backend, volumes, record), where)


def _with_volume(item: Item, where: str) -> Item:
    if item.volumes and item.volumes[0].record['id'] != item.record['volume_id']:
        raise InvalidRequest('The data to load%s: the %s belongs to volume %s but carries volume %s.'
                             % (_at(where), item.cls, item.record['volume_id'], item.volumes[0].record['id']))
    return item


def _volume_data(record: dict, snapshots: Any, connections: Any, where: str) -> VolumeData:
    return VolumeData(record, _children(snapshots, 'snapshot', record, _sub(where, 'snapshots')),
                      _children(connections, 'connection', record, _sub(where, 'connections')))


def _children(children: Any, kind: str, volume: dict, where: str) -> list | None:
    if children is None:
        return None  # not in the data: the store knows them
    if not isinstance(children, list):
        raise InvalidRequest('The data to load%s must be a list of %s records.' % (_at(where), kind))
    return [_checked(child, kind, volume['backend'], '%s[%d]' % (where, index), volume['id'])
            for index, child in enumerate(children)]


def _checked(record: Any, kind: str, backend: str, where: str, volume_id: str | None = None) -> dict:
    """A copy of a record fit for the store, bound to its backend by name."""
    if not isinstance(record, dict) or not isinstance(record.get('id'), str) or not record['id']:
        raise InvalidRequest('The data to load%s is not a %s record: it needs an id.' % (_at(where), kind))
    record = copy.deepcopy(record)
    record['backend'] = backend  # a name, never a configuration
    if kind in ('volume', 'snapshot'):
        fields.with_display_fields(record)  # format 1's names
    if kind == 'volume':
        size = record.get('size')
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise InvalidRequest('The data to load%s: volume %s has no valid size (%r).'
                                 % (_at(where), record['id'], size))
        return record
    if volume_id is not None:
        record.setdefault('volume_id', volume_id)
        if record['volume_id'] != volume_id:
            raise InvalidRequest('The data to load%s: %s %s is listed under volume %s but belongs to volume %s.'
                                 % (_at(where), kind, record['id'], volume_id, record['volume_id']))
    if not record.get('volume_id'):
        raise InvalidRequest('The data to load%s: %s %s names no volume_id.' % (_at(where), kind, record['id']))
    return record


# -- saving -----------------------------------------------------------------------------
def records_of(items: list[Item]) -> list[tuple[str, dict]]:
    """(kind, record) of every record ``items`` hold, each volume first."""
    found = []
    for item in items:
        for volume in item.volumes:
            found.append(('volume', volume.record))
            found.extend(('snapshot', s) for s in volume.snapshots or [])
            found.extend(('connection', c) for c in volume.connections or [])
        if item.record is not None:
            found.append((KIND_OF[item.cls], item.record))
    return found


def _restore_secrets(new: dict, old: dict, kind: str, top: bool = True) -> None:
    """Keep stored credentials that serialized output left out."""
    for key, value in old.items():
        if key not in new:
            if secrets.is_secret_field(kind, key, top):
                new[key] = copy.deepcopy(value)
        elif kind == 'connection' and isinstance(new[key], dict) and isinstance(value, dict):
            _restore_secrets(new[key], value, kind, top=False)


def save_records(store, items: list[Item]) -> dict[tuple[str, str], dict]:
    """Write every record of ``items`` to ``store``; returns the stored
    records by (kind, id)."""
    records = records_of(items)
    stored = {}
    for kind, record in records:
        record = copy.deepcopy(record)
        previous = store.get(kind, id=record['id'])
        if previous:
            _restore_secrets(record, previous[0], kind)
        stored[(kind, record['id'])] = store.put(kind, record)
    return stored


# -- objects ----------------------------------------------------------------------------
def load(data: Any, save: bool = False):
    """Objects from any serialized form: a dict, a list or a JSON string.

    Gives what the data holds: a Backend, Volume, Snapshot, or a list of
    them. ``save=True`` also writes their records to the state store.
    Backends named by the data must be initialised in this process, or
    carried with their whole configuration (then they are initialised);
    with ``fail_on_missing_backend=False`` the objects are bound to the
    backend's name only.
    """
    data = decode(data)
    items = parse(data)
    context.ensure_setup()
    # Every backend first: a missing one fails the load before any write.
    backends = [_backend_class().load_backend(item.backend) for item in items]
    stored = save_records(context.store(), items) if save else {}
    built = [_build(item, backend, stored, save) for item, backend in zip(items, backends, strict=True)]
    return built if isinstance(data, list) else built[0]


def _build(item: Item, backend, stored: dict, save: bool):
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import connections, objects

    def current(kind: str, record: dict) -> dict:
        return copy.deepcopy(stored.get((kind, record['id']), record))

    volumes = []
    for data in item.volumes:
        volume = objects.Volume.from_record(backend, current('volume', data.record))
        if not save and data.snapshots is not None:
            volume._snapshots = [objects.Snapshot.from_record(volume, current('snapshot', s)) for s in data.snapshots]
        if not save and data.connections is not None:
            volume._connections = [connections.Connection.from_record(volume, current('connection', c))
                                   for c in data.connections]
        volumes.append(volume)
    if item.cls == 'Backend':
        if isinstance(backend, str):
            return DetachedBackend(backend, volumes)
        backend._volumes = volumes
        return backend
    if item.cls == 'Volume':
        return volumes[0]
    if not volumes:
        found = context.store().volume_records(volume_id=item.record['volume_id'])
        if not found:
            raise NotFound('The %s to load belongs to volume %s, which is neither in the data nor in the state store.'
                           % (item.cls.lower(), item.record['volume_id']))
        volumes = [objects.Volume.from_record(backend, found[0])]
    cls = {'Snapshot': objects.Snapshot, 'Connection': connections.Connection}[item.cls]
    return cls.from_record(volumes[0], current(KIND_OF[item.cls], item.record))
