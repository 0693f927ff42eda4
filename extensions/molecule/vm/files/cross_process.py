# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""cinderlib's semantics across processes, one step per process (cross_process.yml).

    cross_process.py WORK_DIR STEP [CONNECTION_ID]

WORK_DIR holds config.json ({"backend": {...}, "persistence": {...}}), written
by the play; the steps write conn_info.json (0600: it holds the CHAP password)
and device.json there. Steps:

  connect  the library: create a 1 GiB volume, connect it to this host
  read     the library: load the connection, check its CHAP conn_info, save it
  attach   os-brick alone: attach from the saved conn_info, write and read back
  record   the library: device_attached(os-brick's device) and save()
  check    the library: the recorded device is os-brick's
  cleanup  os-brick's detach, disconnect, delete the volume, remove the files

Each step prints one JSON line; the CHAP password is never printed (tracebacks
and log records are scrubbed of it).
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import subprocess
import sys
import traceback

ROOT_HELPER = '' if os.geteuid() == 0 else 'sudo'  # the library's default
VOLUME_NAME = 'cross-process'
PATTERN = b'cinderlib.storage cross-process attach\n'
SECRETS: list[str] = []


class Failure(Exception):
    """A check of this script failed."""


def scrub(text: str) -> str:
    for secret in SECRETS:
        text = text.replace(secret, '***')
    return text


class ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage()), None
        return True


def emit(**fields) -> None:
    print(scrub(json.dumps(fields, sort_keys=True)))


def read_json(path: str):
    with open(path, encoding='utf-8') as handle:
        return json.load(handle)


def write_private(path: str, data) -> None:
    """Write ``data`` as JSON to a file only its owner can read."""
    if os.path.exists(path):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w', encoding='utf-8') as handle:
        json.dump(data, handle)


def store_path(work: str) -> str:
    """The SQLite file of the play's store (``sqlite:////path``)."""
    return read_json(os.path.join(work, 'config.json'))['persistence']['connection'].split(':///', 1)[1]


def in_store(work: str, secret: str) -> bool:
    """Whether the store's files hold ``secret`` (SQLite keeps text as it is)."""
    found = False
    for path in (store_path(work), store_path(work) + '-wal'):
        if os.path.exists(path):
            with open(path, 'rb') as handle:
                found = found or secret.encode('utf-8') in handle.read()
    return found


def library(work: str):
    """The library set up with the play's store and its backend initialised."""
    from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
    config = read_json(os.path.join(work, 'config.json'))
    cinderlib.setup(persistence_config=config['persistence'])
    return cinderlib, cinderlib.Backend(**config['backend'])


def initiator(conn_info: dict, locks: str):
    """os-brick's iSCSI connector, set up as the library sets it up (brick.py):
    oslo's lock directory, and privileges in this process when root."""
    import os_brick
    from os_brick import privileged
    from os_brick.initiator import connector
    from oslo_config import cfg
    if cfg.CONF.oslo_concurrency.lock_path is None:
        os.makedirs(locks, mode=0o700, exist_ok=True)
        cfg.CONF.set_override('lock_path', locks, 'oslo_concurrency')
    if os.geteuid() == 0:
        privileged.default.set_client_mode(False)
    os_brick.setup(cfg.CONF)
    return connector.InitiatorConnector.factory('ISCSI', ROOT_HELPER, use_multipath=False, device_scan_attempts=3,
                                                conn=conn_info, do_local_attach=True)


def step_connect(work: str, _conn_id: str | None) -> None:
    from oslo_utils import netutils
    cinderlib, backend = library(work)
    volume = backend.create_volume(size=1, name=VOLUME_NAME)
    connector = cinderlib.get_connector_properties(ROOT_HELPER, netutils.get_my_ipv4(), False, False)
    connection = volume.connect(connector)
    emit(volume_id=volume.id, connection_id=connection.id, host=connector['host'],
         initiator=connector.get('initiator'), status=connection.status)


def step_read(work: str, conn_id: str) -> None:
    cinderlib, _backend = library(work)
    connection = cinderlib.Connection.get_by_id(conn_id)
    conn_info = connection.conn_info
    data = conn_info.get('data') or {}
    password = data.get('auth_password')
    if password:
        SECRETS.append(password)
    if data.get('auth_method') != 'CHAP' or not password:
        raise Failure("conn_info['data'] has auth_method %r and %s auth_password: CHAP with a password expected"
                      % (data.get('auth_method'), 'an empty' if 'auth_password' in data else 'no'))
    write_private(os.path.join(work, 'conn_info.json'), conn_info)
    emit(connection_id=connection.id, volume_id=connection.volume_id,
         driver_volume_type=conn_info.get('driver_volume_type'), auth_method=data['auth_method'],
         auth_password='present', password_in_store_file=in_store(work, password),
         target_iqn=data.get('target_iqn'), target_portal=data.get('target_portal'))


def step_attach(work: str, _conn_id: str | None) -> None:
    conn_info = read_json(os.path.join(work, 'conn_info.json'))
    SECRETS.append(conn_info['data']['auth_password'])
    brick = initiator(conn_info, os.path.join(work, 'locks'))
    device = brick.connect_volume(conn_info['data'])
    path = device['path']
    write_private(os.path.join(work, 'device.json'), device)
    block = PATTERN.ljust(mmap.PAGESIZE, b'\0')
    fd = os.open(path, os.O_RDWR)
    try:
        os.pwrite(fd, block, 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    buffer = mmap.mmap(-1, mmap.PAGESIZE)  # page-aligned, as O_DIRECT needs
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        os.preadv(fd, [buffer], 0)
    finally:
        os.close(fd)
    if bytes(buffer) != block:
        raise Failure('%s gave back %r, not the pattern written' % (path, bytes(buffer[:len(PATTERN)])))
    # The login's node record: the authmethod iscsiadm used (it masks the password).
    node = subprocess.run(['iscsiadm', '-m', 'node', '-T', conn_info['data']['target_iqn'],
                           '-p', conn_info['data']['target_portal']], capture_output=True, text=True, check=True)
    methods = [line.split('=', 1)[1].strip() for line in node.stdout.splitlines()
               if line.startswith('node.session.auth.authmethod')]
    emit(path=path, device=device, node_authmethod=methods, pattern='read back')


def step_record(work: str, conn_id: str) -> None:
    cinderlib, _backend = library(work)
    connection = cinderlib.Connection.get_by_id(conn_id)
    connection.device_attached(read_json(os.path.join(work, 'device.json')))
    connection.save()
    emit(connection_id=connection.id, attached=connection.attached, path=connection.path)


def step_check(work: str, conn_id: str) -> None:
    cinderlib, _backend = library(work)
    connection = cinderlib.Connection.get_by_id(conn_id)
    recorded = (connection.connection_info or {}).get('device')
    expected = read_json(os.path.join(work, 'device.json'))
    if recorded != expected:
        raise Failure("connection_info['device'] is %r, not os-brick's %r" % (recorded, expected))
    emit(connection_id=connection.id, device=recorded, attached=connection.attached)


def step_cleanup(work: str, _conn_id: str | None) -> None:
    store = store_path(work)
    done = []
    if os.path.exists(store):
        _cinderlib, backend = library(work)
        for volume in backend.volumes:
            for connection in volume.connections:
                conn_info = connection.conn_info
                if conn_info:
                    SECRETS.extend(filter(None, [conn_info['data'].get('auth_password')]))
                    brick = initiator(conn_info, os.path.join(work, 'locks'))
                    brick.disconnect_volume(conn_info['data'], connection.device or {}, force=True)
                    done.append('detached (os-brick) %s' % connection.id)
                connection.disconnect()
                done.append('disconnected %s' % connection.id)
            volume.delete()
            done.append('deleted volume %s' % volume.id)
    # The store goes only once its volumes are gone: a failed cleanup is retried by the next run.
    for path in (store, store + '-wal', store + '-shm', store + '-journal',
                 os.path.join(work, 'conn_info.json'), os.path.join(work, 'device.json')):
        if os.path.exists(path):
            os.unlink(path)
            done.append('removed %s' % os.path.basename(path))
    emit(cleaned=done)


STEPS = {'connect': step_connect, 'read': step_read, 'attach': step_attach, 'record': step_record,
         'check': step_check, 'cleanup': step_cleanup}


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[1] not in STEPS:
        print(__doc__, file=sys.stderr)
        return 2
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ScrubFilter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    try:
        STEPS[argv[1]](argv[0], argv[2] if len(argv) == 3 else None)
    except Exception:  # noqa: BLE001 - reported, scrubbed of the password, as the step's failure
        print(scrub(traceback.format_exc()), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
