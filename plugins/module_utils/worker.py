# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""The module's side of the warm worker: a task that needs Cinder hands its
request to a process that keeps Cinder imported and backends initialised
(``worker_server``), instead of starting them itself.

One worker per collection code, Python interpreter and user: its directory,
``<state dir>/worker/<key>`` (0700), is named by a hash of the code the task
brought (the collection's module_utils and Ansible's, as the AnsiballZ payload
holds them), the interpreter, its ``sys.path`` and the uid, so another version
of the collection never talks to it. The code is copied there (the payload's
directory is deleted after the task); the socket is ``sock`` in it.

The first task that needs a worker starts it (its own session, detached from
the task) under a lock; later tasks connect and only send the request: the
task's arguments, the module's source, its environment, and what to
initialise (the library's settings and the backend). No Cinder, oslo or
SQLAlchemy is imported here.

Until the worker has taken the request, any problem (no directory, no worker
could start) lets the task run in its own process as without a worker, with a
warning; once taken, the task's outcome is the worker's: its result, or a
failure saying what happened (the process serving it died, or ran out of
``worker_timeout``).
"""

from __future__ import annotations

import base64
import errno
import fcntl
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from typing import Any

PROTOCOL = 1
ENV_ENABLED = 'CINDERLIB_WORKER'
ENV_IDLE_TIMEOUT = 'CINDERLIB_WORKER_IDLE_TIMEOUT'
ENV_TIMEOUT = 'CINDERLIB_WORKER_TIMEOUT'
# The directory holding the workers' directories (default: <state dir>/worker).
ENV_DIR = 'CINDERLIB_WORKER_DIR'
DEFAULT_ENABLED = True
DEFAULT_IDLE_TIMEOUT = 300
DEFAULT_TIMEOUT = 3600
# How long a task waits for a worker it started to listen, and for the worker
# to take its request (the worker imports Cinder before it reads requests).
START_TIMEOUT = 120
COLLECTION = 'ansible_collections.cinderlib.storage'
MODULE_UTILS = COLLECTION + '.plugins.module_utils'

# Set in the worker's processes: a module run there never hands over again.
IN_WORKER = False
# In a process forked from a worker's zygote: the library's settings it was
# set up with (CinderlibModule.library then does not set it up again).
WARM_SETUP: dict | None = None

AFTERMATH = ('Whatever the task was changing is left as the state store shows it (a volume or snapshot still '
             "'creating', 'extending' or 'deleting'): cinderlib.storage.cinderlib_reconcile settles it. The next "
             'task runs in a new process.')


class Unavailable(Exception):
    """No worker can take this task (it then runs in its own process)."""


# -- settings ------------------------------------------------------------------------
def _env_bool(value: str) -> bool | None:
    value = value.strip().lower()
    if value in ('1', 'true', 'yes', 'on'):
        return True
    if value in ('0', 'false', 'no', 'off'):
        return False
    return None


def _env_int(environ: dict, name: str, default: int) -> int:
    value = environ.get(name, '').strip()
    if not value:
        return default
    try:
        return max(0, int(value))
    except ValueError:
        return default


def settings(params: dict, environ: dict) -> dict:
    """The worker settings of a task: its options, else the environment
    variables, else the defaults (``DEFAULT_ENABLED``). ``enabled`` is false
    for ``worker: false`` and for an idle timeout of 0."""
    enabled = params.get('worker')
    if enabled is None:
        enabled = _env_bool(environ.get(ENV_ENABLED, ''))
    idle = params.get('worker_idle_timeout')
    if idle is None:
        idle = _env_int(environ, ENV_IDLE_TIMEOUT, DEFAULT_IDLE_TIMEOUT)
    timeout = params.get('worker_timeout')
    if timeout is None:
        timeout = _env_int(environ, ENV_TIMEOUT, DEFAULT_TIMEOUT)
    if enabled is None:
        enabled = DEFAULT_ENABLED
    return {'enabled': enabled and idle > 0, 'idle_timeout': max(0, idle), 'timeout': max(0, timeout)}


# -- framing (shared with worker_server) --------------------------------------------------
def send_frame(sock: socket.socket, message: dict) -> None:
    data = json.dumps(message, separators=(',', ':')).encode('utf-8')
    sock.sendall(struct.pack('>I', len(data)) + data)


def recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError('connection closed')
        chunks.append(chunk)
        left -= len(chunk)
    return b''.join(chunks)


def recv_frame(sock: socket.socket) -> dict:
    (size,) = struct.unpack('>I', recv_exact(sock, 4))
    return json.loads(recv_exact(sock, size).decode('utf-8'))


# -- the module being run -------------------------------------------------------------------
def module_source() -> dict | None:
    """The running module (name, file, source), when this process runs one
    of the collection's modules: under AnsiballZ (``_module_fqn``) or as a
    file of the collection's ``plugins/modules`` (as tests run them). None
    otherwise (the library used by a script, unit tests)."""
    main = sys.modules.get('__main__')
    fqn = getattr(main, '_module_fqn', None)
    filename = getattr(main, '__file__', None)
    if not filename:
        return None
    if fqn is None:
        parts = os.path.normpath(os.path.abspath(filename)).split(os.sep)
        if parts[-2:-1] != ['modules'] or parts[-3:-2] != ['plugins'] or not parts[-1].endswith('.py'):
            return None
        fqn = COLLECTION + '.plugins.modules.' + parts[-1][:-3]
    if not fqn.startswith(COLLECTION + '.plugins.modules.'):
        return None
    source = None
    loader = getattr(main, '__loader__', None)
    if loader is not None and hasattr(loader, 'get_source'):
        try:
            source = loader.get_source(fqn)
        except (ImportError, OSError):
            source = None
    if source is None:
        try:
            with open(filename, encoding='utf-8') as handle:
                source = handle.read()
        except OSError:
            return None
    return {'fqn': fqn, 'file': filename, 'source': source}


def _package_location() -> tuple[str | None, str]:
    """(the zip archive the collection is imported from, or None; the
    directory of its module_utils)."""
    package = sys.modules[MODULE_UTILS]
    path = list(package.__path__)[0]
    spec_loader = getattr(package.__spec__, 'loader', None)
    archive = getattr(spec_loader, 'archive', None)
    if archive is None:
        # A namespace package has no loader: look for the archive in the path.
        head = path
        while head and head != os.path.dirname(head):
            if os.path.isfile(head) and _is_zip(head):
                archive = head
                break
            head = os.path.dirname(head)
    return archive, path


def _is_zip(path: str) -> bool:
    import zipfile
    return zipfile.is_zipfile(path)


def code_files() -> tuple[dict[str, bytes], list[str]]:
    """(the code the worker runs, by path relative to its code directory;
    the entries of ``sys.path`` it keeps). From the AnsiballZ payload: its
    ``ansible`` and ``ansible_collections`` trees, modules left out (each
    request brings its own). From a checkout (tests): the collection's
    module_utils, Ansible coming from the interpreter's own path."""
    archive, path = _package_location()
    files: dict[str, bytes] = {}
    if archive is not None:
        import zipfile
        with zipfile.ZipFile(archive) as payload:
            for name in payload.namelist():
                if name.endswith('/') or not name.startswith(('ansible/', 'ansible_collections/')):
                    continue
                if '/plugins/modules/' in name and not name.endswith('/__init__.py'):
                    continue
                files[name] = payload.read(name)
        kept = [p for p in sys.path if p and not p.startswith(os.path.dirname(archive)) and os.path.exists(p)]
        return files, kept
    base = 'ansible_collections/cinderlib/storage/plugins/module_utils'
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        for name in sorted(names):
            if name.endswith('.py'):
                full = os.path.join(root, name)
                with open(full, 'rb') as handle:
                    files[base + '/' + os.path.relpath(full, path).replace(os.sep, '/')] = handle.read()
    for package in ('ansible_collections', 'ansible_collections/cinderlib', 'ansible_collections/cinderlib/storage',
                    'ansible_collections/cinderlib/storage/plugins', base):
        files.setdefault(package + '/__init__.py', b'')
    collections_root = os.path.normpath(os.path.join(path, *(['..'] * 5)))
    kept = [p for p in sys.path if p and os.path.exists(p)
            and os.path.normpath(os.path.abspath(p)) != collections_root]
    return files, kept


def worker_key(files: dict[str, bytes], path: list[str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b'\0' + hashlib.sha256(files[name]).digest())
    digest.update(json.dumps([PROTOCOL, sys.executable, path, os.getuid()]).encode())
    return digest.hexdigest()[:20]


def state_root(state_dir: str, environ: dict) -> str:
    return environ.get(ENV_DIR) or os.path.join(state_dir, 'worker')


def _private_dir(path: str) -> None:
    """Make ``path`` a directory only this user can open, or raise Unavailable."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError as exc:
        raise Unavailable("can't create the worker directory %s: %s" % (path, exc.strerror)) from exc
    if info.st_uid != os.getuid() or not os.path.isdir(path) or os.path.islink(path):
        raise Unavailable('the worker directory %s is not a directory of this user (uid %d)' % (path, os.getuid()))
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)


def socket_address(directory: str, dir_fd: int | None = None) -> str:
    """The socket's path, short enough for AF_UNIX (108 bytes): through
    /proc/self/fd when the directory's own path is too long."""
    path = os.path.join(directory, 'sock')
    if len(path.encode()) < 100 or dir_fd is None:
        return path
    return '/proc/self/fd/%d/sock' % dir_fd


def _connect(directory: str, dir_fd: int) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_address(directory, dir_fd))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK, errno.ECONNRESET):
            return None
        raise Unavailable("can't connect to the worker in %s: %s" % (directory, exc.strerror)) from exc
    return sock


def _install_code(directory: str, files: dict[str, bytes]) -> str:
    code = os.path.join(directory, 'code')
    if os.path.exists(os.path.join(code, '.complete')):
        return code
    staging = os.path.join(directory, 'code.%d' % os.getpid())
    for name, data in files.items():
        target = os.path.join(staging, *name.split('/'))
        os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
        with open(target, 'wb') as handle:
            handle.write(data)
    with open(os.path.join(staging, '.complete'), 'w', encoding='utf-8'):
        pass
    if os.path.exists(code):
        _remove_tree(code)
    os.rename(staging, code)
    return code


def _remove_tree(path: str) -> None:
    for root, dirs, names in os.walk(path, topdown=False):
        for name in names:
            os.unlink(os.path.join(root, name))
        for name in dirs:
            os.rmdir(os.path.join(root, name))
    os.rmdir(path)


def _start(directory: str, dir_fd: int, files: dict[str, bytes], path: list[str]) -> socket.socket:
    """Start the worker of ``directory`` (the caller holds its start lock) and
    connect to it."""
    try:
        os.unlink(os.path.join(directory, 'sock'))
    except FileNotFoundError:
        pass
    code = _install_code(directory, files)
    from ansible_collections.cinderlib.storage.plugins.module_utils import worker_server
    boot = ('import sys, json; sys.path[:] = json.loads(sys.argv[2]); '
            'from %s import serve; serve(sys.argv[1])' % worker_server.__name__)
    with open(os.devnull, 'rb') as null_in, open(os.devnull, 'wb') as null_out:
        proc = subprocess.Popen([sys.executable, '-c', boot, directory, json.dumps([code] + path)],
                                stdin=null_in, stdout=null_out, stderr=null_out, cwd=directory,
                                start_new_session=True, close_fds=True)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        sock = _connect(directory, dir_fd)
        if sock is not None:
            return sock
        if proc.poll() is not None:
            raise Unavailable('the worker (%s) exited with status %s on start' % (sys.executable, proc.returncode))
        if time.monotonic() > deadline:
            raise Unavailable('the worker started in %s did not listen within %d s' % (directory, START_TIMEOUT))
        time.sleep(0.02)


def _prune(root: str, keep: str) -> None:
    """Remove the directories of other workers (other collection versions or
    interpreters) in which no worker listens and no task is starting one, so
    that upgrades do not pile up copies of old code."""
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        directory = os.path.join(root, name)
        if directory == keep or os.path.islink(directory) or not os.path.isdir(directory):
            continue
        try:
            lock_fd = os.open(os.path.join(directory, 'lock'), os.O_RDWR)
        except OSError:
            continue  # not a worker's directory, or not one this user may touch
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                sock = _connect(directory, dir_fd)
            finally:
                os.close(dir_fd)
            if sock is not None:
                sock.close()
                continue
            _remove_tree(directory)
        except (OSError, Unavailable):
            continue  # held by a task starting that worker, or in use: left as it is
        finally:
            os.close(lock_fd)


def connect(state_dir: str, environ: dict) -> tuple[socket.socket, str]:
    """A connection to this code's worker, started if needed; raises Unavailable."""
    files, path = code_files()
    root = state_root(state_dir, environ)
    try:
        os.makedirs(os.path.dirname(root.rstrip('/')) or '/', mode=0o700, exist_ok=True)
    except OSError as exc:
        raise Unavailable("can't create %s: %s" % (os.path.dirname(root), exc.strerror)) from exc
    # The worker root is 0700: no other user reaches a socket below it.
    _private_dir(root)
    directory = os.path.join(root, worker_key(files, path))
    _private_dir(directory)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        sock = _connect(directory, dir_fd)
        if sock is not None:
            return sock, directory
        lock_fd = os.open(os.path.join(directory, 'lock'), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            # Another task may have started it while this one waited.
            sock = _connect(directory, dir_fd)
            if sock is None:
                sock = _start(directory, dir_fd, files, path)
                _prune(root, keep=directory)
            return sock, directory
        finally:
            os.close(lock_fd)
    except OSError as exc:
        raise Unavailable('the worker in %s could not be started: %s' % (directory, exc)) from exc
    finally:
        os.close(dir_fd)


# -- a request --------------------------------------------------------------------------
def request(module_args: bytes, profile: str | None, module: dict, warm: dict, worker: dict) -> dict:
    return {
        'protocol': PROTOCOL, 'kind': 'run', 'args': module_args.decode('utf-8'), 'profile': profile,
        'module': module, 'warm': warm, 'env': dict(os.environ), 'cwd': os.getcwd(),
        'umask': _umask(), 'timeout': worker['timeout'], 'idle_timeout': worker['idle_timeout'],
    }


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def hand_over(sock: socket.socket, message: dict, timeout: int) -> dict:
    """Send the request; wait for the worker's answer.

    Returns ``{'result': {...}}`` (what the module printed and its exit code)
    or ``{'exit': {...}}`` (the process that ran it ended without a result).
    Raises Unavailable when the worker did not take the request, and
    RuntimeError once it took it but the answer was lost.
    """
    try:
        send_frame(sock, message)
        sock.settimeout(START_TIMEOUT)
        first = recv_frame(sock)
    except (OSError, EOFError, ValueError) as exc:
        raise Unavailable('the worker did not take the request (%s)' % exc) from exc
    if 'refused' in first:
        raise Unavailable('the worker refused the request: %s' % first['refused'])
    if 'accepted' not in first:
        raise Unavailable('unexpected answer from the worker: %s' % sorted(first))
    # From here on the worker owns the request: no second run of it.
    sock.settimeout(timeout + START_TIMEOUT if timeout else None)
    answer: dict = {'pid': first['accepted'].get('pid')}
    try:
        while True:
            frame = recv_frame(sock)
            if 'started' in frame:
                answer['child'] = frame['started']
            elif 'result' in frame or 'exit' in frame:
                answer.update(frame)
                return answer
    except (OSError, EOFError, ValueError) as exc:
        raise RuntimeError(
            'the connection to the cinderlib worker (pid %s) was lost before the task finished (%s): the worker '
            'was stopped while it ran this task' % (answer['pid'], exc)) from exc


def decode(result: dict) -> tuple[int, bytes, bytes]:
    return (int(result.get('rc', 1)), base64.b64decode(result.get('stdout', '')),
            base64.b64decode(result.get('stderr', '')))


def status(directory: str) -> dict | None:
    """The worker's own account (pid, requests served, backends warm), for
    tests and troubleshooting; None when none listens in ``directory``."""
    return _control(directory, 'status')


def stop(directory: str) -> dict | None:
    """Ask the worker of ``directory`` to exit once its requests are done."""
    return _control(directory, 'stop')


def _control(directory: str, kind: str) -> dict | None:
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        sock = _connect(directory, dir_fd)
    finally:
        os.close(dir_fd)
    if sock is None:
        return None
    with sock:
        sock.settimeout(START_TIMEOUT)
        send_frame(sock, {'protocol': PROTOCOL, 'kind': kind})
        return recv_frame(sock)


def json_copy(value: Any) -> Any:
    """``value`` as it arrives through the socket (JSON)."""
    return json.loads(json.dumps(value))


def relay(result: dict) -> None:
    """Give the worker's output as this process's own, and exit with its code."""
    rc, out, err = decode(result)
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, data in ((1, out), (2, err)):
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    # The worker's module already printed its result (exit_json or fail_json there): only its code is left.
    raise SystemExit(rc)


def ended_message(answer: dict) -> str:
    """The task's failure when the worker's process for it ended without a result."""
    info = answer.get('exit') or {}
    pid = info.get('pid', answer.get('child'))
    if info.get('timeout'):
        return ('The task ran longer than worker_timeout (%d s) in the cinderlib worker, which stopped it (process '
                '%s killed): a driver call may hang. %s Raise worker_timeout for operations that take longer.'
                % (info['timeout'], pid, AFTERMATH))
    status = info.get('status')
    if isinstance(status, int) and status < 0:
        try:
            how = 'killed by signal %d (%s)' % (-status, signal.Signals(-status).name)
        except ValueError:
            how = 'killed by signal %d' % -status
    else:
        how = 'exit status %s' % status
    return ('The cinderlib worker process running this task (pid %s) ended without a result (%s). %s'
            % (pid, how, AFTERMATH))
