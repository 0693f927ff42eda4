# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""Persistence plugins as cinderlib had them: ``persistence_config={'storage':
X}`` where X is an instance or a subclass of ``PersistenceDriverBase``, or
the name of an entry point of group ``cinderlib.persistence.storage``.

A plugin deals in objects (``set_volume(volume)``, ``get_volumes()`` gives
Volume objects); the library deals in records. ``PluginStore`` is the
state store the library uses over a plugin: it turns records into the
library's objects for the plugin, and the plugin's objects back into records.
"""

from __future__ import annotations

import copy
import importlib.metadata
import inspect
import json
from typing import Any

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    InvalidPersistence,
    PersistenceError,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import (
    KeyValue,
    PersistenceDriverBase,
    StateStore,
)

ENTRY_POINT_GROUP = 'cinderlib.persistence.storage'
BUILT_IN = ('db', 'memory_db', 'memory')

# Connectors are this collection's own kind, which cinderlib's plugin API has
# no method for: a plugin keeps them as key/value pairs under this prefix.
_CONNECTOR_KEY = 'cinderlib.storage/connector/'


def plugin_store(storage: Any, config: dict) -> StateStore:
    """The store over ``storage``: an instance, a class or an entry point name."""
    if isinstance(storage, str):
        storage = _entry_point(storage)
    if inspect.isclass(storage) and issubclass(storage, PersistenceDriverBase):
        try:
            storage = storage(**config)
        except Exception as exc:  # noqa: BLE001 - a plugin's constructor raises anything
            raise PersistenceError("Can't set up the persistence plugin %s: %s" % (storage.__name__, exc),
                                   exc) from exc
        config = {}
    if not isinstance(storage, PersistenceDriverBase):
        raise PersistenceError(
            "Persistence storage %r is not a persistence plugin: give 'db', 'memory_db', 'memory', the name of "
            "an entry point of group %s, or a subclass (or an instance) of PersistenceDriverBase."
            % (storage, ENTRY_POINT_GROUP))
    if config:
        raise PersistenceError('Unknown persistence option(s) for the plugin instance %s: %s.'
                               % (type(storage).__name__, ', '.join(sorted(config))))
    return storage if isinstance(storage, StateStore) else PluginStore(storage)


def _entry_point(name: str):
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not found:
        known = sorted({ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
                       | set(BUILT_IN))
        raise InvalidPersistence("Unknown persistence storage %r: use one of %s, or a PersistenceDriverBase "
                                 "subclass or instance." % (name, ', '.join(known)))
    entry_point = next(iter(found))
    try:
        return entry_point.load()
    except Exception as exc:  # noqa: BLE001 - importing a plugin raises anything
        raise PersistenceError("Can't load the persistence plugin %r (%s): %s"
                               % (name, entry_point.value, exc), exc) from exc


class PluginStore(StateStore):
    """The library's state store over a cinderlib persistence plugin."""

    storage = 'plugin'

    def __init__(self, plugin: PersistenceDriverBase) -> None:
        self.plugin = plugin

    @property
    def db(self):
        try:
            return self.plugin.db
        except NotImplementedError:
            return super().db

    # -- records from the plugin's objects --------------------------------------------
    def _objects_of(self, kind: str, filters: dict) -> list:
        if kind == 'volume':
            return self.plugin.get_volumes(volume_id=filters.pop('id', None),
                                           volume_name=filters.pop('display_name', None),
                                           backend_name=filters.pop('backend', None))
        if kind == 'snapshot':
            return self.plugin.get_snapshots(snapshot_id=filters.pop('id', None),
                                             snapshot_name=filters.pop('display_name', None),
                                             volume_id=filters.pop('volume_id', None))
        return self.plugin.get_connections(connection_id=filters.pop('id', None),
                                           volume_id=filters.pop('volume_id', None))

    def get(self, kind, **filters):
        self._check_kind(kind)
        filters = {k: v for k, v in filters.items() if v is not None}
        if kind == 'connector':
            records = [json.loads(v) for k, v in self._all_key_values().items() if k.startswith(_CONNECTOR_KEY)]
        else:
            records = [obj.record for obj in self._objects_of(kind, filters)]
        return [r for r in records if all(r.get(k) == v for k, v in filters.items())]

    def put(self, kind, record):
        self._check_kind(kind)
        previous = self.get(kind, id=record.get('id'))
        stored = self._stamped(record, previous[0] if previous else None)
        if kind == 'connector':
            self.plugin.set_key_value(KeyValue(_CONNECTOR_KEY + stored['id'], json.dumps(stored, default=str)))
        else:
            getattr(self.plugin, 'set_' + kind)(self.object_of(kind, stored))
        return copy.deepcopy(stored)

    def remove(self, kind, record_id):
        self._check_kind(kind)
        found = self.get(kind, id=record_id)
        if not found:
            return False
        if kind == 'connector':
            self.plugin.delete_key_value(KeyValue(_CONNECTOR_KEY + record_id))
        else:
            getattr(self.plugin, 'delete_' + kind)(self.object_of(kind, found[0]))
        return True

    # -- key/values ----------------------------------------------------------------------
    def _all_key_values(self) -> dict[str, str]:
        return {kv.key: kv.value for kv in self.plugin.get_key_values(None)}

    def key_values(self, key=None):
        if key is not None:
            return {kv.key: kv.value for kv in self.plugin.get_key_values(key) if kv.key == key}
        return {k: v for k, v in self._all_key_values().items() if not k.startswith(_CONNECTOR_KEY)}

    def put_key_value(self, key, value):
        self.plugin.set_key_value(KeyValue(key, value))

    def remove_key_value(self, key):
        self.plugin.delete_key_value(KeyValue(key))
