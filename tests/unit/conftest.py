# Fixtures shared by the unit tests of tests/unit.
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import loader, objects
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import Backend
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import open_store


class FakeVG:
    """What LVM drivers have as ``driver.vg``: enough for ``exists_on_backend``."""

    def __init__(self, driver: FakeDriver) -> None:
        self._driver = driver

    def get_volume(self, name: str):
        size = self._driver.volumes.get(name)
        return None if size is None else {'name': name, 'size': '%d.00' % size}


class FakeDriver:
    """A Cinder driver stand-in, for the branches real LVM can't reach.

    Keeps its "array" in ``volumes`` (name -> GiB) and ``snapshots``;
    ``fail['create_volume'] = exc`` makes that method raise ``exc``.
    ``has_vg=False`` makes it a driver that can't tell whether a volume exists.
    """

    def __init__(self, has_vg: bool = True) -> None:
        self.volumes: dict[str, int] = {}
        self.snapshots: set[str] = set()
        self.fail: dict[str, BaseException] = {}
        self.calls: list[str] = []
        if has_vg:
            self.vg = FakeVG(self)

    def _called(self, method: str) -> None:
        self.calls.append(method)
        if method in self.fail:
            raise self.fail[method]

    def create_volume(self, volume):
        self._called('create_volume')
        self.volumes[volume.name] = volume.size

    def create_cloned_volume(self, volume, src_vref):
        self._called('create_cloned_volume')
        self.volumes[volume.name] = volume.size

    def create_volume_from_snapshot(self, volume, snapshot):
        self._called('create_volume_from_snapshot')
        self.volumes[volume.name] = volume.size

    def delete_volume(self, volume):
        self._called('delete_volume')
        self.volumes.pop(volume.name, None)

    def extend_volume(self, volume, new_size):
        self._called('extend_volume')
        self.volumes[volume.name] = new_size

    def create_snapshot(self, snapshot):
        self._called('create_snapshot')
        self.snapshots.add(snapshot.name)

    def delete_snapshot(self, snapshot):
        self._called('delete_snapshot')
        self.snapshots.discard(snapshot.name)

    # Adopt and release, as Cinder's LVM driver does them: the object is renamed.
    def manage_existing_get_size(self, volume, existing_ref):
        self._called('manage_existing_get_size')
        if existing_ref.get('source-name') not in self.volumes:
            raise ValueError('Manage existing volume failed due to invalid backend reference %s' % existing_ref)
        return self.volumes[existing_ref['source-name']]

    def manage_existing(self, volume, existing_ref):
        self._called('manage_existing')
        self.volumes[volume.name] = self.volumes.pop(existing_ref['source-name'])

    def unmanage(self, volume):
        self._called('unmanage')


def _fake_volume_ovo(self):
    return SimpleNamespace(id=self.id, name='volume-%s' % self.id, size=self._record['size'])


def _fake_snapshot_ovo(self):
    return SimpleNamespace(id=self.id, name='snapshot-%s' % self.id, volume_size=self._record['volume_size'])


def _reset_library() -> None:
    objects.Resource._live.clear()
    Backend.backends = {}
    Backend.global_initialization = False
    Backend.settings = None
    Backend.persistence = None


def make_fake_backend(name: str, driver: FakeDriver, pools: tuple = ('pool1',)) -> Backend:
    """A Backend with ``driver`` and no Cinder behind it (settings/persistence must be set)."""
    backend = Backend.__new__(Backend, name)
    backend._original_driver_cfg = {}
    backend._driver_cfg = {'volume_backend_name': name}
    backend._secrets = []
    backend.warnings = []
    backend.driver = driver
    backend._stats = {'volume_backend_name': name, 'pools': [{'pool_name': p} for p in pools]}
    backend._stats_read_at = time.time()
    backend._stats_mark = ''
    backend._volumes = None
    Backend.backends[name] = backend
    return backend


@pytest.fixture(params=['memory', 'memory_db'])
def fake_backend(request, monkeypatch, tmp_path):
    """Backend 'fake' over a FakeDriver, for each kind of in-memory state store.

    Volume and Snapshot hand the driver plain namespaces instead of Cinder's
    objects, so no Cinder is imported.
    """
    _reset_library()
    # The library's files (capacity stamps...) in the test's directory.
    Backend.settings = loader.make_settings({'persistence_config': {'storage': request.param},
                                             'file_locks_path': str(tmp_path / 'state')})
    Backend.persistence = open_store(Backend.settings.persistence_config)
    Backend.global_initialization = True
    monkeypatch.setattr(objects.Volume, '_ovo', property(_fake_volume_ovo))
    monkeypatch.setattr(objects.Snapshot, '_ovo', property(_fake_snapshot_ovo))
    yield make_fake_backend('fake', FakeDriver())
    Backend.persistence.close()
    _reset_library()


@pytest.fixture
def other_backend(fake_backend):
    """A second fake backend ('other') sharing the store of ``fake_backend``."""
    return make_fake_backend('other', FakeDriver())


@pytest.fixture
def add_fake_backend(fake_backend):
    """Make more fake backends sharing the store of ``fake_backend``:
    ``add_fake_backend('lvm', pools=('lvm',))``."""
    return lambda name, pools=('pool1',): make_fake_backend(name, FakeDriver(), pools)
