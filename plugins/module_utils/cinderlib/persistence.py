# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""The state store: what the collection knows about volumes, snapshots,
connections and driver private data, kept between processes.

Every Ansible task is a new process, so this is where state lives. The store
is cinder-free on purpose: the inventory plugin and read-only paths use it on
a controller without Cinder. Records are plain dicts; the library's objects
turn them into Cinder's versioned objects when a driver needs them.

Stores:
- ``MemoryStore`` (``storage: memory``): process-local dicts.
- ``SQLStore`` (``storage: db`` with any SQLAlchemy URL, the default being a
  SQLite file; ``storage: memory_db`` is SQLite in memory).
``open_store()`` is the one selector.

A database server (PostgreSQL) that can't be reached, or whose connection
breaks, is tried again for ``retry_window`` seconds (``DEFAULT_RETRY_WINDOW``)
before the read or write fails: ``SQLStore._run`` holds that rule and its
message, ``connection_lost`` says which errors it covers.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import math
import os
import sqlite3
import threading
import time
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import cinderlib5_db, fields
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    MissingDependencyError,
    PersistenceError,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.secrets import mask_url

SCHEMA_VERSION = 4
"""Version of the SQL schema this code writes (see ``SQLStore._migrate``).

1: the first schema. 2: an index on volumes (backend, status), for finding the
records an interrupted operation left (reconcile). 3: a table of connectors
(hosts' os-brick connector properties stored under a node id, for exporting
volumes to hosts that share the store). 4: records hold Cinder's field names
(``display_name``, ``display_description``; they held ``name`` and
``description``), and display names are labels, not keys: no unique
(backend, name) any more. ``_UPGRADES`` turns a store of any older version
into this one, in place.
"""

RESOURCES = ('volume', 'snapshot', 'connection', 'connector')

CINDERLIB5_IMPORT_KEY = 'cinderlib5_import'
"""The meta row saying what was imported from a database cinderlib 5.x's
``db`` persistence wrote (``SQLStore._import_cinderlib5``)."""
CINDERLIB5_BACKUP_SUFFIX = '.cinderlib5-backup'

SQLITE_BUSY_TIMEOUT = 60
"""Seconds a SQLite writer waits for another process's write to finish."""

DEFAULT_RETRY_WINDOW = 12
"""Seconds a database server store (PostgreSQL) that can't be reached is
tried again before a task fails (``persistence: {retry_window: ...}``): long
enough for a server restart or a fail-over, short enough that a store that is
really gone fails the task soon. SQLite files have their busy timeout instead."""

_RETRY_FIRST_DELAY = 0.25
_RETRY_MAX_DELAY = 2.0

LOG = logging.getLogger(__name__)
# A library logs nowhere unless the application (the driver log of
# driver_log_path) says where: never to stderr, which a module must not use.
LOG.addHandler(logging.NullHandler())

_BACKEND_STATUS_INDEX = 'ix_cinderlib_volumes_backend_status'
_BACKEND_NAME_INDEX = 'ix_cinderlib_volumes_backend_display_name'
_PG_MIGRATION_LOCK = 0x636C6962  # 'clib': the advisory lock of schema changes


def default_db_path(uid: int | None = None, environ: dict | None = None) -> str:
    """Where the default SQLite store lives for this user."""
    uid = os.getuid() if uid is None else uid
    environ = os.environ if environ is None else environ
    if uid == 0:
        return '/var/lib/cinderlib/state.db'
    state_home = environ.get('XDG_STATE_HOME') or os.path.join(
        environ.get('HOME') or os.path.expanduser('~'), '.local', 'state')
    return os.path.join(state_home, 'cinderlib', 'state.db')


def _record_columns(sa) -> list:
    """Columns every resource table ends with: the record as JSON and its
    timestamps (new Column objects each time: a column has one table)."""
    return [sa.Column('data', sa.Text, nullable=False),
            sa.Column('created_at', sa.String(32)),
            sa.Column('updated_at', sa.String(32))]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None).isoformat()


class RecordLookups:
    """Record lookups by the names the library reads best, over
    ``get(kind, **filters)``; shared by the stores and the fast path's
    read-only SQLite reader. (cinderlib's ``get_volumes``... give objects:
    see ``PersistenceDriverBase``.)"""

    def get(self, kind: str, **filters: Any) -> list[dict]:
        raise NotImplementedError

    def volume_records(self, backend: str | None = None, volume_id: str | None = None,
                       display_name: str | None = None) -> list[dict]:
        return self.get('volume', backend=backend, id=volume_id, display_name=display_name)

    def snapshot_records(self, snapshot_id: str | None = None, volume_id: str | None = None,
                         display_name: str | None = None) -> list[dict]:
        return self.get('snapshot', id=snapshot_id, volume_id=volume_id, display_name=display_name)

    def connection_records(self, connection_id: str | None = None,
                           volume_id: str | None = None) -> list[dict]:
        return self.get('connection', id=connection_id, volume_id=volume_id)


class KeyValue:
    """A driver's key/value pair, as cinderlib's persistence API passes it."""

    def __init__(self, key: str | None = None, value: str | None = None) -> None:
        self.key = key
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyValue) and (self.key, self.value) == (other.key, other.value)

    def __hash__(self) -> int:
        return hash((self.key, self.value))

    def __repr__(self) -> str:
        return '<cinderlib.KeyValue %s>' % self.key


class PersistenceDriverBase:
    """cinderlib's documented base of persistence plugins: resources go in
    and come out as the library's objects (Volume, Snapshot, Connection).

    A plugin subclasses this, implements the ``get_*``, ``set_*`` and
    ``delete_*`` methods and ``db``, and is selected with
    ``persistence_config={'storage': <instance, class or entry point name>}``
    (entry points of group ``cinderlib.persistence.storage``). The library
    reaches a plugin through ``persistence_plugins.PluginStore``. The stores
    of this module implement the same API over their records.
    """

    def __init__(self, **kwargs: Any) -> None:
        pass

    @property
    def db(self):
        """The subset of Cinder's DB API that drivers call."""
        raise NotImplementedError()

    def get_volumes(self, volume_id=None, volume_name=None, backend_name=None) -> list:
        raise NotImplementedError()

    def get_snapshots(self, snapshot_id=None, snapshot_name=None, volume_id=None) -> list:
        raise NotImplementedError()

    def get_connections(self, connection_id=None, volume_id=None) -> list:
        raise NotImplementedError()

    def get_key_values(self, key=None) -> list[KeyValue]:
        raise NotImplementedError()

    def set_volume(self, volume) -> None:
        raise NotImplementedError()

    def set_snapshot(self, snapshot) -> None:
        raise NotImplementedError()

    def set_connection(self, connection) -> None:
        raise NotImplementedError()

    def set_key_value(self, key_value: KeyValue) -> None:
        raise NotImplementedError()

    def delete_volume(self, volume) -> None:
        raise NotImplementedError()

    def delete_snapshot(self, snapshot) -> None:
        raise NotImplementedError()

    def delete_connection(self, connection) -> None:
        raise NotImplementedError()

    def delete_key_value(self, key_value) -> None:
        raise NotImplementedError()

    # cinderlib's helpers for plugins: what to write for a resource.
    def get_fields(self, resource) -> dict:
        """The resource's Cinder fields (not those holding objects), and a
        volume's ``extra_specs``/``qos_specs`` when it has a type."""
        record = resource.record
        found = {key: value for key, value in record.items() if key in fields.DEFAULTS[resource.kind]}
        vtype = record.get('volume_type') if resource.kind == 'volume' else None
        if vtype:
            found['extra_specs'] = dict(vtype.get('extra_specs') or {})
            if vtype.get('qos_specs'):
                found['qos_specs'] = dict(vtype['qos_specs'].get('specs') or {})
        return found

    def get_changed_fields(self, resource) -> dict:
        """``get_fields`` that changed since ``reset_change_tracker`` (all of
        them for a resource never reset)."""
        clean = getattr(resource, '_clean_fields', None) or {}
        return {key: value for key, value in self.get_fields(resource).items()
                if key not in clean or clean[key] != value}

    def reset_change_tracker(self, resource, fields=None) -> None:
        """Take the resource's fields (``fields``: a name or names; all when
        None) as written: ``get_changed_fields`` no longer lists them."""
        current = self.get_fields(resource)
        names = (fields,) if isinstance(fields, str) else (current if fields is None else fields)
        clean = dict(getattr(resource, '_clean_fields', None) or {})
        clean.update({name: current.get(name) for name in names})
        resource._clean_fields = clean


class StateStore(RecordLookups, PersistenceDriverBase, ABC):
    """What every store offers. Records are dicts with at least ``id``.

    Volumes carry ``backend`` (the backend name) and ``display_name``;
    snapshots ``volume_id``; connections ``volume_id`` and ``connector``;
    connectors (a host's connector properties) their node id as ``id`` and
    ``host``. Over the records, cinderlib's object API
    (``PersistenceDriverBase``): ``get_volumes`` and the rest give objects.
    """

    storage = 'abstract'

    # -- cinderlib's object API, over the records ------------------------------
    @property
    def db(self):
        from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.dbapi import DriverDB
        return DriverDB(self)

    def object_of(self, kind: str, record: dict):
        """The library's object (Volume, Snapshot, Connection) of a stored record."""
        from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import objects
        return objects.volume_of(record) if kind == 'volume' else objects.child_of(kind, record, self)

    def get_volumes(self, volume_id=None, volume_name=None, backend_name=None) -> list:
        records = self.volume_records(backend=backend_name, volume_id=volume_id, display_name=volume_name)
        return [self.object_of('volume', record) for record in records]

    def get_snapshots(self, snapshot_id=None, snapshot_name=None, volume_id=None) -> list:
        records = self.snapshot_records(snapshot_id=snapshot_id, volume_id=volume_id, display_name=snapshot_name)
        return [self.object_of('snapshot', record) for record in records]

    def get_connections(self, connection_id=None, volume_id=None) -> list:
        records = self.connection_records(connection_id=connection_id, volume_id=volume_id)
        return [self.object_of('connection', record) for record in records]

    def get_key_values(self, key=None) -> list[KeyValue]:
        return [KeyValue(k, v) for k, v in sorted(self.key_values(key).items())]

    def set_key_value(self, key_value: KeyValue) -> None:
        self.put_key_value(key_value.key, key_value.value)

    def delete_key_value(self, key_value: KeyValue | str) -> None:
        # cinderlib passed a KeyValue; the key alone is taken too.
        self.remove_key_value(key_value.key if isinstance(key_value, KeyValue) else key_value)

    def set_volume(self, volume) -> None:
        volume._record = self.put('volume', volume._record)

    set_snapshot = set_connection = set_volume

    def delete_volume(self, volume) -> None:
        self.remove(volume.kind, volume.id)
        volume._forget()

    delete_snapshot = delete_connection = delete_volume

    # -- resources --------------------------------------------------------
    @abstractmethod
    def get(self, kind: str, **filters: Any) -> list[dict]:
        """Records of ``kind`` whose fields equal every non-None filter."""

    @abstractmethod
    def put(self, kind: str, record: dict) -> dict:
        """Insert or update a record by id; returns what was stored."""

    @abstractmethod
    def remove(self, kind: str, record_id: str) -> bool:
        """Forget a record; True if it was there."""

    # -- driver private data ------------------------------------------------
    @abstractmethod
    def key_values(self, key: str | None = None) -> dict[str, str]:
        """Key/value pairs drivers keep (all, or the one named ``key``)."""

    @abstractmethod
    def put_key_value(self, key: str, value: str) -> None:
        """Set a driver's key/value pair."""

    @abstractmethod
    def remove_key_value(self, key: str) -> None:
        """Remove a driver's key/value pair if present."""

    def close(self) -> None:  # noqa: B027 - most stores have nothing to release
        """Release connections; the store can't be used afterwards."""

    # -- helpers shared by all stores ---------------------------------------
    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in RESOURCES:
            raise ValueError('unknown resource kind %r' % kind)

    @staticmethod
    def _stamped(record: dict, previous: dict | None) -> dict:
        if not record.get('id'):
            raise PersistenceError('A record needs an id to be stored.')
        stored = copy.deepcopy(record)
        now = _now()
        stored.setdefault('created_at', (previous or {}).get('created_at') or now)
        stored['updated_at'] = now
        return stored

    def get_connector(self, node_id: str) -> dict | None:
        """The connector record stored under ``node_id``, or None."""
        found = self.get('connector', id=node_id)
        return found[0] if found else None


class MemoryStore(StateStore):
    """Process-local store: what cinderlib called ``memory``."""

    storage = 'memory'

    def __init__(self) -> None:
        self._data: dict[str, dict[str, dict]] = {kind: {} for kind in RESOURCES}
        self._key_values: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, kind, **filters):
        self._check_kind(kind)
        wanted = {k: v for k, v in filters.items() if v is not None}
        with self._lock:
            return [copy.deepcopy(r) for r in self._data[kind].values()
                    if all(r.get(k) == v for k, v in wanted.items())]

    def put(self, kind, record):
        self._check_kind(kind)
        with self._lock:
            stored = self._stamped(record, self._data[kind].get(record.get('id')))
            self._data[kind][stored['id']] = stored
            return copy.deepcopy(stored)

    def remove(self, kind, record_id):
        self._check_kind(kind)
        with self._lock:
            return self._data[kind].pop(record_id, None) is not None

    def key_values(self, key=None):
        with self._lock:
            if key is None:
                return dict(self._key_values)
            return {key: self._key_values[key]} if key in self._key_values else {}

    def put_key_value(self, key, value):
        with self._lock:
            self._key_values[key] = value

    def remove_key_value(self, key):
        with self._lock:
            self._key_values.pop(key, None)


# Columns every resource table has besides ``data`` (the whole record as
# JSON). They exist for filtering and for readers that want no JSON.
_INDEXED = {
    'volume': ('backend', 'display_name', 'status', 'size'),
    'snapshot': ('volume_id', 'display_name', 'status'),
    'connection': ('volume_id', 'status'),
    'connector': ('host',),
}


class SQLStore(StateStore):
    """A SQLAlchemy store: SQLite by default, PostgreSQL for shared state."""

    storage = 'db'

    def __init__(self, connection: str, retry_window: float = DEFAULT_RETRY_WINDOW,
                 sqlite_synchronous: bool = True, sqlite_copy: sqlite3.Connection | None = None) -> None:
        """``sqlite_copy``: an in-memory SQLite database (``sqlite_copy``) to
        work on instead of the file of ``connection``, which messages still name."""
        try:
            import sqlalchemy as sa
        except ImportError as exc:  # pragma: no cover - SQLAlchemy ships with Cinder
            raise MissingDependencyError(
                'The state store needs the Python package SQLAlchemy.', 'SQLAlchemy', exc) from exc
        self._sa = sa
        # Only the masked URL is kept: the engine holds the real one.
        self.connection = mask_url(connection)
        self._tables = self._define_tables(sa)
        # A SQLite file is never "unreachable": its errors (a busy timeout
        # that ran out, a full disk) are not retried.
        self._server = not connection.startswith('sqlite')
        self._sqlite_path = _sqlite_file(connection) if sqlite_copy is None else None
        self.retry_window = retry_window_seconds(retry_window) if self._server else 0
        self._gave_up = False
        self._engine = None
        try:
            if sqlite_copy is None:
                self._engine = self._make_engine(sa, connection, sqlite_synchronous)
            else:
                self._engine = self._make_engine(sa, 'sqlite://', sqlite_synchronous, sqlite_copy)
            self._writer = self._engine.execution_options(cinderlib_write=True)
            self._run('open', self._migrate)
        except Exception as exc:
            # A store refused leaves no connection open (a process that ends
            # with os._exit, as the worker's do, would leave SQLite's WAL behind).
            if self._engine is not None:
                self._engine.dispose()
            if isinstance(exc, PersistenceError):
                raise
            raise PersistenceError(
                "Can't open the state store %s: %s" % (mask_url(connection), _first_line(exc)), exc) from exc

    # -- set-up ---------------------------------------------------------------
    @staticmethod
    def _define_tables(sa) -> dict:
        metadata = sa.MetaData()
        tables = {'metadata': metadata}
        tables['meta'] = sa.Table(
            'cinderlib_meta', metadata,
            sa.Column('key', sa.String(64), primary_key=True),
            sa.Column('value', sa.Text, nullable=False))
        tables['volume'] = sa.Table(
            'cinderlib_volumes', metadata,
            sa.Column('id', sa.String(255), primary_key=True),
            sa.Column('backend', sa.String(255), nullable=False, index=True),
            sa.Column('display_name', sa.String(255)),
            sa.Column('status', sa.String(32)),
            sa.Column('size', sa.Integer),
            *_record_columns(sa),
            sa.Index(_BACKEND_STATUS_INDEX, 'backend', 'status'),
            sa.Index(_BACKEND_NAME_INDEX, 'backend', 'display_name'))
        tables['snapshot'] = sa.Table(
            'cinderlib_snapshots', metadata,
            sa.Column('id', sa.String(255), primary_key=True),
            sa.Column('volume_id', sa.String(255), nullable=False, index=True),
            sa.Column('display_name', sa.String(255)),
            sa.Column('status', sa.String(32)),
            *_record_columns(sa))
        tables['connection'] = sa.Table(
            'cinderlib_connections', metadata,
            sa.Column('id', sa.String(255), primary_key=True),
            sa.Column('volume_id', sa.String(255), nullable=False, index=True),
            sa.Column('status', sa.String(32)),
            *_record_columns(sa))
        tables['connector'] = sa.Table(
            'cinderlib_connectors', metadata,
            sa.Column('id', sa.String(255), primary_key=True),  # the node id
            sa.Column('host', sa.String(255)),
            *_record_columns(sa))
        tables['key_value'] = sa.Table(
            'cinderlib_key_values', metadata,
            sa.Column('key', sa.String(255), primary_key=True),
            sa.Column('value', sa.Text))
        return tables

    @staticmethod
    def _make_engine(sa, connection: str, synchronous: bool = True, copy: sqlite3.Connection | None = None):
        if not connection.startswith('sqlite'):
            return sa.create_engine(connection, pool_pre_ping=True)
        path = _sqlite_file(connection)
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)) or '.', mode=0o700, exist_ok=True)
            # Records hold what drivers need to reach volumes (CHAP
            # credentials in provider_auth): readable by the owner only.
            # SQLite gives its -wal and -shm files the same mode.
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        kwargs: dict = {'connect_args': {'timeout': SQLITE_BUSY_TIMEOUT}}
        if not path:
            # One shared connection, or every checkout would see an empty DB.
            kwargs['poolclass'] = sa.pool.StaticPool
            kwargs['connect_args']['check_same_thread'] = False
        if copy is not None:
            kwargs = {'poolclass': sa.pool.StaticPool, 'creator': lambda: copy}
        engine = sa.create_engine(connection, **kwargs)

        @sa.event.listens_for(engine, 'connect')
        def _sqlite_pragmas(dbapi_connection, _record):
            # Transactions are begun below, not by the sqlite3 module (which
            # begins only before writes, so a read-then-write wasn't atomic).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            # The busy timeout makes writers wait for each other instead of
            # failing; WAL lets readers work while one process writes.
            cursor.execute('PRAGMA busy_timeout=%d' % (SQLITE_BUSY_TIMEOUT * 1000))
            if path:
                cursor.execute('PRAGMA journal_mode=WAL')
            if not synchronous:
                # cinderlib's sqlite_synchronous=False: faster, at the risk of
                # losing the last writes if the machine (not the process) dies.
                cursor.execute('PRAGMA synchronous=OFF')
            cursor.close()

        @sa.event.listens_for(engine, 'begin')
        def _sqlite_begin(conn):
            # A write transaction takes SQLite's write lock at once (waiting
            # up to the busy timeout): a deferred one that reads first and
            # writes later fails with "database is locked" when another
            # process wrote in between, whatever the timeout.
            conn.exec_driver_sql('BEGIN IMMEDIATE' if conn.get_execution_options().get('cinderlib_write')
                                 else 'BEGIN')

        return engine

    def _write(self):
        """A write transaction: ``with self._write() as conn:``."""
        return self._writer.begin()

    def _run(self, action: str, unit: Callable[[], Any]) -> Any:
        """Run ``unit`` (one read, or one write transaction, on a connection
        of its own) and turn its database errors into a PersistenceError:
        "Can't <action> the state store <URL>: ...". The one place of the
        retry rule: a server store that can't be reached is tried again for
        ``retry_window`` seconds (see ``retry_while_unreachable``).

        Re-running a unit is safe: one that failed before its commit was
        rolled back by the server (its connection is gone); and every write
        is keyed by a primary key (an upsert of a record by id, a delete by
        id, a key/value by key, the schema step that checks the version
        first), so one whose commit went through but whose answer was lost
        writes the same row again and never makes a second record.
        """
        lost = connection_lost if self._server else _never
        # A store that stayed unreachable for a whole window is tried once
        # from then on: a batch of items must not wait a window per item.
        window = 0 if self._gave_up else self.retry_window
        try:
            result = retry_while_unreachable(unit, window, lost, on_retry=self._retrying)
        except self._sa.exc.SQLAlchemyError as exc:
            if lost(exc):
                if window:
                    state = 'is unreachable after %g s (persistence.retry_window)' % window
                elif self._gave_up:
                    state = 'is still unreachable (tried once: a whole persistence.retry_window ran out earlier)'
                else:
                    state = 'is unreachable (persistence.retry_window is 0: tried once)'
                self._gave_up = True
                raise PersistenceError("Can't %s the state store %s: it %s: %s" % (
                    action, self.connection, state, _first_line(exc)), exc) from exc
            raise PersistenceError("Can't %s the state store %s: %s" % (
                action, self.connection, _first_line(exc)), exc) from exc
        self._gave_up = False
        return result

    def _retrying(self, exc: BaseException, waited: float | None) -> None:
        # Shown in the driver log (driver_log_path), when the task has one.
        if waited is None:
            LOG.warning('The state store %s is unreachable (%s); trying again for up to %g s '
                        '(persistence.retry_window).', self.connection, _first_line(exc), self.retry_window)
        else:
            LOG.warning('The state store %s is reachable again after %.1f s.', self.connection, waited)

    def _migrate(self) -> None:
        """Create the schema, or upgrade an older one in place, in one transaction.

        Processes opening the store at once take turns: SQLite's write lock
        (BEGIN IMMEDIATE), a transaction-scoped advisory lock on PostgreSQL.
        """
        sa = self._sa
        meta = self._tables['meta']
        # Usually the store is current: find out without taking a write lock.
        with self._engine.connect() as conn:
            found = self._found_version(conn)
            if found == SCHEMA_VERSION:
                return
            cinderlib5 = found is None and cinderlib5_db.is_cinderlib5_db(set(sa.inspect(conn).get_table_names()))
        backup = self._backup_sqlite() if cinderlib5 else None
        with self._write() as conn:
            if conn.dialect.name == 'postgresql':
                conn.execute(sa.text('SELECT pg_advisory_xact_lock(:key)'), {'key': _PG_MIGRATION_LOCK})
            found = self._found_version(conn)
            if found == SCHEMA_VERSION:
                return  # another process got here first
            # A new store gets every table at the current version; an older
            # one keeps its tables and gets the upgrade steps after its version.
            self._tables['metadata'].create_all(conn)
            if found is None:
                conn.execute(meta.insert().values(key='schema_version', value=str(SCHEMA_VERSION)))
                if cinderlib5:
                    self._import_cinderlib5(conn, backup)
                return
            for version in range(found + 1, SCHEMA_VERSION + 1):
                _UPGRADES[version](sa, conn, self._tables)
                conn.execute(meta.update().where(meta.c.key == 'schema_version').values(value=str(version)))

    def _backup_sqlite(self) -> str | None:
        """A copy of a SQLite file as it was before this library first
        changed it (``<file>.cinderlib5-backup``, made once, owner-only)."""
        if not self._sqlite_path:
            return None
        # The records hold CHAP credentials: owner-only, like the stores this library makes.
        if os.stat(self._sqlite_path).st_mode & 0o077:
            os.chmod(self._sqlite_path, 0o600)
        backup = self._sqlite_path + CINDERLIB5_BACKUP_SUFFIX
        if not os.path.exists(backup):
            partial = '%s.%d.tmp' % (backup, os.getpid())
            os.close(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
            source, copy_ = sqlite3.connect(self._sqlite_path), sqlite3.connect(partial)
            try:
                source.backup(copy_)
            finally:
                copy_.close()
                source.close()
            os.replace(partial, backup)
        return backup

    def _import_cinderlib5(self, conn, backup: str | None) -> None:
        """Copy what cinderlib 5.x's ``db`` persistence kept in Cinder's
        tables into this store's tables, in the transaction that creates
        them. Cinder's tables are only read: they stay as cinderlib left them."""
        sa = self._sa
        records, key_values = cinderlib5_db.read(conn, sa, set(sa.inspect(conn).get_table_names()))
        counts = dict.fromkeys(RESOURCES[:3], 0)
        now = _now()
        for kind, record in records:
            record.setdefault('created_at', now)
            record.setdefault('updated_at', record['created_at'])
            conn.execute(self._tables[kind].insert().values(id=record['id'], **_row_values(kind, record)))
            counts[kind] += 1
        for key, value in key_values.items():
            conn.execute(self._tables['key_value'].insert().values(key=key, value=value))
        summary = dict(at=now, backup=backup, key_values=len(key_values), **counts)
        conn.execute(self._tables['meta'].insert().values(key=CINDERLIB5_IMPORT_KEY, value=json.dumps(summary)))
        LOG.info('The state store %s was written by cinderlib 5.x: imported %s.', self.connection, summary)

    @property
    def cinderlib5_import(self) -> dict | None:
        """What was imported from cinderlib 5.x's tables when this library
        first opened the database (see ``_import_cinderlib5``), or None."""
        meta = self._tables['meta']

        def read():
            with self._engine.connect() as conn:
                return conn.execute(self._sa.select(meta.c.value).where(meta.c.key == CINDERLIB5_IMPORT_KEY)).scalar()
        value = self._run('read', read)
        return json.loads(value) if value else None

    def _found_version(self, conn) -> int | None:
        """The store's schema version (None for a new store); refuses a newer one."""
        sa = self._sa
        meta = self._tables['meta']
        if not sa.inspect(conn).has_table(meta.name):
            return None
        row = conn.execute(sa.select(meta.c.value).where(meta.c.key == 'schema_version')).first()
        if row is None:
            return None
        found = int(row[0])
        if found > SCHEMA_VERSION:
            raise PersistenceError(
                'The state store %s has schema version %d, newer than the %d this collection '
                'knows; upgrade the cinderlib.storage collection on this host.'
                % (self.connection, found, SCHEMA_VERSION))
        return found

    @property
    def schema_version(self) -> int:
        sa = self._sa
        meta = self._tables['meta']

        def read():
            with self._engine.connect() as conn:
                return int(conn.execute(sa.select(meta.c.value).where(meta.c.key == 'schema_version')).scalar_one())
        return self._run('read', read)

    def close(self) -> None:
        self._engine.dispose()

    # -- resources ------------------------------------------------------------
    def get(self, kind, **filters):
        self._check_kind(kind)
        sa = self._sa
        table = self._tables[kind]
        query = sa.select(table.c.data)
        extra = {}
        for key, value in filters.items():
            if value is None:
                continue
            if key in table.c:
                query = query.where(table.c[key] == value)
            else:
                extra[key] = value
        query = query.order_by(table.c.created_at, table.c.id)

        def read():
            with self._engine.connect() as conn:
                return conn.execute(query).all()
        rows = self._run('read %ss from' % kind, read)
        records = [json.loads(row[0]) for row in rows]
        return [r for r in records if all(r.get(k) == v for k, v in extra.items())]

    def put(self, kind, record):
        self._check_kind(kind)
        sa = self._sa
        table = self._tables[kind]

        def write():
            with self._write() as conn:
                row = conn.execute(sa.select(table.c.data).where(table.c.id == record.get('id'))
                                   .with_for_update()).first()
                previous = json.loads(row[0]) if row else None
                stored = self._stamped(record, previous)
                values = _row_values(kind, stored)
                if row:
                    conn.execute(table.update().where(table.c.id == stored['id']).values(**values))
                else:
                    conn.execute(table.insert().values(id=stored['id'], **values))
            return stored
        return self._run('write %s %s to' % (kind, record.get('id')), write)

    def remove(self, kind, record_id):
        self._check_kind(kind)
        table = self._tables[kind]

        def delete():
            with self._write() as conn:
                return conn.execute(table.delete().where(table.c.id == record_id)).rowcount > 0
        return self._run('remove %s %s from' % (kind, record_id), delete)

    # -- key/values -------------------------------------------------------------
    def key_values(self, key=None):
        sa = self._sa
        table = self._tables['key_value']
        query = sa.select(table.c.key, table.c.value)
        if key is not None:
            query = query.where(table.c.key == key)

        def read():
            with self._engine.connect() as conn:
                return {row[0]: row[1] for row in conn.execute(query)}
        return self._run('read driver key/values from', read)

    def put_key_value(self, key, value):
        table = self._tables['key_value']

        def write():
            for attempt in (1, 2):
                try:
                    with self._write() as conn:
                        if conn.execute(table.update().where(table.c.key == key).values(value=value)).rowcount == 0:
                            conn.execute(table.insert().values(key=key, value=value))
                    return
                except self._sa.exc.IntegrityError:
                    # Another process inserted the key since our update: update it now.
                    if attempt == 2:
                        raise
        self._run('write driver key/value %s to' % key, write)

    def remove_key_value(self, key):
        table = self._tables['key_value']

        def delete():
            with self._write() as conn:
                conn.execute(table.delete().where(table.c.key == key))
        self._run('remove driver key/value %s from' % key, delete)


def _sqlite_file(connection: str) -> str | None:
    """The file of a SQLite URL; None for another database or SQLite in memory."""
    if not connection.startswith('sqlite') or '///' not in connection:
        return None
    path = connection.split('///', 1)[1]
    return path if path and path != ':memory:' else None


def sqlite_copy(path: str) -> sqlite3.Connection:
    """An in-memory copy of the SQLite file ``path`` (an empty database
    when there is no such file), read without writing anything where it
    lives: what a run that must change nothing on this host works on.

    Any connection that may write, even one only reading, makes the -wal and
    -shm files of a WAL database for as long as it is open, and a read-only
    one (``mode=ro``) makes them and leaves them. With no -wal (or
    rollback -journal) beside it, the file holds every committed change and is
    read as ``immutable``: no lock, no file made; a writer that changed the
    file meanwhile (a checkpoint) is seen by its size and mtime, and the copy
    is made again. With a -wal or -journal, another process has the database
    open: ``mode=ro`` then reads through the files that process made (should
    it close them in between, they are made, and left: the next writer uses them)."""
    copy = sqlite3.connect(':memory:', check_same_thread=False)
    if not os.path.lexists(path):
        return copy
    uri = 'file:%s?' % urllib.parse.quote(os.path.abspath(path))
    for _attempt in range(5):
        busy = any(os.path.lexists(path + suffix) for suffix in ('-wal', '-journal'))
        before = _file_state(path)
        source = sqlite3.connect(uri + ('mode=ro' if busy else 'mode=ro&immutable=1'), uri=True,
                                 timeout=SQLITE_BUSY_TIMEOUT)
        try:
            source.backup(copy)
        finally:
            source.close()
        if busy or _file_state(path) == before:
            return copy
    source = sqlite3.connect(uri + 'mode=ro', uri=True, timeout=SQLITE_BUSY_TIMEOUT)
    try:
        source.backup(copy)
    finally:
        source.close()
    return copy


def _file_state(path: str) -> tuple:
    info = os.stat(path)
    return info.st_ino, info.st_size, info.st_mtime_ns


def _row_values(kind: str, stored: dict) -> dict:
    """The columns of a resource table's row for a stamped record."""
    values = {'data': json.dumps(stored, default=str, sort_keys=True),
              'created_at': stored['created_at'], 'updated_at': stored['updated_at']}
    values.update({column: stored.get(column) for column in _INDEXED[kind]})
    return values


# -- schema upgrades -------------------------------------------------------------
# _UPGRADES[n] turns a store of version n - 1 into version n, inside the
# transaction of SQLStore._migrate (which then records version n). Steps are
# plain SQLAlchemy on the tables of _define_tables, with no Alembic, and must
# be safe to re-run.
def _upgrade_to_2(sa, conn, tables) -> None:
    """Version 2: index volumes by (backend, status), for reconcile."""
    index = next(i for i in tables['volume'].indexes if i.name == _BACKEND_STATUS_INDEX)
    index.create(conn, checkfirst=True)


def _upgrade_to_3(sa, conn, tables) -> None:
    """Version 3: connectors stored under node ids (the multi-host attach flow)."""
    tables['connector'].create(conn, checkfirst=True)


def _upgrade_to_4(sa, conn, tables) -> None:
    """Version 4: records with Cinder's field names (``display_name``...),
    display names no longer unique per backend.

    The volumes table is rebuilt (SQLite can't drop a unique constraint);
    the snapshots table gets its column renamed. Every record is rewritten.
    """
    volumes, snapshots = tables['volume'], tables['snapshot']
    old = volumes.name + '_v3'
    # Index names are per database: the new table's indexes take them over.
    for index in ('ix_%s_backend' % volumes.name, _BACKEND_STATUS_INDEX, _BACKEND_NAME_INDEX):
        conn.execute(sa.text('DROP INDEX IF EXISTS %s' % index))
    conn.execute(sa.text('ALTER TABLE %s RENAME TO %s' % (volumes.name, old)))
    volumes.create(conn)
    rows = conn.execute(sa.text('SELECT id, data, created_at, updated_at FROM %s' % old)).all()
    for row in rows:
        record = fields.with_display_fields(json.loads(row.data))
        values = {column: record.get(column) for column in _INDEXED['volume']}
        conn.execute(volumes.insert().values(id=row.id, data=json.dumps(record, default=str, sort_keys=True),
                                             created_at=row.created_at, updated_at=row.updated_at, **values))
    conn.execute(sa.text('DROP TABLE %s' % old))
    conn.execute(sa.text('ALTER TABLE %s RENAME COLUMN name TO display_name' % snapshots.name))
    for row in conn.execute(sa.select(snapshots.c.id, snapshots.c.data)).all():
        record = fields.with_display_fields(json.loads(row.data))
        conn.execute(snapshots.update().where(snapshots.c.id == row.id).values(
            data=json.dumps(record, default=str, sort_keys=True), display_name=record.get('display_name')))


_UPGRADES = {2: _upgrade_to_2, 3: _upgrade_to_3, 4: _upgrade_to_4}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# -- a store that can't be reached ------------------------------------------------------
# libpq's own errors (no SQLSTATE) that still come from a server which answered:
# starting up, shutting down, in recovery, full. Any other answer (a wrong
# password, a missing database) is no outage and is not waited for.
_PG_TRANSIENT_ANSWERS = ('the database system is', 'too many clients')


def connection_lost(exc: BaseException) -> bool:
    """Whether a SQLAlchemy error means the database server could not be
    reached or the connection to it broke: worth trying again, unlike an
    error of the statement, the data or the credentials.

    - SQLAlchemy's dialect saw a dropped connection (``connection_invalidated``:
      "server closed the connection unexpectedly", "connection already closed");
    - PostgreSQL said so: SQLSTATE class 08 (connection exception), 57P01-57P03
      (shut down by the administrator or a crash, can't connect now);
    - libpq could not connect (an OperationalError without SQLSTATE: refused,
      timed out, no route), unless the server answered with a refusal that
      waiting does not change (FATAL: password authentication failed...).
    """
    if getattr(exc, 'connection_invalidated', False):
        return True
    orig = getattr(exc, 'orig', None)
    if orig is None or not hasattr(orig, 'pgcode'):
        return False  # not a DBAPI error, or not psycopg2's: only SQLAlchemy's own test above
    code = orig.pgcode
    if code:
        return code.startswith('08') or code in ('57P01', '57P02', '57P03')
    if not any(cls.__name__ == 'OperationalError' for cls in type(orig).__mro__):
        return False
    text = str(orig)
    return 'FATAL:' not in text or any(answer in text for answer in _PG_TRANSIENT_ANSWERS)


def _never(_exc: BaseException) -> bool:
    return False


def retry_while_unreachable(unit: Callable[[], Any], window: float, lost: Callable[[BaseException], bool],
                            on_retry: Callable[[BaseException, float | None], None] | None = None,
                            clock: Callable[[], float] = time.monotonic,
                            sleep: Callable[[float], None] = time.sleep) -> Any:
    """``unit()``, called again while it fails with an error that ``lost``
    says is a lost connection, for up to ``window`` seconds from the first
    such failure, waiting 0.25 s, 0.5 s, 1 s, then 2 s between attempts (the
    last attempt at the window's end); then that error is raised. Any other
    error is raised at once. ``on_retry(error, None)`` is called at the first
    retry, ``on_retry(error, seconds)`` when an attempt after retries worked.
    """
    started = first_error = None
    delay = _RETRY_FIRST_DELAY
    while True:
        try:
            result = unit()
        except Exception as exc:
            if not lost(exc):
                raise
            now = clock()
            if started is None:
                started, first_error = now, exc
                if window > 0 and on_retry is not None:
                    on_retry(exc, None)
            if now >= started + window:
                raise
            sleep(min(delay, started + window - now))
            delay = min(delay * 2, _RETRY_MAX_DELAY)
            continue
        if first_error is not None and on_retry is not None:
            on_retry(first_error, clock() - started)
        return result


def retry_window_seconds(value: Any) -> float:
    """The ``retry_window`` option checked: seconds, 0 or more (0: no retry)."""
    if value is None:
        return float(DEFAULT_RETRY_WINDOW)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise PersistenceError(
            'persistence.retry_window must be a number of seconds, 0 or more (0: try the state store once), '
            'not %r.' % (value,))
    return float(value)


def _given(config: dict | None) -> dict:
    # Unset options (None, as Ansible fills suboptions) are absent options.
    return {k: v for k, v in (config or {}).items() if v is not None}


def db_url(config: dict | None) -> str | None:
    """The SQLAlchemy URL of the ``db`` store a ``persistence_config`` dict
    names (the default SQLite file for this user when it names none); None
    when it names another kind of store."""
    config = _given(config)
    if (config.get('storage') or 'db') != 'db':
        return None
    return config.get('connection') or 'sqlite:///' + default_db_path()


def open_store(config: dict | StateStore | None, write_nothing: bool = False) -> StateStore:
    """The one selector: a store from a ``persistence_config`` dict.

    ``None`` or ``{}`` gives the default SQLite file for this user.
    ``write_nothing`` (the library's setting of that name, the modules' check
    mode): a SQLite file store is an in-memory copy of the file
    (``sqlite_copy``; empty when there is no file yet), so that nothing is
    made or changed on this host: no file, directory, -wal or -shm; what the
    run writes stays in memory and ends with it. Other stores open as usual.
    """
    if isinstance(config, StateStore):
        return config
    url = db_url(config)
    config = _given(config)
    storage = config.pop('storage', None) or 'db'
    if storage == 'memory':
        _reject_extra(storage, config)
        return MemoryStore()
    if storage == 'memory_db':
        _reject_extra(storage, config)
        store = SQLStore('sqlite://')
        store.storage = 'memory_db'
        return store
    if storage == 'db':
        config.pop('connection', None)
        window = retry_window_seconds(config.pop('retry_window', None))
        synchronous = _flag(config, 'sqlite_synchronous', True)
        # cinderlib's soft_deletes kept deleted rows marked as deleted; this
        # store removes them either way (README: differences with cinderlib).
        _flag(config, 'soft_deletes', False)
        _reject_extra(storage, config)
        path = _sqlite_file(url) if write_nothing else None
        if path:
            try:
                copy = sqlite_copy(path)
            except (OSError, sqlite3.Error) as exc:
                raise PersistenceError("Can't read the state store %s: %s" % (mask_url(url), _first_line(exc)),
                                       exc) from exc
            return SQLStore(url, retry_window=window, sqlite_synchronous=synchronous, sqlite_copy=copy)
        return SQLStore(url, retry_window=window, sqlite_synchronous=synchronous)
    # A plugin: an instance, a class, or an entry point's name (cinderlib's ways).
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence_plugins import (
        plugin_store,
    )
    return plugin_store(storage, config)


def _flag(config: dict, name: str, default: bool) -> bool:
    """A true/false option of cinderlib's ``db`` persistence, taken out of ``config``."""
    value = config.pop(name, default)
    if not isinstance(value, bool):
        raise PersistenceError('persistence.%s must be true or false, not %r.' % (name, value))
    return value


def _reject_extra(storage: str, config: Iterable[str]) -> None:
    extra = sorted(config)
    if extra:
        raise PersistenceError(
            'Unknown persistence option(s) for storage %r: %s.' % (storage, ', '.join(extra)))
