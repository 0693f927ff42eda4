# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""Backend: one configured Cinder driver, with the semantics of cinderlib's
Backend (see the collection's docs and the seed ``backends.rst``)."""

from __future__ import annotations

import copy
import hashlib
import os
import time
import uuid
from typing import Any

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import (
    context,
    drivers,
    loader,
    objects,
    secrets,
    serialization,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.dbapi import DriverDB
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    BackendConfigError,
    CinderlibError,
    DriverOperationError,
    InvalidRequest,
    NotFound,
    describe_cause,
)


def backend_secrets(driver_cfg: dict) -> list[str]:
    """The values of a backend's options that hold credentials: the options
    oslo marks secret for its driver and those named like one. Imports the
    driver's module (which registers its options) and calls nothing of it."""
    context.ensure_setup()
    # Cinder is configured before any driver module is imported.
    context.cinder_runtime()
    name = driver_cfg.get('volume_backend_name')
    driver_path = drivers.resolve_driver_path(driver_cfg.get('volume_driver'), 'Backend %r' % (name,))
    options = loader.driver_options(driver_path, 'Backend %r' % (name,))
    return secrets.values(driver_cfg, secrets.secret_keys(driver_cfg, {opt.dest: opt for opt in options}))


def _kept_in_context(attribute: str) -> property:
    return property(lambda cls: getattr(context.STATE, attribute),
                    lambda cls, value: setattr(context.STATE, attribute, value))


class _LibraryStateAttributes(type):
    """cinderlib's class attributes of Backend, kept in ``context`` (read and
    written on the class; Backend's own properties give them to instances)."""

    settings = _kept_in_context('settings')
    persistence = _kept_in_context('store')
    global_initialization = _kept_in_context('initialized')
    backends = _kept_in_context('backends')


class Backend(serialization.Serializable, metaclass=_LibraryStateAttributes):
    """A storage backend driven by a Cinder volume driver.

    ``Backend(volume_backend_name, **driver_cfg)``: same name and same
    configuration returns the existing instance; same name with another
    configuration raises ``ValueError``.
    """

    # The same, read on an instance, as cinderlib's tests do (self.backend.persistence...).
    settings = property(lambda self: context.STATE.settings)
    persistence = property(lambda self: context.STATE.store)
    global_initialization = property(lambda self: context.STATE.initialized)
    backends = property(lambda self: context.STATE.backends)

    def __new__(cls, volume_backend_name: str, **driver_cfg: Any) -> Backend:
        backend = cls.backends.get(volume_backend_name)
        if backend is not None:
            if driver_cfg == backend._original_driver_cfg:
                return backend
            raise ValueError('Backend named %s already exists with a different configuration'
                             % volume_backend_name)
        return super().__new__(cls)

    def __init__(self, volume_backend_name: str, **driver_cfg: Any) -> None:
        if volume_backend_name in Backend.backends:
            return  # the singleton returned by __new__
        if not isinstance(volume_backend_name, str) or not volume_backend_name.strip():
            raise BackendConfigError('volume_backend_name must be a non-empty string.')
        context.ensure_setup()
        self._original_driver_cfg = copy.deepcopy(driver_cfg)
        cfg = rename_legacy_options(dict(driver_cfg))
        self.warnings: list[str] = cfg.pop('__warnings__')
        cfg['volume_backend_name'] = volume_backend_name
        self._driver_cfg = cfg
        # Until the driver's own options are known (importing it may fail), its option names tell.
        self._secrets = secrets.values(cfg)
        runtime = context.cinder_runtime()
        runtime.log_scrubber.add(self._secrets)
        # A class name alone (LVMVolumeDriver) stands for the one driver of that name.
        if 'volume_driver' in cfg:
            cfg['volume_driver'] = drivers.resolve_driver_path(cfg['volume_driver'], 'Backend %r' % volume_backend_name)
        try:
            self._secrets = backend_secrets(cfg)
            runtime.log_scrubber.add(self._secrets)
            configuration = runtime.backend_configuration(
                volume_backend_name, cfg, context.setting('unknown_options'))
            self.warnings.extend(getattr(configuration, 'unknown_option_warnings', []))
            self.driver = runtime.create_driver(
                volume_backend_name, configuration, DriverDB(context.store(), runtime))
            # Before the driver reads its stats: a change made meanwhile is seen as one.
            self._stats_mark = self._capacity_mark()
            runtime.start_driver(volume_backend_name, self.driver)
        except CinderlibError as exc:
            exc.message = secrets.scrub(exc.message, self._secrets)
            exc.args = (exc.message,)
            raise
        self._volumes = None
        # Drivers cache stats unevenly; keep the ones init_capabilities read.
        stats = dict(getattr(self.driver, 'capabilities', None) or {})
        stats.pop('properties', None)
        stats.pop('vendor_prefix', None)
        self._stats = self._transform_legacy_stats(stats)
        self._stats_read_at = time.time()
        Backend.backends[volume_backend_name] = self

    # -- global setup ---------------------------------------------------------------
    @classmethod
    def global_setup(cls, **options: Any) -> None:
        """Configure the library once per process (alias: ``setup``).

        Options: file_locks_path, root_helper, suppress_requests_ssl_warnings,
        disable_logs, non_uuid_ids, output_all_backend_info, project_id,
        user_id, persistence_config, fail_on_missing_backend, host,
        unknown_options ('error' or 'warn'), coordination_url (a tooz URL for
        locks shared by several hosts; default: file locks in the locks
        directory); any other key is a Cinder global option. Cinder itself is
        only imported by the first Backend.
        """
        context.setup(**options)

    @classmethod
    def set_persistence(cls, persistence_config: dict) -> None:
        """Use another state store from now on (cinderlib's): the library
        must be set up; every initialised backend's driver uses it too."""
        store = context.set_persistence(persistence_config)
        for backend in cls.backends.values():
            runtime = context.cinder_runtime()
            runtime.give_db(backend.driver, DriverDB(store, runtime))

    @property
    def output_all_backend_info(self) -> bool:
        return bool(context.setting('output_all_backend_info'))

    # -- seed attributes -------------------------------------------------------------
    def __repr__(self) -> str:
        return '<cinderlib.Backend %s>' % self.id

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes the Backend lacks: ask the driver.
        if name.startswith('__') or 'driver' not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.driver, name)

    @property
    def id(self) -> str:
        return self._driver_cfg['volume_backend_name']

    @property
    def config(self) -> dict:
        if self.output_all_backend_info:
            return dict(self._driver_cfg)
        return {'volume_backend_name': self.id}

    @property
    def pool_names(self) -> tuple:
        return tuple(pool['pool_name'] for pool in self._stats.get('pools', []))

    def stats(self, refresh: bool = False) -> dict:
        """The driver's stats as last read (cinderlib's cache), or read now
        with ``refresh``; ``stats_age`` says how old they are, and
        ``stats_outdated`` whether an operation since may have changed them."""
        if refresh:
            mark = self._capacity_mark()  # before the read: a change meanwhile is seen as one
            self._stats = self._transform_legacy_stats(self.driver.get_volume_stats(refresh=True))
            self._stats_read_at = time.time()
            self._stats_mark = mark
        return self._stats

    @property
    def stats_age(self) -> float:
        """Seconds since the driver last read the stats ``stats()`` returns."""
        return max(0.0, time.time() - self._stats_read_at)

    def _capacity_stamp(self) -> str:
        """A file that every operation changing what this backend holds
        rewrites with a new mark: seen by every process of this host (the
        warm worker's tasks run in processes of their own), by no other host.
        A mark, not a time: two changes within a clock tick still differ."""
        digest = hashlib.sha256(self.id.encode('utf-8')).hexdigest()[:32]
        return os.path.join(loader.state_dir(context.settings()), 'capacity', digest)

    def _capacity_mark(self) -> str:
        try:
            with open(self._capacity_stamp(), encoding='ascii') as stamp:
                return stamp.read()
        except OSError:  # none yet, or unreadable: no change seen
            return ''

    def capacity_changed(self) -> None:
        """An operation changed (or may have changed) what the backend holds:
        the cached stats of every process on this host are outdated. Never
        fails: it runs between a driver call and its final record."""
        if context.setting('write_nothing'):
            # A run that writes nothing (check mode) tells no other process; it reads them again.
            self._stats_mark = None
            return
        path = self._capacity_stamp()
        partial = '%s.%d' % (path, os.getpid())
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            with open(partial, 'w', encoding='ascii') as stamp:
                stamp.write(uuid.uuid4().hex)
            os.replace(partial, path)
        except OSError:
            # A full or read-only disk: other processes can't be told, this one reads them again.
            self._stats_mark = None

    @property
    def stats_outdated(self) -> bool:
        """Whether an operation on this host changed the backend since the
        cached stats were read (changes from other hosts or by hand are not
        seen: only asking the driver shows them)."""
        return self._capacity_mark() != self._stats_mark

    def _transform_legacy_stats(self, stats: dict) -> dict:
        """Stats without ``pools`` describe one pool: make it explicit."""
        stats = copy.deepcopy(stats or {})
        if stats and 'pools' not in stats:
            pool = dict(stats)
            pool['pool_name'] = self.id
            for key in ('driver_version', 'shared_targets', 'sparse_copy_volume', 'storage_protocol',
                        'vendor_name', 'volume_backend_name'):
                pool.pop(key, None)
            stats['pools'] = [pool]
        return stats

    @property
    def volumes(self) -> list:
        if self._volumes is None:
            self._volumes = self.volumes_filtered()
        return self._volumes

    def volumes_filtered(self, volume_id: str | None = None, volume_name: str | None = None) -> list:
        from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.objects import Volume
        records = context.store().volume_records(backend=self.id, volume_id=volume_id, display_name=volume_name)
        return [Volume.from_record(self, record) for record in records]

    def refresh(self) -> None:
        """Reload the known volumes from the state store."""
        self._volumes = None

    def validate_connector(self, connector_dict: dict) -> None:
        """Raise if the connector lacks what this driver needs to export."""
        self.driver.validate_connector(connector_dict)

    def create_volume(self, size: int, name: str = '', description: str = '', bootable: bool = False,
                      **kwargs: Any):
        from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.objects import Volume
        volume = Volume(self, size=size, name=name, description=description, bootable=bootable, **kwargs)
        volume.create()
        if self._volumes is not None:
            self._volumes.append(volume)
        return volume

    def manage_volume(self, reference: Any, name: str = '', description: str = '', **kwargs: Any):
        """Adopt what the backend already holds (an LV or RBD image made by
        hand, by an old Cinder...) as a new volume of this backend, through
        the driver's ``manage_existing`` (``Volume.manage``)."""
        from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.objects import Volume
        volume = Volume(self, size=1, name=name, description=description, **kwargs)  # size: the object's
        volume.manage(reference)
        if self._volumes is not None:
            self._volumes.append(volume)
        return volume

    def manageable_volumes(self) -> list[dict]:
        """What the driver says could be adopted (``get_manageable_volumes``):
        dicts of ``reference``, ``size``, ``safe_to_manage``, ``reason_not_safe``,
        ``cinder_id`` and ``extra_info``; each volume of the store shows as not safe."""
        return self._manageable('volumes', [v._ovo for v in self.volumes])

    def manageable_snapshots(self) -> list[dict]:
        """The snapshots the driver says could be adopted (``get_manageable_snapshots``)."""
        return self._manageable('snapshots', [s._ovo for v in self.volumes for s in v.snapshots])

    def _manageable(self, what: str, known: list) -> list[dict]:
        lister = getattr(self.driver, 'get_manageable_' + what, None)
        try:
            found = lister(known, None, 1000, 0, ['size'], ['desc']) if lister else None
        except NotImplementedError:
            found = None
        except Exception as exc:  # noqa: BLE001 - drivers raise anything
            raise DriverOperationError(secrets.scrub("Failed to list the manageable %s of backend '%s': %s" % (
                what, self.id, describe_cause(exc)), self._secrets), exc) from exc
        if found is None:
            raise InvalidRequest("The driver %s of backend '%s' can't list the %s it could adopt."
                                 % (type(self.driver).__name__, self.id, what))
        return [dict(entry) for entry in found]

    def _volume_removed(self, volume) -> None:
        if self._volumes is not None:
            self._volumes = [v for v in self._volumes if v.id != volume.id]

    # -- serialization (properties from serialization.Serializable) -------------------
    def _serialized(self, full: bool) -> dict:
        return serialization.backend_data(self, full=full)

    @classmethod
    def load_backend(cls, backend_data: dict):
        """The backend serialized data names: initialised here, or initialised
        from the whole configuration the data carries, or (with
        ``fail_on_missing_backend=False``) just its name."""
        name = backend_data['volume_backend_name']
        if name in cls.backends:
            return cls.backends[name]
        if len(backend_data) > 1:
            return cls(**backend_data)
        if context.setting('fail_on_missing_backend', True):
            raise NotFound("The data to load is of backend '%s', which is not initialised in this process, and "
                           'the data has only its name (serialized without output_all_backend_info). Initialise '
                           "it first (cinderlib.Backend('%s', ...)), or set up the library with "
                           'fail_on_missing_backend=False to load the objects bound to the name only.' % (name, name))
        return name

    @staticmethod
    def list_supported_drivers(output_version: int = 1) -> dict:
        from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.drivers import (
            list_supported_drivers,
        )
        return list_supported_drivers(output_version)


def rename_legacy_options(cfg: dict) -> dict:
    warnings = []
    for old, new in loader.RENAMED_OPTIONS.items():
        if old in cfg:
            value = cfg.pop(old)
            if new in cfg and cfg[new] != value:
                raise BackendConfigError('Options %r and %r (its old name) are both set, with different '
                                         'values; keep only %r.' % (new, old, new))
            cfg[new] = value
            warnings.append('option %r is the old name of %r; use %r.' % (old, new, new))
    cfg['__warnings__'] = warnings
    return cfg


setup = Backend.global_setup
objects.Resource.backend_class = Backend
