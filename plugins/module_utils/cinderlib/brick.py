# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""os-brick, the initiator side: this host's connector properties and the
local attach and detach of volumes, privileged the way the loader sets up
privileges for drivers.

Cinder-free: a host that only attaches volumes exported elsewhere (the
consumer side of the multi-host flow) needs os-brick and oslo, not Cinder.
When Cinder is configured in the process (a backend exists), the loader has
configured oslo and privsep already, and os-brick shares that set-up.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import context, loader
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    CinderlibError,
    DriverOperationError,
    InvalidRequest,
    describe_cause,
)

DEVICE_SCAN_ATTEMPTS = 3
"""os-brick's default number of rescans while waiting for a device to appear."""

_WHAT = 'Attaching volumes (os-brick)'
_MISSING_COMMAND_RE = re.compile(r"No such file or directory: '([^'/]+)'")


class BrickRuntime:
    """os-brick configured for this process: made once, on first use."""

    _instance: BrickRuntime | None = None

    @classmethod
    def get(cls, settings: loader.Settings) -> BrickRuntime:
        if cls._instance is None:
            cls._instance = cls(settings)
        return cls._instance

    def __init__(self, settings: loader.Settings) -> None:
        self.settings = settings
        cfg = loader.import_or_explain('oslo_config.cfg', _WHAT)
        os_brick = loader.import_or_explain('os_brick', _WHAT)
        self.connector = loader.import_or_explain('os_brick.initiator.connector', _WHAT)
        self.brick_exception = loader.import_or_explain('os_brick.exception', _WHAT)
        if loader.CinderRuntime._instance is None:
            # No Cinder here: give os-brick what the loader gives drivers (lock
            # directory, quiet logs, PATH, privileges), without Cinder.
            locks_path = settings.file_locks_path or os.path.join(loader.state_dir(settings), 'locks')
            if not settings.write_nothing:
                # oslo.concurrency makes it too, when a lock is taken.
                os.makedirs(locks_path, mode=0o700, exist_ok=True)
            cfg.CONF.set_override('lock_path', locks_path, 'oslo_concurrency')
            if settings.disable_logs:
                loader.quiet_logging()
            loader.complete_path()
            loader.configure_privsep(cfg, settings, loader.brick_privsep_contexts())
        # os-brick's own lock directory defaults to oslo's, once that is set.
        os_brick.setup(cfg.CONF)

    @property
    def root_helper(self) -> str:
        return self.settings.root_helper or ''

    def connector_properties(self, multipath: bool = False, enforce_multipath: bool = False,
                             my_ip: str | None = None, host: str | None = None) -> dict:
        """This host's os-brick connector properties (initiator IQN, NQN,
        host name, multipath...): what a backend needs to export a volume to it."""
        if my_ip is None:
            netutils = loader.import_or_explain('oslo_utils.netutils', _WHAT)
            my_ip = netutils.get_my_ipv4()
        try:
            return self.connector.get_connector_properties(
                self.root_helper, my_ip, multipath, enforce_multipath, host=host or socket.gethostname())
        except Exception as exc:  # noqa: BLE001 - os-brick raises anything (multipathd down...)
            raise DriverOperationError(
                "Can't read this host's connector properties%s: %s" % (
                    ' with enforce_multipath (is multipathd running?)' if enforce_multipath else '',
                    describe_cause(exc)), exc) from exc

    def initiator(self, conn_info: dict, use_multipath: bool = False,
                  device_scan_attempts: int = DEVICE_SCAN_ATTEMPTS) -> Any:
        """os-brick's connector object for a connection's protocol (``iscsi``,
        ``rbd``...), made as cinderlib made it: with the connection info (only
        remotefs reads it) and ``do_local_attach``, so that an RBD volume is
        mapped as a local block device (``rbd map``) rather than opened
        through librbd in this process."""
        protocol = protocol_of(conn_info)
        try:
            return self.connector.InitiatorConnector.factory(
                protocol, self.root_helper, use_multipath=use_multipath, device_scan_attempts=device_scan_attempts,
                conn=conn_info, do_local_attach=True)
        except self.brick_exception.InvalidConnectorProtocol as exc:
            raise InvalidRequest("os-brick can't attach volumes of protocol %r on this host: %s"
                                 % (protocol, describe_cause(exc)), exc) from exc


def get(settings: loader.Settings | None = None) -> BrickRuntime:
    """The process's BrickRuntime; with no settings, the library's (set up if needed)."""
    if settings is None:
        context.ensure_setup()
        settings = context.settings()
    return BrickRuntime.get(settings)


def protocol_of(conn_info: Any) -> str:
    """The protocol of connection info (its ``driver_volume_type``), checked."""
    if not isinstance(conn_info, dict) or not isinstance(conn_info.get('data'), dict) \
            or not isinstance(conn_info.get('driver_volume_type'), str) or not conn_info['driver_volume_type']:
        raise InvalidRequest("conn_info must be a backend's connection info: a dict with 'driver_volume_type' "
                             "(such as 'iscsi') and 'data'.")
    return conn_info['driver_volume_type']


def brick_call(action: str, func, *args: Any, **kwargs: Any) -> Any:
    """Run an os-brick call; any failure becomes a DriverOperationError."""
    try:
        return func(*args, **kwargs)
    except CinderlibError:
        raise
    except Exception as exc:  # noqa: BLE001 - os-brick raises anything
        cause = describe_cause(exc)
        # processutils reports a missing command as "[Errno 2] No such file or directory: 'iscsiadm'".
        missing = _MISSING_COMMAND_RE.search(cause)
        if missing:
            raise DriverOperationError(
                "Failed to %s: the command '%s' is not installed on this host (iSCSI needs the open-iscsi "
                'package; the cinderlib.storage.runtime role installs initiators with cinderlib_runtime_attach).'
                % (action, missing.group(1)), exc) from exc
        raise DriverOperationError('Failed to %s: %s' % (action, cause), exc) from exc


def attach(runtime: BrickRuntime, conn_info: dict, use_multipath: bool = False,
           device_scan_attempts: int = DEVICE_SCAN_ATTEMPTS, what: str = 'the volume') -> dict:
    """Attach with os-brick; returns its device info (``path`` and more)."""
    initiator = runtime.initiator(conn_info, use_multipath, device_scan_attempts)
    device = brick_call('attach %s on this host' % what, initiator.connect_volume, conn_info['data'])
    if not isinstance(device, dict) or not device.get('path'):
        raise DriverOperationError('Attaching %s on this host gave no device path (os-brick returned %r).'
                                   % (what, device))
    return device


def detach(runtime: BrickRuntime, conn_info: dict, device: dict | None, force: bool = False,
           use_multipath: bool = False, what: str = 'the volume') -> None:
    """Detach with os-brick; ``force`` flushes and removes even when I/O fails."""
    initiator = runtime.initiator(conn_info, use_multipath)
    brick_call('detach %s from this host' % what, initiator.disconnect_volume, conn_info['data'], device or {},
               force=force, ignore_errors=force)


def extend(runtime: BrickRuntime, conn_info: dict, use_multipath: bool = False, what: str = 'the volume') -> int:
    """Make this host see the new size of an attached volume; returns it in bytes."""
    initiator = runtime.initiator(conn_info, use_multipath)
    return brick_call('grow the attached device of %s' % what, initiator.extend_volume, conn_info['data'])


def existing_paths(runtime: BrickRuntime, conn_info: dict, use_multipath: bool = False) -> list[str]:
    """Device paths of this connection that exist on this host now (attached or not)."""
    initiator = runtime.initiator(conn_info, use_multipath)
    paths = brick_call('look up the devices of the volume', initiator.get_volume_paths, conn_info['data'])
    return [p for p in paths or [] if os.path.exists(p)]
