# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""Inter-process locks on volumes, through Cinder's own coordination.

By default these are file locks in the library's locks directory, so they
serialize the processes of one host (Ansible forks, parallel playbooks).
With the ``coordination_url`` setup option (a tooz URL such as
``redis://HOST:6379``) they are locks of that server and serialize every
host that uses it.

Lock names:
- ``cinderlib-volume-<id>``: held by every operation on a volume, its
  snapshots and its connections (from the transitional record to the final
  one), so a record in a transitional state whose lock is free was left by a
  process that died. ``resource_locked`` is how the library takes it;
- ``cinderlib-name-<hash>``: held by the modules while they look a volume up
  by name and act on it, so that two runs on the same name take turns.

Cinder itself is only reached through the runtime (``loader``), which has
started the coordinator when the first backend was initialised.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
from collections.abc import Iterator

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import InvalidRequest

LOCK_TIMEOUT = 600
"""Seconds an operation waits for another process's lock before failing."""

_SAFE = re.compile(r'^[A-Za-z0-9._-]{1,100}$')


def _part(value: str) -> str:
    value = str(value)
    return value if _SAFE.match(value) else hashlib.sha1(value.encode('utf-8')).hexdigest()


def volume_lock_name(volume_id: str) -> str:
    """The lock of one volume (and of its snapshots)."""
    return 'cinderlib-volume-%s' % _part(volume_id)


def resource_lock_name(resource) -> str:
    """The lock of a volume, snapshot or connection: its volume's, because
    operations on a snapshot or connection change what its volume may do."""
    return volume_lock_name(resource.id if resource.kind == 'volume' else resource.volume_id)


def name_lock_name(backend_id: str, name: str) -> str:
    """The lock of a volume name on a backend, taken before the name is looked up."""
    return 'cinderlib-name-%s' % hashlib.sha1(('%s\0%s' % (backend_id, name)).encode('utf-8')).hexdigest()


class _ProcessLock:
    """A lock of this process only, with tooz's ``acquire(blocking)``: what
    backends that have no Cinder runtime behind them (test doubles) get."""

    _locks: dict[str, threading.Lock] = {}

    def __init__(self, name: str) -> None:
        self._lock = self._locks.setdefault(name, threading.Lock())

    def acquire(self, blocking: bool | float = True) -> bool:
        if isinstance(blocking, bool):
            return self._lock.acquire(blocking)
        return self._lock.acquire(timeout=blocking)

    def release(self) -> None:
        self._lock.release()


def _lock(name: str):
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.loader import CinderRuntime
    # Every real backend made the runtime (and started Cinder's coordinator,
    # unless it writes nothing and has no locks directory: see has_locks).
    runtime = CinderRuntime._instance
    return runtime.lock(name) if runtime is not None and runtime.has_locks else _ProcessLock(name)


@contextlib.contextmanager
def locked(name: str, what: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold lock ``name`` for the block; ``what`` names the resource in the
    error raised when another process keeps it longer than ``timeout``."""
    lock = _lock(name)
    if not lock.acquire(blocking=timeout):
        raise InvalidRequest(
            '%s is locked by another run (lock %s) for more than %g seconds; nothing was changed. '
            'Try again when that run is over.' % (what, name, timeout))
    try:
        yield
    finally:
        lock.release()


def forget(name: str) -> None:
    """Remove what lock ``name`` leaves behind (the file of a file lock), once
    nothing will take it again: Cinder does the same for deleted volumes."""
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.loader import CinderRuntime
    runtime = CinderRuntime._instance
    if runtime is not None:
        runtime.coordination.COORDINATOR.remove_lock(name)


@contextlib.contextmanager
def try_locked(name: str) -> Iterator[bool]:
    """Take lock ``name`` if it is free; yields whether it was taken.

    A run that writes nothing (``write_nothing``, the modules' check mode)
    does not make the file of a file lock: with no file, no process holds the
    lock (taking it makes the file), so it is free."""
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.loader import CinderRuntime
    runtime = CinderRuntime._instance
    if runtime is not None and getattr(runtime.settings, 'write_nothing', False):
        path = runtime.lock_file(name)
        if path is not None and not os.path.exists(path):
            yield True
            return
    lock = _lock(name)
    taken = lock.acquire(blocking=False)
    try:
        yield taken
    finally:
        if taken:
            lock.release()


@contextlib.contextmanager
def resource_locked(resource, wait: bool = True, timeout: float = LOCK_TIMEOUT) -> Iterator[bool]:
    """Hold the lock of ``resource`` (``resource_lock_name``) for the block.

    ``wait``: wait for it (``locked``: InvalidRequest naming the resource
    after ``timeout``) and yield True. ``wait=False`` only tries
    (``try_locked``) and yields whether it was taken: how reconcile and
    check mode tell a run in progress from a leftover without waiting.
    """
    name = resource_lock_name(resource)
    if not wait:
        with try_locked(name) as taken:
            yield taken
        return
    with locked(name, resource.describe().capitalize(), timeout):
        yield True
