# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""Answers that need neither Cinder nor SQLAlchemy: the fast path of tasks
with nothing to change.

Starting Cinder and a driver costs a module process well over a second; a
task whose volume is already as requested only needs the state store and a
look at the backend. This module gives those two, cheaply:

- ``open_reader(persistence_config)``: a read-only view of a SQLite state
  store through the ``sqlite3`` module (one read transaction, so the reads
  agree), with the read methods of ``persistence.StateStore``; other stores
  are opened with ``persistence.open_store`` (SQLAlchemy, still no Cinder).
- ``backend_probe(config, ...)``: for a driver with a cheap existence check
  (``PROBES``: the LVM driver, one ``lvs`` run as the driver runs it; the RBD
  driver, one read-only open of the image through librados, connected as the
  driver connects), a function that tells whether a volume is on the
  backend; ``None`` for other drivers, and for a backend configuration that
  no full run has validated on this host (``remember_validated``), so a bad
  configuration is still reported.

Callers use these only to confirm "nothing to change"; any doubt (a volume
not found on the backend, a command failing, an unknown store version) means
"take the full path", which reports problems as it always did.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shlex
import sqlite3
import subprocess
from collections.abc import Callable
from typing import Any, NamedTuple

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import fields, loader
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.listing import GIB
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import (
    SCHEMA_VERSION,
    SQLITE_BUSY_TIMEOUT,
    RecordLookups,
    db_url,
    open_store,
    retry_window_seconds,
    sqlite_copy,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.secrets import masked

LVM_DRIVER = 'cinder.volume.drivers.lvm.LVMVolumeDriver'
RBD_DRIVER = 'cinder.volume.drivers.rbd.RBDDriver'

# Defaults of Cinder's options that the LVM check reads (cinder/volume/drivers/lvm.py,
# cinder/common/config.py): a backend that does not set them gets these.
_LVM_DEFAULTS = {'volume_group': 'cinder-volumes', 'lvm_conf_file': '/etc/cinder/lvm.conf',
                 'lvm_suppress_fd_warnings': False}

# Defaults of the RBD driver's options that its connection reads (RBD_OPTS of
# cinder/volume/drivers/rbd.py; rbd_keyring_conf: loader.CINDERLIB_KEPT_OPTIONS).
# An empty rbd_ceph_conf has librados read its default files (/etc/ceph/<cluster>.conf...).
RBD_DEFAULTS = {'rbd_cluster_name': 'ceph', 'rbd_pool': 'rbd', 'rbd_user': None, 'rbd_ceph_conf': '',
                'rados_connect_timeout': -1, 'rbd_keyring_conf': ''}
# The librados options the driver sets to rados_connect_timeout (_connect_to_rados).
RADOS_TIMEOUT_OPTIONS = ('rados_osd_op_timeout', 'rados_mon_op_timeout', 'client_mount_timeout')
# The longest the fast path waits for a cluster: a dead one sends the task to
# the full path, which then waits as long as the configuration says.
RBD_CONNECT_TIMEOUT = 5

# Tables of persistence.SQLStore, read here without SQLAlchemy
# (tests/unit/.../test_quickcheck.py checks both agree on the same store).
_TABLES = {'volume': 'cinderlib_volumes', 'snapshot': 'cinderlib_snapshots', 'connection': 'cinderlib_connections'}
_COLUMNS = {'volume': ('id', 'backend', 'display_name', 'status', 'size'),
            'snapshot': ('id', 'volume_id', 'display_name', 'status'),
            'connection': ('id', 'volume_id', 'status')}

VALIDATED_DIR = 'validated-backends'


class Unavailable(Exception):
    """The cheap check can't answer; take the full path."""


# -- the state store, read-only ---------------------------------------------------------
class SQLiteReader(RecordLookups):
    """A SQLite state store read with ``sqlite3``, in one read transaction.

    Same read methods as ``StateStore`` (``get``, ``volume_records``,
    ``snapshot_records``, ``connection_records``), same records, same order.
    """

    def __init__(self, path: str, copy: sqlite3.Connection | None = None) -> None:
        # Opened read-write (read-only connections can't always read a WAL
        # database), but only ever read; isolation_level None: BEGIN is ours.
        # ``copy``: an in-memory copy of the file to read instead (persistence.sqlite_copy).
        self._conn = copy if copy is not None else sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT)
        self._conn.isolation_level = None
        try:
            self._conn.execute('BEGIN')
            row = self._conn.execute("SELECT value FROM cinderlib_meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.Error as exc:
            self.close()
            raise Unavailable('state store %s: %s' % (path, exc)) from exc
        if row is None or str(row[0]) != str(SCHEMA_VERSION):
            self.close()
            raise Unavailable('state store %s has schema version %s, not %s' % (path, row and row[0], SCHEMA_VERSION))

    def get(self, kind: str, **filters: Any) -> list[dict]:
        if kind not in _TABLES:
            raise ValueError('unknown resource kind %r' % kind)
        where, values, extra = [], [], {}
        for key, value in filters.items():
            if value is None:
                continue
            if key in _COLUMNS[kind]:
                where.append('%s = ?' % key)
                values.append(value)
            else:
                extra[key] = value
        query = 'SELECT data FROM %s%s ORDER BY created_at, id' % (
            _TABLES[kind], ' WHERE ' + ' AND '.join(where) if where else '')
        try:
            rows = self._conn.execute(query, values).fetchall()
        except sqlite3.Error as exc:
            raise Unavailable('state store: %s' % exc) from exc
        records = [json.loads(row[0]) for row in rows]
        return [r for r in records if all(r.get(k) == v for k, v in extra.items())]

    def close(self) -> None:
        self._conn.close()


def sqlite_path(persistence_config: dict | None) -> str | None:
    """The file of a SQLite ``db`` store (the default one included); None
    for other stores."""
    url = db_url(persistence_config)
    if url is None or not url.startswith('sqlite:///') or '?' in url:
        return None
    path = url[len('sqlite:///'):]
    return path if path and path != ':memory:' else None


def open_reader(persistence_config: dict | None, write_nothing: bool = False):
    """A read-only view of the state store, or None when there is nothing to
    read (a process-local store, a SQLite file not made yet) or it can't be read
    cheaply. Close it with ``close()``. ``write_nothing`` (check mode): a SQLite
    file is read through an in-memory copy, which makes no -wal or -shm file
    beside it even for a moment (``persistence.sqlite_copy``)."""
    url = db_url(persistence_config)
    if url is None:
        return None  # memory stores start empty in every process; plugins are read the full way
    # Checked here too, so that a bad value fails on the fast path as on the full one.
    retry_window_seconds((persistence_config or {}).get('retry_window'))
    path = sqlite_path(persistence_config)
    if path is None and url.startswith('sqlite'):
        return None  # in memory, or a URL form this reader does not parse
    if path is not None:
        if not os.path.isfile(path):
            return None
        try:
            return SQLiteReader(path, sqlite_copy(path) if write_nothing else None)
        except (Unavailable, sqlite3.Error, OSError):
            return None
    # Another SQLAlchemy URL (PostgreSQL): SQLAlchemy is dear, Cinder dearer.
    return open_store(persistence_config, write_nothing)


# -- configurations a full run validated on this host -------------------------------------
def config_fingerprint(config: dict, unknown_options: str) -> str:
    """What makes a backend configuration valid here: the options (values of
    options named like credentials masked), how unknown options are
    treated, and the installed Cinder (its path and modification time, which
    an upgrade changes)."""
    spec = importlib.util.find_spec('cinder')
    origin = getattr(spec, 'origin', None) or ''
    try:
        cinder_mtime = os.stat(origin).st_mtime_ns if origin else 0
    except OSError:
        cinder_mtime = 0
    material = json.dumps([masked(config), unknown_options, origin, cinder_mtime, SCHEMA_VERSION], sort_keys=True,
                          default=repr)
    return hashlib.sha256(material.encode('utf-8')).hexdigest()


def remember_validated(state_dir: str, fingerprint: str) -> None:
    """Note that a backend with this configuration started on this host."""
    directory = os.path.join(state_dir, VALIDATED_DIR)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        with open(os.path.join(directory, fingerprint), 'a', encoding='utf-8'):
            pass
    except OSError:
        # Only a shortcut is lost: later runs take the full path.
        return


def was_validated(state_dir: str, fingerprint: str) -> bool:
    return os.path.isfile(os.path.join(state_dir, VALIDATED_DIR, fingerprint))


# -- cheap looks at the backend -----------------------------------------------------------
def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ('true', '1', 'yes', 'on'):
        return True
    if isinstance(value, str) and value.strip().lower() in ('false', '0', 'no', 'off'):
        return False
    raise Unavailable('not a boolean: %r' % (value,))


def _lvs_command(config: dict, target: str, columns: str, root_helper: str, im_root: bool) -> list[str]:
    """An ``lvs`` as the LVM driver runs it (cinder/brick/local_dev/lvm.py),
    with its environment prefix and, when not root, the root helper (as
    oslo.concurrency's processutils adds it); ``target`` is VG or VG/LV."""
    options = dict(_LVM_DEFAULTS, **{k: v for k, v in config.items() if v is not None})
    prefix = ['env', 'LC_ALL=C']
    lvm_conf = str(options['lvm_conf_file'])
    if lvm_conf.lower() != 'none' and os.path.isfile(lvm_conf):
        prefix.append('LVM_SYSTEM_DIR=' + os.path.dirname(lvm_conf))
    if _as_bool(options['lvm_suppress_fd_warnings']):
        prefix.append('LVM_SUPPRESS_FD_WARNINGS=1')
    helper = [] if im_root else shlex.split(root_helper or '')
    return helper + prefix + ['lvs', '--noheadings', '--unit=g', '-o', columns, '--nosuffix', '--readonly', target]


def lvm_command(config: dict, volume_id: str, root_helper: str, im_root: bool) -> list[str]:
    """The ``lvs`` that the LVM driver's ``vg.get_volume`` runs for the volume."""
    group = dict(_LVM_DEFAULTS, **{k: v for k, v in config.items() if v is not None})['volume_group']
    lv = fields.NAME_TEMPLATES['volume'] % volume_id
    return _lvs_command(config, '%s/%s' % (group, lv), 'vg_name,name,size', root_helper, im_root)


def lvm_lv_names(config: dict, root_helper: str, im_root: bool, environ: dict | None = None) -> list[str] | None:
    """Names of the logical volumes in the backend's volume group; None when
    ``lvs`` can't list them (no such group: the driver's setup says so)."""
    group = dict(_LVM_DEFAULTS, **{k: v for k, v in config.items() if v is not None})['volume_group']
    command = _lvs_command(config, str(group), 'name', root_helper, im_root)
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=environ, check=False, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.split() if proc.returncode == 0 else None


def lvm_volume_size(config: dict, volume_id: str, root_helper: str, im_root: bool,
                    environ: dict | None = None) -> float | None:
    """Size in GiB of the volume's logical volume; None when LVM says it is
    not there. Raises Unavailable on anything else."""
    command = lvm_command(config, volume_id, root_helper, im_root)
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=environ, check=False, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable('%s: %s' % (command[0], exc)) from exc
    if proc.returncode != 0:
        # The driver's own test for a missing LV (LVM.get_lv_info).
        if 'not found' in proc.stderr or 'Failed to find' in proc.stderr:
            return None
        raise Unavailable('lvs failed (rc %d): %s' % (proc.returncode, proc.stderr.strip()[:200]))
    fields = proc.stdout.split()
    if len(fields) != 3:
        raise Unavailable('unexpected lvs output: %r' % proc.stdout[:200])
    try:
        return float(fields[2])
    except ValueError as exc:
        raise Unavailable('unexpected lvs size: %r' % fields[2]) from exc


def check_mode_setup(config: dict, root_helper: str, im_root: bool) -> tuple[dict, list[str]]:
    """(the configuration to start the driver with in check mode, what its
    setup would change on the backend and this start avoids).

    Starting a driver should only look, but the LVM driver's setup creates
    its thin pool ``<vg>-pool`` when ``lvm_type`` is ``thin``, or ``auto``
    (Cinder's default) on a volume group with no logical volume, and the pool
    is missing. In check mode it starts as ``default`` instead: nothing is
    created, and the stats are those of the volume group without the pool.
    """
    if config.get('volume_driver') != LVM_DRIVER:
        return config, []
    lvm_type = str(config.get('lvm_type') or 'auto')
    if lvm_type not in ('auto', 'thin'):
        return config, []
    names = lvm_lv_names(config, root_helper, im_root, driver_environment())
    group = config.get('volume_group') or _LVM_DEFAULTS['volume_group']
    pool = '%s-pool' % group
    if names is None or pool in names or (lvm_type == 'auto' and names):
        return config, []
    return dict(config, lvm_type='default'), [
        "check mode: the LVM driver's setup would create the thin pool %s/%s (lvm_type %s%s); this run did not "
        'create it, and shows the stats of the volume group without it' % (
            group, pool, lvm_type, ' on a volume group with no logical volume' if lvm_type == 'auto' else '')]


def driver_environment() -> dict:
    """The environment drivers run commands with (the loader's PATH)."""
    return dict(os.environ, PATH=loader.driver_path(os.environ.get('PATH', '')))


# -- Ceph RBD ----------------------------------------------------------------------------
class RBDConnect(NamedTuple):
    """How the RBD driver reaches its pool: ``rados.Rados(**rados_args)``,
    with the librados timeouts set to ``timeout`` seconds, then ``pool``."""
    rados_args: dict
    pool: str
    timeout: int


def rbd_connect_args(config: dict) -> RBDConnect:
    """The connection the RBD driver makes (``RBDDriver._connect_to_rados``:
    the cluster name, conf file and user of its default target, its pool),
    with a timeout of at most ``RBD_CONNECT_TIMEOUT`` seconds, or the
    backend's ``rados_connect_timeout`` when that is shorter."""
    options = dict(RBD_DEFAULTS, **{k: v for k, v in config.items() if v is not None})
    try:
        timeout = int(options['rados_connect_timeout'])
    except (TypeError, ValueError) as exc:
        raise Unavailable('rados_connect_timeout is no integer') from exc
    # oslo gives the driver its string options as strings.
    user = options['rbd_user']
    args = {'rados_id': None if user is None else str(user), 'clustername': str(options['rbd_cluster_name']),
            'conffile': str(options['rbd_ceph_conf'])}
    if not args['clustername'] or not str(options['rbd_pool']):
        raise Unavailable('rbd_cluster_name or rbd_pool is empty')  # the driver's setup refuses them
    return RBDConnect(args, str(options['rbd_pool']),
                      min(RBD_CONNECT_TIMEOUT, timeout) if timeout > 0 else RBD_CONNECT_TIMEOUT)


def _check_keyring(config: dict) -> None:
    """The driver's setup fails when ``rbd_keyring_conf`` (cinderlib's option,
    whose content goes into the connection info, not to librados) names a
    file it can't read or an empty one; so does the fast path, to let the full
    path report it. One byte is read, and kept nowhere."""
    path = config.get('rbd_keyring_conf')
    if not path:
        return
    try:
        with open(str(path), 'rb') as keyring:
            if keyring.read(1):
                return
    except OSError as exc:
        raise Unavailable('rbd_keyring_conf: %s' % type(exc).__name__) from exc
    raise Unavailable('rbd_keyring_conf: an empty file')


def rbd_volume_size(config: dict, volume_id: str, root_helper: str = '', im_root: bool = True,
                    environ: dict | None = None) -> float | None:
    """Size in GiB of the volume's RBD image; None when the pool has no
    such image. Raises Unavailable on anything else (no bindings, no cluster,
    no pool, no access...), naming the error's class only: librados messages
    may quote the configuration.

    librados runs in this process, as this user, like the driver's: the root
    helper and the environment of the table's other lookups don't apply."""
    connect = rbd_connect_args(config)
    _check_keyring(config)
    try:
        import rados
        import rbd
    except ImportError as exc:
        raise Unavailable('the rados and rbd Python bindings are not importable') from exc
    try:
        cluster = rados.Rados(**connect.rados_args)
    except rados.Error as exc:
        raise Unavailable('librados: %s reading the configuration' % type(exc).__name__) from None
    try:
        for option in RADOS_TIMEOUT_OPTIONS:
            cluster.conf_set(option, str(connect.timeout))
        cluster.connect()
        ioctx = cluster.open_ioctx(connect.pool)
        try:
            image = rbd.Image(ioctx, fields.NAME_TEMPLATES['volume'] % volume_id, read_only=True)
            try:
                return image.size() / GIB
            finally:
                image.close()
        finally:
            ioctx.close()
    except rbd.ImageNotFound:
        return None
    except (rados.Error, rbd.Error) as exc:
        raise Unavailable('librados: %s' % type(exc).__name__) from None
    finally:
        cluster.shutdown()


# -- which drivers have a fast path -------------------------------------------------------
# Size lookups by driver: lookup(config, volume_id, root_helper, im_root, environ)
# -> the volume's size in GiB, None when the backend says it is not there; raises
# Unavailable when it can't tell. A lookup must fail (Unavailable) wherever the
# driver's setup would, for what it reads: a configuration is validated once, by a
# full run, with the values of credential-named options masked (config_fingerprint).
PROBES: dict[str, Callable[..., float | None]] = {
    LVM_DRIVER: lvm_volume_size,
    RBD_DRIVER: rbd_volume_size,
}


def has_probe(config: dict) -> bool:
    """Whether the backend's driver has a cheap existence check here."""
    return config.get('volume_driver') in PROBES


def backend_probe(config: dict, unknown_options: str, state_dir: str, root_helper: str,
                  im_root: bool) -> Callable[[dict], bool] | None:
    """``probe(volume_record) -> bool``: whether the volume is on the backend
    and at least its recorded size; None when this backend has no cheap
    check or its configuration was not validated on this host. A probe that
    can't tell raises Unavailable."""
    if not has_probe(config) or unknown_options != 'error':
        # unknown_options=warn: the warnings need the driver's options (Cinder).
        return None
    if not was_validated(state_dir, config_fingerprint(config, unknown_options)):
        return None
    lookup = PROBES[config['volume_driver']]
    environ = driver_environment()

    def probe(record: dict) -> bool:
        # The name on the backend is made from _name_id when a record has one (objects.Volume.name).
        size = lookup(config, record.get('_name_id') or record['id'], root_helper, im_root, environ)
        # LVM may round up to its extent size, never down; an image may have been grown by hand.
        return size is not None and size >= float(record.get('size') or 0)
    return probe
