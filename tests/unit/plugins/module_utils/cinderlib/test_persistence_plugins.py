# Persistence plugins as cinderlib loaded them: an instance, a class or an entry point name.
from __future__ import annotations

import importlib.metadata

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import (
    context,
    persistence,
    persistence_plugins,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import PersistenceError
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import (
    KeyValue,
    PersistenceDriverBase,
)


class DictPlugin(PersistenceDriverBase):
    """A plugin as cinderlib's documentation describes one: it keeps the
    objects it is given and hands them back, filtered."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.options = kwargs
        self.volumes, self.snapshots, self.connections, self.kvs = {}, {}, {}, {}

    def get_volumes(self, volume_id=None, volume_name=None, backend_name=None):
        return [v for v in self.volumes.values() if (not volume_id or v.id == volume_id)
                and (not volume_name or v.display_name == volume_name)
                and (not backend_name or v.backend_name == backend_name)]

    def get_snapshots(self, snapshot_id=None, snapshot_name=None, volume_id=None):
        return [s for s in self.snapshots.values() if (not snapshot_id or s.id == snapshot_id)
                and (not snapshot_name or s.display_name == snapshot_name)
                and (not volume_id or s.volume_id == volume_id)]

    def get_connections(self, connection_id=None, volume_id=None):
        return [c for c in self.connections.values() if (not connection_id or c.id == connection_id)
                and (not volume_id or c.volume_id == volume_id)]

    def get_key_values(self, key=None):
        return [kv for k, kv in self.kvs.items() if key is None or k == key]

    def set_volume(self, volume):
        self.volumes[volume.id] = volume

    def set_snapshot(self, snapshot):
        self.snapshots[snapshot.id] = snapshot

    def set_connection(self, connection):
        self.connections[connection.id] = connection

    def set_key_value(self, key_value):
        self.kvs[key_value.key] = key_value

    def delete_volume(self, volume):
        self.volumes.pop(volume.id, None)

    def delete_snapshot(self, snapshot):
        self.snapshots.pop(snapshot.id, None)

    def delete_connection(self, connection):
        self.connections.pop(connection.id, None)

    def delete_key_value(self, key_value):
        # cinderlib's plugins are given a KeyValue (cinderlib/persistence/memory.py).
        self.kvs.pop(key_value.key, None)


@pytest.fixture
def plugin_backend(fake_backend, monkeypatch):
    """The fake backend over a DictPlugin instance."""
    plugin = DictPlugin()
    store = persistence.open_store({'storage': plugin})
    monkeypatch.setattr(context.STATE, 'store', store)
    return fake_backend, plugin, store


@pytest.mark.parametrize('fake_backend', ['memory'], indirect=True)
def test_an_instance_gets_the_library_objects_and_gives_them_back(plugin_backend):
    backend, plugin, store = plugin_backend
    assert isinstance(store, persistence_plugins.PluginStore) and store.plugin is plugin
    volume = backend.create_volume(1, name='data')
    assert plugin.volumes == {volume.id: volume} and plugin.volumes[volume.id].status == 'available'
    assert store.get_volumes(volume_name='data') == [volume]
    assert backend.volumes_filtered(volume_name='data') == [volume]
    snapshot = volume.create_snapshot(name='s')
    assert list(plugin.snapshots) == [snapshot.id] and volume.snapshots == [snapshot]
    store.set_key_value(KeyValue('driver', 'x'))
    assert store.get_key_values('driver') == [KeyValue('driver', 'x')] and store.key_values() == {'driver': 'x'}
    store.put('connector', {'id': 'node-a', 'host': 'a', 'connector': {'host': 'a'}})
    assert store.get_connector('node-a')['connector'] == {'host': 'a'}
    assert store.key_values() == {'driver': 'x'}  # connectors are not driver key/values
    snapshot.delete()
    volume.delete()
    assert plugin.volumes == {} and plugin.snapshots == {}


def test_a_class_is_made_with_the_other_options():
    store = persistence.open_store({'storage': DictPlugin, 'path': '/x'})
    assert isinstance(store.plugin, DictPlugin) and store.plugin.options == {'path': '/x'}


def test_an_entry_point_names_the_plugin(monkeypatch):
    entry_point = importlib.metadata.EntryPoint(name='dict', value='%s:DictPlugin' % __name__,
                                                group=persistence_plugins.ENTRY_POINT_GROUP)
    real = importlib.metadata.entry_points

    def entry_points(**selection):
        if selection.get('group') == persistence_plugins.ENTRY_POINT_GROUP:
            return importlib.metadata.EntryPoints([entry_point]).select(**selection)
        return real(**selection)

    monkeypatch.setattr(importlib.metadata, 'entry_points', entry_points)
    store = persistence.open_store({'storage': 'dict', 'size': 3})
    assert isinstance(store.plugin, DictPlugin) and store.plugin.options == {'size': 3}
    with pytest.raises(PersistenceError, match=r"Unknown persistence storage 'redis': use one of db, dict, "
                                               r"memory, memory_db"):
        persistence.open_store({'storage': 'redis'})


@pytest.mark.parametrize('config, message', [
    ({'storage': object()}, 'is not a persistence plugin'),
    ({'storage': DictPlugin(), 'path': '/x'}, r'Unknown persistence option\(s\) for the plugin instance DictPlugin'),
])
def test_what_is_not_a_plugin_is_refused(config, message):
    with pytest.raises(PersistenceError, match=message):
        persistence.open_store(config)


def test_our_stores_are_plugins_too():
    store = persistence.open_store({'storage': 'memory'})
    assert isinstance(store, PersistenceDriverBase) and persistence.open_store({'storage': store}) is store
