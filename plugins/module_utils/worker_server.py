# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""The warm worker: a process per collection code, interpreter and user that
keeps Cinder imported and backends initialised between tasks (the module's
side is ``worker.py``).

Processes:

- the *master* (``serve``) listens on ``sock`` in its 0700 directory, checks
  each peer's uid (SO_PEERCRED) and refuses other users, imports Ansible's
  module_utils, the collection's and Cinder once, and exits after its idle
  timeout (removing its socket);
- a *zygote* per initialised backend: forked from the master for one
  (library settings, backend configuration, environment), it sets the library
  up and initialises the Backend once (driver created and started), then
  waits for requests. A configuration that changes gets a zygote of its own;
  idle ones exit;
- a *child* per request, forked from the zygote (or from the master for a
  task with no backend to keep warm): it runs the module's own code with the
  task's arguments, as the module's process would, its stdout and stderr in
  memory, and sends them back. A SIGKILL of a child is what a SIGKILL of a
  module process always was (the crash-safety rules and cinderlib_reconcile
  apply unchanged); the process that forked it tells the task. A child that
  runs longer than the task's ``worker_timeout``, or whose task went away,
  is killed.

Backends are kept initialised only for drivers whose started state survives
a fork (``WARM_DRIVERS``: they hold no connection to an array between calls)
and with the default file locks; others are started by each child, which
still finds Cinder imported. Before forking children a zygote releases what
must not be shared across processes (the state store's connections, Cinder's
lock coordinator, privsep daemons); each child opens its own.

Nothing is written to disk but the socket and a pid file; requests (which
hold the backend's credentials) stay in memory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
import types

from ansible_collections.cinderlib.storage.plugins.module_utils import worker

WARM_DRIVERS = ('cinder.volume.drivers.lvm.LVMVolumeDriver',)
# What CinderRuntime imports, plus the drivers kept warm (in this order: the
# versioned objects are registered before any driver is imported).
CINDER_MODULES = ('oslo_config.cfg', 'oslo_utils.importutils', 'cinder.objects', 'cinder.context',
                  'cinder.volume.configuration', 'cinder.volume.manager', 'cinder.exception', 'cinder.utils',
                  'cinder.coordination', 'cinder.privsep', 'os_brick', 'os_brick.privileged', 'sqlalchemy',
                  'cinder.volume.drivers.lvm', 'cinder.volume.targets.lio')
MAX_ZYGOTES = 8
READ_REQUEST_TIMEOUT = 30
# Every fd the worker's processes hold for their own use: a forked process
# closes those it does not need (a client's end must close when its request ends).
_OWN_FDS: set[int] = set()


def _track(fd: int) -> int:
    _OWN_FDS.add(fd)
    return fd


def _close(fd: int) -> None:
    _OWN_FDS.discard(fd)
    try:
        os.close(fd)
    except OSError:
        pass


def _after_fork(keep: tuple[int, ...]) -> None:
    for fd in list(_OWN_FDS):
        if fd not in keep:
            _close(fd)


# -- what the master loads once --------------------------------------------------------------
def preload() -> dict:
    """Import what every task needs; return the environment variables the
    imports set (Cinder sets some), which each child gets too."""
    before = dict(os.environ)
    from ansible.module_utils import basic  # noqa: F401 - kept loaded for the children

    from ansible_collections.cinderlib.storage.plugins.module_utils import (  # noqa: F401
        ansible_module,
        connection_state,
        volume_state,
    )
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import (  # noqa: F401
        backend,
        brick,
        connections,
        drivers,
        listing,
        objects,
        reconcile,
        views,
    )
    for name in CINDER_MODULES:
        try:
            __import__(name)
            if name == 'cinder.objects':
                sys.modules[name].register_all()
        except Exception:  # noqa: BLE001 - a child imports it again and reports what is missing
            break
    return {k: v for k, v in os.environ.items() if before.get(k) != v}


def warm_up(spec: dict):
    """In a zygote: set the library up and initialise the backend as the
    task's own process would (CinderlibModule.library and .backend), then
    release what children must not share. Returns what each child runs first."""
    from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
    cinderlib.setup(**spec['setup'])
    worker.WARM_SETUP = spec['setup']
    backend = spec.get('backend')
    if backend:
        cinderlib.Backend(backend['name'], **backend['config'])
    return quiesce()


def close_store() -> None:
    """Close the state store's connections, if the library was set up: before
    a zygote forks (children must share none), and before a child exits
    (``os._exit`` skips what would close them; SQLite then folds its WAL into
    the file, as a task's own process does when it ends)."""
    context = sys.modules.get(worker.MODULE_UTILS + '.cinderlib.context')
    store = getattr(getattr(context, 'STATE', None), 'store', None)
    if store is not None:
        store.close()


def quiesce():
    """Release the state store's connections, stop Cinder's lock coordinator
    (its heartbeat thread) and privsep daemons, so that forked children share
    none; return the function that restarts the coordinator in a child."""
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import loader
    close_store()
    runtime = loader.CinderRuntime._instance
    coordinator = getattr(getattr(runtime, 'coordination', None), 'COORDINATOR', None)
    restart = None
    if coordinator is not None and coordinator.started:
        coordinator.stop()
        restart = coordinator.start
    for module, names in (('cinder.privsep', ('sys_admin_pctxt',)),
                          ('os_brick.privileged', ('default', 'brick_privsep_hide_output'))):
        for name in names:
            ctx = getattr(sys.modules.get(module), name, None)
            if ctx is not None and getattr(ctx, 'channel', None) is not None:
                ctx.stop()

    def in_child() -> None:
        if restart is not None:
            restart()
    return in_child


# -- running a request in a child -------------------------------------------------------------
def _exit_code(code) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write('%s\n' % (code,))
    return 1


def run_module(req: dict) -> int:
    """Run the request's module as AnsiballZ runs it; its exit code."""
    from ansible.module_utils import basic
    basic._ANSIBLE_ARGS = req['args'].encode('utf-8')
    if hasattr(basic, '_ANSIBLE_PROFILE'):
        basic._ANSIBLE_PROFILE = req['profile']
    module = req['module']
    main = types.ModuleType('__main__')
    main.__dict__.update(__file__=module['file'], __builtins__=__builtins__, _module_fqn=module['fqn'],
                         _modlib_path=sys.path[0])
    sys.modules['__main__'] = main
    sys.argv = [module['file']]
    try:
        try:
            exec(compile(module['source'], module['file'], 'exec'), main.__dict__)  # noqa: S102 - the module's code
            raise RuntimeError('New-style module did not handle its own exit.')
        except Exception as exc:  # noqa: BLE001 - reported as AnsiballZ reports it
            try:
                from ansible.module_utils._internal._ansiballz._loader import _handle_exception
            except ImportError:
                traceback.print_exc()
                return 1
            _handle_exception(exc, req['profile'])
    except SystemExit as exc:
        return _exit_code(exc.code)
    return 1


def child_main(conn: socket.socket, req: dict, prepare) -> None:
    """The forked child: never returns."""
    code = 1
    try:
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL if signum != signal.SIGINT else signal.default_int_handler)
        worker.IN_WORKER = True
        _after_fork(keep=(conn.fileno(),))
        prepare(req)
        worker.send_frame(conn, {'started': os.getpid()})
        out, err = os.memfd_create('stdout'), os.memfd_create('stderr')
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(out, 1)
        os.dup2(err, 2)
        rc = run_module(req)
        try:
            close_store()
        except Exception:  # noqa: BLE001 - the task's result stands; the connections end with the process
            pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        worker.send_frame(conn, {'result': {'rc': rc, 'stdout': _read_all(out), 'stderr': _read_all(err)}})
        code = 0
    except BaseException:  # noqa: BLE001 - the parent tells the task this child ended without a result
        code = 1
    finally:
        os._exit(code)


def _read_all(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return base64.b64encode(b''.join(chunks)).decode('ascii')
        chunks.append(chunk)


def _set_process_state(req: dict, env: dict | None) -> None:
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    try:
        os.chdir(req['cwd'])
    except OSError:
        os.chdir('/')
    os.umask(req['umask'])


# -- children -------------------------------------------------------------------------------
class Child:
    def __init__(self, pid: int, conn: socket.socket, timeout: int) -> None:
        self.pid = pid
        self.conn = conn
        self.deadline = time.monotonic() + timeout if timeout else None
        self.timeout = timeout
        self.timed_out = False
        self.client_gone = False
        self.pidfd: int | None = None


class Supervisor:
    """Forks a child per request and tells each task how its child ended."""

    def __init__(self, sel: selectors.BaseSelector, on_done) -> None:
        self.sel = sel
        self.on_done = on_done
        self.children: dict[int, Child] = {}

    def spawn(self, conn: socket.socket, req: dict, prepare) -> None:
        if _peer_gone(conn):
            _close_conn(conn)
            self.on_done()
            return
        pid = os.fork()
        if pid == 0:
            child_main(conn, req, prepare)
        child = Child(pid, conn, int(req.get('timeout') or 0))
        self.children[pid] = child
        try:
            child.pidfd = _track(os.pidfd_open(pid))
            self.sel.register(child.pidfd, selectors.EVENT_READ, ('exit', pid))
        except (AttributeError, OSError):
            child.pidfd = None
        self.sel.register(conn, selectors.EVENT_READ, ('client', pid))

    def event(self, what: str, pid: int) -> None:
        child = self.children.get(pid)
        if child is None:
            return
        if what == 'client' and _peer_gone(child.conn):
            # The task went away (killed, its connection dropped): so does its run.
            child.client_gone = True
            self.sel.unregister(child.conn)
            _kill(pid)
        elif what == 'exit':
            self._reap(child, block=True)

    def poll(self) -> None:
        now = time.monotonic()
        for child in list(self.children.values()):
            if child.deadline is not None and now > child.deadline and not child.timed_out:
                child.timed_out = True
                _kill(child.pid)
            if child.pidfd is None:
                self._reap(child, block=False)

    def next_wakeup(self) -> float | None:
        times = [c.deadline for c in self.children.values() if c.deadline is not None and not c.timed_out]
        if any(c.pidfd is None for c in self.children.values()):
            times.append(time.monotonic() + 0.05)
        return min(times) if times else None

    def _reap(self, child: Child, block: bool) -> None:
        try:
            pid, status = os.waitpid(child.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            pid, status = child.pid, 0
        if pid == 0:
            return
        del self.children[child.pid]
        if child.pidfd is not None:
            self.sel.unregister(child.pidfd)
            _close(child.pidfd)
        if not child.client_gone:
            self.sel.unregister(child.conn)
            info = {'pid': child.pid, 'status': os.waitstatus_to_exitcode(status)}
            if child.timed_out:
                info['timeout'] = child.timeout
            try:
                worker.send_frame(child.conn, {'exit': info})
            except OSError:
                pass
        _close_conn(child.conn)
        self.on_done()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _peer_gone(conn: socket.socket) -> bool:
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b''
    except BlockingIOError:
        return False
    except OSError:
        return True


def _close_conn(conn: socket.socket) -> None:
    _OWN_FDS.discard(conn.fileno())
    conn.close()


# -- zygotes ----------------------------------------------------------------------------------
def warm_key(spec: dict, env: dict) -> str | None:
    """The zygote that serves a request, or None when its backend is not
    kept initialised (no backend, a driver not in WARM_DRIVERS, a lock
    server)."""
    backend = (spec or {}).get('backend')
    if not backend or backend['config'].get('volume_driver') not in WARM_DRIVERS:
        return None
    if spec['setup'].get('coordination_url'):
        return None
    return hashlib.sha256(json.dumps([spec, env], sort_keys=True, default=str).encode()).hexdigest()


class Zygote:
    def __init__(self, pid: int, ctl: socket.socket) -> None:
        self.pid = pid
        self.ctl = ctl
        self.ready = False
        self.pending: list[tuple[socket.socket, dict]] = []
        self.active = 0
        self.last_used = time.monotonic()


def zygote_main(ctl: socket.socket, spec: dict, env: dict, req: dict) -> None:
    """A forked zygote: initialise, say so, serve. Never returns."""
    code = 0
    try:
        _after_fork(keep=(ctl.fileno(),))
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _set_process_state(req, env)
        try:
            restart = warm_up(spec)
        except BaseException:  # noqa: BLE001 - the master serves the request without a warm backend
            ctl.send(b'failed')
            os._exit(0)
        ctl.send(b'ready')
        sel = selectors.DefaultSelector()
        if hasattr(sel, 'fileno'):
            _track(sel.fileno())
        orphaned = []

        def done() -> None:
            if not orphaned:
                try:
                    ctl.send(b'done')
                except OSError:
                    pass

        def prepare(request: dict) -> None:
            _set_process_state(request, None)
            restart()

        supervisor = Supervisor(sel, done)
        sel.register(ctl, selectors.EVENT_READ, ('ctl', 0))
        while not orphaned or supervisor.children:
            wakeup = supervisor.next_wakeup()
            for key, _mask in sel.select(None if wakeup is None else max(0.0, wakeup - time.monotonic())):
                what, pid = key.data
                if what != 'ctl':
                    supervisor.event(what, pid)
                    continue
                msg, fds, _flags, _addr = socket.recv_fds(ctl, 64, 2)
                if msg != b'run' or len(fds) != 2:
                    for fd in fds:
                        os.close(fd)
                    sel.unregister(ctl)
                    orphaned.append(True)
                    continue
                conn = socket.socket(fileno=_track(fds[0]))
                request = json.loads(_read_memfd(fds[1]))
                supervisor.spawn(conn, request, prepare)
            supervisor.poll()
    except BaseException:  # noqa: BLE001 - its tasks are told by their children or see the connection drop
        code = 1
    finally:
        os._exit(code)


def _read_memfd(fd: int) -> bytes:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b''.join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


# -- the master ---------------------------------------------------------------------------------
class Master:
    def __init__(self, directory: str) -> None:
        os.chdir(directory)
        os.umask(0o077)
        self.directory = directory
        self.uid = os.getuid()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        _track(self.listener.fileno())
        self.listener.bind('sock')
        self.sock_inode = os.stat('sock').st_ino
        self.listener.listen(128)
        with open('pid', 'w', encoding='ascii') as handle:
            handle.write('%d\n' % os.getpid())
        self.sel = selectors.DefaultSelector()
        if hasattr(self.sel, 'fileno'):
            _track(self.sel.fileno())
        self.idle_timeout = worker.DEFAULT_IDLE_TIMEOUT
        self.last_active = time.monotonic()
        self.served = 0
        self.stopping = False
        self.zygotes: dict[str, Zygote] = {}
        self.exited: list[int] = []
        self.supervisor = Supervisor(self.sel, self._done)
        self.import_env = preload()
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.sel.register(self.listener, selectors.EVENT_READ, ('listen', 0))

    def _on_term(self, _signum, _frame) -> None:
        self.stopping = True

    def _done(self) -> None:
        self.last_active = time.monotonic()

    def active(self) -> int:
        return len(self.supervisor.children) + sum(z.active + len(z.pending) for z in self.zygotes.values())

    def run(self) -> None:
        try:
            while True:
                if self.stopping and self.listener.fileno() >= 0:
                    self._close_listener()
                idle_for = time.monotonic() - self.last_active
                if self.active() == 0 and (self.stopping or idle_for >= self.idle_timeout):
                    break
                timeout = max(0.0, min(1.0, self.idle_timeout - idle_for))
                wakeup = self.supervisor.next_wakeup()
                if wakeup is not None:
                    timeout = min(timeout, max(0.0, wakeup - time.monotonic()))
                for key, _mask in self.sel.select(timeout):
                    what, ident = key.data
                    if what == 'listen':
                        self._accept()
                    elif what == 'zygote':
                        self._zygote_message(ident)
                    else:
                        self.supervisor.event(what, ident)
                self.supervisor.poll()
                self._retire_zygotes()
                self._reap_zygotes()
        finally:
            self._close_listener()
            for zygote in list(self.zygotes.values()):
                self._drop_zygote(zygote)

    def _close_listener(self) -> None:
        if self.listener.fileno() < 0:
            return
        try:
            if os.stat('sock').st_ino == self.sock_inode:
                os.unlink('sock')
        except OSError:
            pass
        self.sel.unregister(self.listener)
        _OWN_FDS.discard(self.listener.fileno())
        self.listener.close()

    # -- requests ---------------------------------------------------------------------
    def _accept(self) -> None:
        try:
            conn, _addr = self.listener.accept()
        except OSError:
            return
        _track(conn.fileno())
        try:
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize('3i'))
            _pid, uid, _gid = struct.unpack('3i', creds)
            if uid != self.uid:
                worker.send_frame(conn, {'refused': 'uid %d is not the uid of this worker (%d)' % (uid, self.uid)})
                _close_conn(conn)
                return
            conn.settimeout(READ_REQUEST_TIMEOUT)
            req = worker.recv_frame(conn)
        except (OSError, EOFError, ValueError):
            _close_conn(conn)
            return
        self.last_active = time.monotonic()
        try:
            if req.get('protocol') != worker.PROTOCOL:
                worker.send_frame(conn, {'refused': 'protocol %r, this worker speaks %r' % (
                    req.get('protocol'), worker.PROTOCOL)})
            elif req.get('kind') == 'status':
                worker.send_frame(conn, {'status': self._status()})
            elif req.get('kind') == 'stop':
                self.stopping = True
                worker.send_frame(conn, {'stopping': {'pid': os.getpid(), 'active': self.active()}})
            elif req.get('kind') == 'run' and not self.stopping:
                worker.send_frame(conn, {'accepted': {'pid': os.getpid()}})
                conn.settimeout(None)
                self.served += 1
                if req.get('idle_timeout'):
                    self.idle_timeout = int(req['idle_timeout'])
                self._dispatch(conn, req)
                return
            else:
                worker.send_frame(conn, {'refused': 'this worker is stopping'})
        except OSError:
            pass
        _close_conn(conn)

    def _status(self) -> dict:
        return {'pid': os.getpid(), 'served': self.served, 'active': self.active(),
                'idle_timeout': self.idle_timeout, 'python': sys.executable,
                'zygotes': sorted(z.pid for z in self.zygotes.values() if z.ready)}

    def _dispatch(self, conn: socket.socket, req: dict) -> None:
        key = warm_key(req.get('warm'), req['env'])
        if key is None:
            self._spawn_direct(conn, req)
            return
        zygote = self.zygotes.get(key) or self._start_zygote(key, req)
        zygote.last_used = time.monotonic()
        if zygote.ready:
            self._send_to_zygote(zygote, conn, req)
        else:
            zygote.pending.append((conn, req))

    def _spawn_direct(self, conn: socket.socket, req: dict) -> None:
        env = dict(req['env'], **self.import_env)
        self.supervisor.spawn(conn, req, lambda request: _set_process_state(request, env))

    def _start_zygote(self, key: str, req: dict) -> Zygote:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        _track(ours.fileno())
        _track(theirs.fileno())
        env = dict(req['env'], **self.import_env)
        pid = os.fork()
        if pid == 0:
            zygote_main(theirs, req['warm'], env, req)
        _close(theirs.detach())
        zygote = Zygote(pid, ours)
        self.zygotes[key] = zygote
        self.sel.register(ours, selectors.EVENT_READ, ('zygote', key))
        return zygote

    def _send_to_zygote(self, zygote: Zygote, conn: socket.socket, req: dict) -> None:
        body = os.memfd_create('request')
        try:
            os.write(body, json.dumps(req).encode('utf-8'))
            socket.send_fds(zygote.ctl, [b'run'], [conn.fileno(), body])
            zygote.active += 1
        except OSError:
            self._spawn_direct(conn, req)
            return
        finally:
            os.close(body)
        _close_conn(conn)

    def _zygote_message(self, key: str) -> None:
        zygote = self.zygotes[key]
        try:
            msg = zygote.ctl.recv(64)
        except OSError:
            msg = b''
        if msg == b'ready':
            zygote.ready = True
            pending, zygote.pending = zygote.pending, []
            for conn, req in pending:
                self._send_to_zygote(zygote, conn, req)
        elif msg == b'done':
            zygote.active = max(0, zygote.active - 1)
            self.last_active = time.monotonic()
        else:
            # Failed to initialise, or gone: its waiting requests start their backend themselves.
            pending, zygote.pending = zygote.pending, []
            self._drop_zygote(zygote)
            for conn, req in pending:
                self._spawn_direct(conn, req)

    def _drop_zygote(self, zygote: Zygote) -> None:
        for key, value in list(self.zygotes.items()):
            if value is zygote:
                del self.zygotes[key]
        try:
            self.sel.unregister(zygote.ctl)
        except (KeyError, ValueError):
            pass
        _OWN_FDS.discard(zygote.ctl.fileno())
        zygote.ctl.close()
        for conn, _req in zygote.pending:
            _close_conn(conn)
        self.exited.append(zygote.pid)

    def _retire_zygotes(self) -> None:
        now = time.monotonic()
        idle = sorted((z for z in self.zygotes.values() if z.ready and not z.active and not z.pending),
                      key=lambda z: z.last_used)
        excess = len(self.zygotes) - MAX_ZYGOTES
        for zygote in idle:
            if now - zygote.last_used >= self.idle_timeout or excess > 0:
                self._drop_zygote(zygote)
                excess -= 1

    def _reap_zygotes(self) -> None:
        for pid in list(self.exited):
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.exited.remove(pid)


def serve(directory: str) -> None:
    """The worker's entry point (``worker._start`` runs it, detached)."""
    Master(directory).run()
