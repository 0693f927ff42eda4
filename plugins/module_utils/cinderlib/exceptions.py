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


class BackendInitError(CinderlibError):
    """The driver was configured but could not start (unreachable array...)."""


class PersistenceError(CinderlibError):
    """The state store can't be opened, read or written."""


class NotFound(CinderlibError):
    """A volume, snapshot or connection is not known."""


class InvalidRequest(CinderlibError):
    """A request that can't be done in the resource's current state."""


class DriverOperationError(CinderlibError):
    """The driver failed while doing an operation on the array."""
