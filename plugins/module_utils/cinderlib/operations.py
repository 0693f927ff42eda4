# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""The crash-safe sequence every operation on a volume, snapshot or
connection follows, written once (``run_operation``).

Status follows Cinder's state machine, and the transitional status
(``creating``, ``deleting``, ``connecting``...) is written to the store
*before* the driver is called, the final one after: a process killed in
between leaves a record that says so, never a silent orphan. A driver that
fails leaves the error status (``error``, ``error_deleting``...), as in
Cinder. The caller holds the resource's lock (``locks.resource_locked``)
throughout, so that a later run can tell such a record from an operation
still in progress; ``reconcile.py`` and ``connections.settle_leftovers``
resolve leftovers.

Cinder-free: the operations hand in their driver calls.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import context, secrets
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    CinderlibError,
    DriverOperationError,
    PersistenceError,
    describe_cause,
)

# The statuses the operations on volumes and snapshots write before calling
# the driver: a record left with one is an operation in progress, or one that
# a crash interrupted.
TRANSITIONAL = {'volume': ('creating', 'deleting', 'extending', 'managing'),
                'snapshot': ('creating', 'deleting', 'managing')}

TEST_KILL_AT_ENV = 'CINDERLIB_TEST_KILL_AT'
"""Names the crash point of the test-only hook ``_test_kill_point``."""


def _test_kill_point(point: str) -> None:
    """A test-only crash hook, inert unless the environment variable
    ``CINDERLIB_TEST_KILL_AT`` equals ``point``: then this process kills
    itself with SIGKILL (no clean-up runs, as in a power cut or an OOM kill),
    so tests can show what a crash there leaves and how reconcile resolves it.

    Points (``run_operation``): ``<kind>.<operation>.<before|after>_driver``:
    after the transitional record is written and before the driver is
    called, or after the driver returned and before the final record is
    written. The crash tests use ``<volume|snapshot>.<create|delete>.*``,
    ``volume.extend.*`` and ``connection.<connect|disconnect>.*``.
    """
    if os.environ.get(TEST_KILL_AT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


class _DriverCallTimedOut(BaseException):
    """Raised by the alarm into a driver call that ran past ``driver_timeout``.
    Not an Exception: drivers catch those around their API calls, and some
    retry on them (krest does for ten minutes)."""


@contextlib.contextmanager
def _bounded(seconds: float | None) -> Iterator[None]:
    """Interrupt the block after ``seconds`` with _DriverCallTimedOut; no
    bound when ``seconds`` is unset, off the main thread (signals reach only
    that one) or inside a bounded block (the outer bound holds)."""
    if (not seconds or threading.current_thread() is not threading.main_thread()
            or signal.getitimer(signal.ITIMER_REAL)[0]):
        yield
        return

    def expired(_signum, _frame):
        raise _DriverCallTimedOut()

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def driver_call(resource, action: str, func, *args: Any):
    """Run a driver method, for at most the ``driver_timeout`` setting; any
    failure becomes a DriverOperationError naming the resource and its backend."""
    timeout = context.setting('driver_timeout')
    try:
        with _bounded(timeout):
            return func(*args)
    except _DriverCallTimedOut:
        raise DriverOperationError(
            "Failed to %s %s on backend '%s': the driver did not return within %s seconds (driver_timeout); "
            "what it had done by then on the backend is unknown." % (
                action, resource.describe(), resource.backend_name, _seconds(timeout))) from None
    except CinderlibError:
        raise
    except Exception as exc:  # noqa: BLE001 - drivers raise anything
        # Drivers put their options in messages (a URL with the array's password...).
        message = "Failed to %s %s on backend '%s': %s" % (
            action, resource.describe(), resource.backend_name, describe_cause(exc))
        raise DriverOperationError(secrets.scrub(message, getattr(resource.backend, '_secrets', ())), exc) from exc


def _seconds(value: float) -> str:
    return ('%d' % value) if float(value).is_integer() else ('%g' % value)


def model_update_changes(model_update: Any) -> dict:
    """What a driver's model update (``provider_location``...) changes in a
    record; its ``id`` and ``status`` are the library's to set."""
    if not isinstance(model_update, dict):
        return {}
    return {key: value.isoformat() if hasattr(value, 'isoformat') else value
            for key, value in model_update.items() if key not in ('id', 'status')}


def run_operation(resource, operation: str, *, transitional: dict, call: Callable[[], Any], on_error: dict,
                  final: dict | Callable[[Any], dict | None], model_update: bool = False) -> Any:
    """Run ``operation`` (``'create'``...) of ``resource``, which the caller
    has locked, crash-safely; returns what ``call`` returned.

    1. save ``transitional`` (``{'status': 'creating'}``); crash point
       ``<kind>.<operation>.before_driver``;
    2. ``call()``: the driver call(s), through ``driver_call``. On a library
       error, save ``on_error`` and raise it again;
    3. crash point ``<kind>.<operation>.after_driver``; save ``final``: the
       changes, or a function of ``call``'s result that gives them (None when
       there is nothing to save, as when it removed the record). With
       ``model_update``, ``call``'s result is the driver's model update, saved
       with ``final``, which wins over it (Cinder sets the status after it).

    A save the state store refuses (``PersistenceError``, such as a store
    unreachable for its whole retry window) is raised saying whether the
    driver was called and, if it was, which transitional status the record
    may still hold: what a crash at that point leaves, settled the same way.
    """
    point = '%s.%s' % (resource.kind, operation)
    try:
        resource._save(**transitional)
    except PersistenceError as exc:
        raise PersistenceError("%s The driver was not called: backend '%s' is unchanged." % (
            _sentence(exc.message), resource.backend_name), exc.cause) from exc
    _test_kill_point(point + '.before_driver')
    try:
        result = call()
    except CinderlibError as exc:
        _capacity_may_have_changed(resource, operation)
        try:
            resource._save(**on_error)
        except PersistenceError as store_exc:
            raise PersistenceError('%s The state store could not record this failure either, so %s %s' % (
                _sentence(exc.message), _left(resource, transitional), _sentence(store_exc.message)),
                exc.cause) from exc
        raise
    _capacity_may_have_changed(resource, operation)
    _test_kill_point(point + '.after_driver')
    try:
        changes = final(result) if callable(final) else dict(final)
        if model_update:
            changes = {**model_update_changes(result), **changes}
        if changes is not None:
            resource._save(**changes)
    except PersistenceError as exc:
        # What a crash at this point leaves: the backend changed, the record
        # still transitional; settled the same way.
        raise PersistenceError("%s on backend '%s' was %s by the driver, but the state store could not record "
                               'it, so %s %s' % (resource.describe().capitalize(), resource.backend_name,
                                                 _past(operation), _left(resource, transitional),
                                                 _sentence(exc.message)), exc.cause) from exc
    return result


CAPACITY_OPERATIONS = ('create', 'delete', 'extend')
"""The operations whose driver call changes what the backend holds (a
failed one may have changed part of it)."""


def _capacity_may_have_changed(resource, operation: str) -> None:
    """Tell the resource's backend that its cached stats are outdated (a
    detached backend, a name only, has none)."""
    if operation in CAPACITY_OPERATIONS:
        changed = getattr(resource.backend, 'capacity_changed', None)
        if callable(changed):
            changed()


def _past(operation: str) -> str:
    return operation + ('d' if operation.endswith('e') else 'ed')


def _sentence(message: str) -> str:
    return message if message.endswith('.') else message + '.'


def _left(resource, transitional: dict) -> str:
    """What the store holds after a failed save, and what settles it."""
    fields = ', '.join("%s '%s'" % (key, value) for key, value in transitional.items() if key.endswith('status'))
    return ("its record may still say %s: once the state store is reachable, settle it as after an interrupted "
            "run (cinderlib.storage.cinderlib_reconcile), then run again. Cause:" % fields)
