# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""Exceptions of the cinderlib library layer.

Every foreseeable failure is raised as a ``CinderlibError`` (or a subclass)
whose message is meant for people; the Ansible layer turns it into
``fail_json(msg=...)``. The original exception, when there is one, is kept
in ``cause`` so a traceback can still be shown with ``-vvv``.
"""

from __future__ import annotations


class CinderlibError(Exception):
    """Base error: ``str(error)`` is a complete, secret-free sentence."""

    def __init__(self, message: str, cause: BaseException | None = None):
        super().__init__(message)
        self.message = message
        self.cause = cause


class SetupError(CinderlibError):
    """The library's global setup was called twice or with bad options."""


class MissingDependencyError(CinderlibError):
    """A Python package needed by the library or by a driver is missing."""

    def __init__(self, message: str, package: str, cause: BaseException | None = None):
        super().__init__(message, cause)
        self.package = package


class BackendConfigError(CinderlibError):
    """A backend's configuration is invalid (unknown option, bad value...)."""

    def __init__(self, message: str, problems: list[str] | None = None,
                 cause: BaseException | None = None):
        super().__init__(message, cause)
        self.problems = problems or []


class UnknownDriver(BackendConfigError):
    """A driver (a backend's ``volume_driver``) names no volume driver
    Cinder has here."""


class BackendInitError(CinderlibError):
    """The driver was configured but could not start (unreachable array...)."""


class PersistenceError(CinderlibError):
    """The state store can't be opened, read or written."""


class InvalidPersistence(PersistenceError):
    """``persistence_config`` names no store or plugin the library has."""


class NotFound(CinderlibError):
    """A volume, snapshot or connection is not known."""


class InvalidRequest(CinderlibError):
    """A request that can't be done in the resource's current state."""


# cinderlib's own exception names (``cinderlib.exception``), raised where
# cinderlib raised them; each is also the library's error of that kind.
class VolumeNotFound(NotFound):
    """No volume of that id in the state store (``Volume.get_by_id``)."""


class SnapshotNotFound(NotFound):
    """No snapshot of that id in the state store (``Snapshot.get_by_id``)."""


class ConnectionNotFound(NotFound):
    """No connection of that id in the state store (``Connection.get_by_id``)."""


class InvalidVolume(InvalidRequest):
    """The volume can't do that now (delete one with snapshots)."""


class NotLocal(InvalidRequest):
    """The volume is not attached on this host (``Volume.detach``)."""


class BackendObjectExists(InvalidRequest):
    """A create would make a backend object under a name the backend already
    has: an object this collection did not make, left as it is. ``name`` is
    that object's name on the backend."""

    def __init__(self, action: str, backend: str, found: str, name: str, remedy: str):
        super().__init__(
            "Can't %s on backend '%s': the backend already has %s named '%s', which this collection did not make "
            '(made by hand, by another tool or by an old Cinder). Nothing was recorded or changed; it is left as '
            'it is. %s' % (action, backend, found, name, remedy))
        self.name = name


class DriverOperationError(CinderlibError):
    """The driver failed while doing an operation on the array."""


def describe_cause(exc: BaseException) -> str:
    """One line saying why a driver call failed.

    A failed command (oslo's ProcessExecutionError) says only "Unexpected
    error while running command"; its program and stderr say why.
    """
    stderr = getattr(exc, 'stderr', None)
    cmd = getattr(exc, 'cmd', None)
    if stderr and cmd:
        program = str(cmd).split()
        program = [p for p in program if p not in ('env', 'LC_ALL=C', 'sudo')][:1]
        lines = [line.strip() for line in str(stderr).splitlines() if line.strip()]
        # LVM prefixes the real error with warnings (activation disabled...).
        lines = [line for line in lines if not line.startswith('WARNING:')] or lines
        return 'command %s failed (exit code %s): %s' % (
            program[0] if program else '?', getattr(exc, 'exit_code', '?'), ' '.join(lines[:3]))
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
