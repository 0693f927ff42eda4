"""Fixtures shared by every test suite (tests/unit, tests/functional).

- ``lvm_backend_env`` (session): a real LVM volume group on a loop device, made
  by the ``cinderlib.storage.lvm_loopback`` role through ``ansible-playbook``.
- ``requires_device_mapper``: a marker (``@pytest.mark.requires_device_mapper``)
  and a fixture of the same name; both skip when the kernel has no device-mapper,
  where LVM runs metadata-only (no snapshots, clones or attach).
- ``redis_url`` (session): a private Redis server (Debian's redis-server) on 127.0.0.1 for
  the coordination_url tests, stopped at the end of the session.
- ``postgresql_url`` (session): a private PostgreSQL server (Debian's package) on
  127.0.0.1, started and removed by the fixture; ``postgresql_store_url`` gives each
  test an empty database of its own on it.
- ``breakable_postgresql_server`` (module): another such server, for tests that stop
  and restart it; ``breakable_postgresql_store_url``: an empty database on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
BUILD_COLLECTIONS = Path(os.environ.get("CINDERLIB_BUILD", REPO / ".build")) / "collections"
LVM_VG_PLAYBOOK = REPO / "tests" / "playbooks" / "lvm_vg.yml"

TEST_VG = "cinderlib-test-vg"
TEST_VG_FILE = "/var/tmp/cinderlib-test/cinderlib-test-vg.img"
TEST_VG_SIZE = "4G"
# Held for the whole session: two sessions on one machine would share the VG.
TEST_VG_LOCK = "/var/tmp/cinderlib-test.lock"
TEST_VG_LOCK_TIMEOUT = 1800

NO_DEVICE_MAPPER = "kernel has no device-mapper: runs in the VM scenario"
SBIN_PATH = os.pathsep.join(["/usr/local/sbin", "/usr/sbin", "/sbin"])

# Without scripts/env.sh, make ansible_collections.cinderlib.storage importable
# through the symlink that scripts/bootstrap.sh made.
if (BUILD_COLLECTIONS / "ansible_collections" / "cinderlib" / "storage").is_dir():
    if str(BUILD_COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(BUILD_COLLECTIONS))

# Under ansible-test (units) this tree is .../ansible_collections/cinderlib/storage and
# the collection is importable only inside the pytest process (ansible-test's loader):
# the Pythons that tests start (fresh-process checks, crash hooks) find it through
# PYTHONPATH, as they do through scripts/env.sh's.
if REPO.parent.parent.name == "ansible_collections":
    _COLLECTIONS_ROOT = str(REPO.parent.parent.parent)
    _PYTHONPATH = os.environ.get("PYTHONPATH", "")
    if _COLLECTIONS_ROOT not in _PYTHONPATH.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_COLLECTIONS_ROOT, _PYTHONPATH) if p)


def has_device_mapper() -> bool:
    """Whether the kernel has device-mapper.

    /proc/misc is the kernel's own list. /dev/mapper/control is only the fallback
    when /proc/misc can't be read: libdevmapper creates that node even when the
    kernel lacks the driver.
    """
    try:
        misc = Path("/proc/misc").read_text(encoding="utf-8")
    except OSError:
        return Path("/dev/mapper/control").exists()
    return "device-mapper" in misc.split()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"requires_device_mapper: skip the test when the kernel has no device-mapper ({NO_DEVICE_MAPPER})"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("requires_device_mapper") and not has_device_mapper():
        pytest.skip(NO_DEVICE_MAPPER)


@pytest.fixture
def requires_device_mapper() -> None:
    """Skip the requesting test when the kernel has no device-mapper."""
    if not has_device_mapper():
        pytest.skip(NO_DEVICE_MAPPER)


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), SBIN_PATH]))


def _ansible_playbook() -> str | None:
    beside_python = Path(sys.executable).parent / "ansible-playbook"
    return str(beside_python) if beside_python.exists() else shutil.which("ansible-playbook")


def _collections_path(tmp_root: Path) -> str:
    """A collections path on which cinderlib.storage resolves to this repo."""
    for entry in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep):
        if entry and (Path(entry) / "ansible_collections" / "cinderlib" / "storage" / "galaxy.yml").exists():
            return os.environ["ANSIBLE_COLLECTIONS_PATH"]
    if (BUILD_COLLECTIONS / "ansible_collections" / "cinderlib" / "storage" / "galaxy.yml").exists():
        return str(BUILD_COLLECTIONS)
    link = tmp_root / "ansible_collections" / "cinderlib" / "storage"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(REPO, target_is_directory=True)
    return str(tmp_root)


def _lock_test_vg() -> int:
    """Take the machine-wide lock of the test VG, waiting for another session to finish."""
    fd = os.open(TEST_VG_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + TEST_VG_LOCK_TIMEOUT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                pytest.fail(f"another test session held {TEST_VG_LOCK} for {TEST_VG_LOCK_TIMEOUT}s", pytrace=False)
            time.sleep(2)


def _run_lvm_vg(playbook_cmd: list[str], env: dict[str, str], state: str, result_file: Path | None) -> None:
    extra: dict[str, Any] = {
        "lvm_vg_state": state,
        "lvm_loopback_vg": TEST_VG,
        "lvm_loopback_file": TEST_VG_FILE,
        "lvm_loopback_size": TEST_VG_SIZE,
        "lvm_vg_result_file": str(result_file) if result_file else "",
    }
    cmd = [*playbook_cmd, "-e", json.dumps(extra)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        output = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
        pytest.fail(
            f"{LVM_VG_PLAYBOOK.relative_to(REPO)} (lvm_vg_state={state}) failed with rc={proc.returncode}:\n{output}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def lvm_backend_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A volume group ``cinderlib-test-vg`` on a loop device, removed at the end of the session.

    Yields ``{"vg", "file", "device", "metadata_only", "environment"}``. When LVM runs
    metadata-only, ``LVM_SYSTEM_DIR`` is set in ``os.environ`` for the session so
    that the driver's LVM commands use the metadata-only lvm.conf.
    """
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a loop device and an LVM volume group (run under sudo)")
    missing = [tool for tool in ("lvm", "losetup", "truncate") if _which(tool) is None]
    if missing:
        pytest.skip(f"LVM tools missing ({', '.join(missing)}): install lvm2 (scripts/bootstrap.sh does)")
    if not Path("/dev/loop-control").exists():
        pytest.skip("no /dev/loop-control: this machine cannot create loop devices")
    ansible_playbook = _ansible_playbook()
    if ansible_playbook is None:
        pytest.skip("ansible-playbook not found: run under the venv of scripts/bootstrap.sh")

    tmp_root = tmp_path_factory.mktemp("lvm_backend_env")
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = _collections_path(tmp_root / "collections")
    env["PATH"] = os.pathsep.join([env.get("PATH", ""), SBIN_PATH])
    env.setdefault("ANSIBLE_NOCOLOR", "1")
    playbook_cmd = [ansible_playbook, "-i", "localhost,", str(LVM_VG_PLAYBOOK)]

    result_file = tmp_root / "lvm_vg.json"
    lock_fd = _lock_test_vg()
    saved = os.environ.get("LVM_SYSTEM_DIR")
    try:
        _run_lvm_vg(playbook_cmd, env, "fresh", result_file)
        info = json.loads(result_file.read_text(encoding="utf-8"))
        os.environ.update(info["environment"])
        yield info
    finally:
        if saved is None:
            os.environ.pop("LVM_SYSTEM_DIR", None)
        else:
            os.environ["LVM_SYSTEM_DIR"] = saved
        try:
            _run_lvm_vg(playbook_cmd, env, "absent", None)
        finally:
            os.close(lock_fd)


# --- PostgreSQL -------------------------------------------------------------------
# A private server for the session (never the system's cluster): initdb + pg_ctl of
# Debian's postgresql package, run as the postgres system user in a directory of its
# own under /var/tmp, listening on 127.0.0.1 only. The cinderlib role logs in with a
# password over TCP (what users do); the tests administer the server as its
# superuser over the Unix socket in that directory (peer authentication, root
# mapped to postgres).

POSTGRESQL_LIB = Path("/usr/lib/postgresql")
POSTGRESQL_OS_USER = "postgres"
POSTGRESQL_ROLE = "cinderlib"
POSTGRESQL_START_TIMEOUT = 60
POSTGRESQL_MISSING = (
    "PostgreSQL server binaries missing (/usr/lib/postgresql/*/bin/initdb and pg_ctl): "
    "install Debian's postgresql package (scripts/bootstrap.sh does)"
)


def _postgresql_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has initdb and pg_ctl."""

    def version(bindir: Path) -> tuple[int, ...]:
        try:
            return tuple(int(part) for part in bindir.parent.name.split("."))
        except ValueError:
            return (0,)

    found = [b for b in POSTGRESQL_LIB.glob("*/bin") if (b / "initdb").is_file() and (b / "pg_ctl").is_file()]
    return max(found, key=version) if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgreSQLServer:
    """A PostgreSQL server in ``base`` (mode 0700, owned by the postgres user)."""

    def __init__(self, bindir: Path, base: Path, os_user: pwd.struct_passwd) -> None:
        self.bindir = bindir
        self.base = base
        self.data = base / "data"
        self.log = base / "server.log"
        self.os_user = os_user
        self.port = 0
        self.password = secrets.token_urlsafe(24)
        self.start_seconds = 0.0
        self.running = False
        self._databases = 0

    def _run(self, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
        """Run a server program as the postgres user; fail the test with its output."""
        cmd = [str(self.bindir / args[0]), *args[1:]]
        proc = subprocess.run(
            cmd,
            user=self.os_user.pw_uid,
            group=self.os_user.pw_gid,
            extra_groups=[],
            cwd=self.base,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C", "HOME": str(self.base)},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            log = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
            output = "\n".join((proc.stdout + proc.stderr + log).splitlines()[-40:])
            pytest.fail(f"{' '.join(cmd)} failed with rc={proc.returncode}:\n{output}", pytrace=False)
        return proc

    def start(self) -> None:
        started = time.monotonic()
        self._run("initdb", "-D", str(self.data), "-U", POSTGRESQL_OS_USER, "--no-locale", "--encoding=UTF8",
                  "--auth-local=peer", "--auth-host=scram-sha-256", "--no-sync")
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                "\n# cinderlib.storage tests\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.base}'\n"
                "password_encryption = 'scram-sha-256'\n"
                # A throw-away server: durability is not needed, speed is.
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )
        (self.data / "pg_hba.conf").write_text(
            "# TYPE  DATABASE  USER      ADDRESS        METHOD\n"
            "local   all       postgres                 peer map=admin\n"
            "host    all       all       127.0.0.1/32   scram-sha-256\n",
            encoding="utf-8",
        )
        (self.data / "pg_ident.conf").write_text(
            f"admin  root  {POSTGRESQL_OS_USER}\nadmin  {POSTGRESQL_OS_USER}  {POSTGRESQL_OS_USER}\n",
            encoding="utf-8",
        )
        # Another process may take the free port before the server does: try again.
        for attempt in range(3):
            self.port = _free_port()
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", f"-p {self.port}",
                          "-w", "-t", str(POSTGRESQL_START_TIMEOUT), "start",
                          timeout=POSTGRESQL_START_TIMEOUT + 30)
                break
            except pytest.fail.Exception:
                if attempt == 2 or "Address already in use" not in self.log.read_text(errors="replace"):
                    raise
        self.running = True
        with self.admin() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE ROLE {POSTGRESQL_ROLE} LOGIN PASSWORD %s", (self.password,))
        self.create_database(POSTGRESQL_ROLE)
        self.start_seconds = time.monotonic() - started

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (sessions are ended, as by a service
        stop) or ``immediate`` (as a crash); immediate when fast fails."""
        if not self.running:
            return
        proc = subprocess.run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"],
            user=self.os_user.pw_uid, group=self.os_user.pw_gid, extra_groups=[], cwd=self.base,
            capture_output=True, text=True, timeout=120, check=False,
        )
        if proc.returncode != 0:
            subprocess.run(
                [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                user=self.os_user.pw_uid, group=self.os_user.pw_gid, extra_groups=[], cwd=self.base,
                capture_output=True, text=True, timeout=120, check=False,
            )
        self.running = False

    def resume(self) -> None:
        """Start the stopped server again, on the same port with the same data
        (databases, role and password): a restarted server, as clients see it."""
        if self.running:
            return
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", f"-p {self.port}",
                  "-w", "-t", str(POSTGRESQL_START_TIMEOUT), "start", timeout=POSTGRESQL_START_TIMEOUT + 30)
        self.running = True

    def admin(self):
        """A superuser connection (autocommit) over the server's Unix socket."""
        import psycopg2

        conn = psycopg2.connect(host=str(self.base), port=self.port, user=POSTGRESQL_OS_USER, dbname="postgres")
        conn.autocommit = True
        return contextlib.closing(conn)

    def url(self, database: str = POSTGRESQL_ROLE) -> str:
        return f"postgresql+psycopg2://{POSTGRESQL_ROLE}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with self.admin() as conn, conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}" OWNER {POSTGRESQL_ROLE}')
        return name

    def new_database(self) -> str:
        self._databases += 1
        return self.create_database(f"{POSTGRESQL_ROLE}_test_{self._databases}")

    def drop_database(self, name: str) -> None:
        with self.admin() as conn, conn.cursor() as cur:
            # FORCE: connections a test left open (pools) would block the drop.
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def _private_postgresql_server() -> Iterator[PostgreSQLServer]:
    """A started PostgreSQL server in a new directory, stopped and removed on exit
    (skips where this machine can't run one)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: runs a private PostgreSQL server as the postgres system user (run under sudo)")
    bindir = _postgresql_bindir()
    if bindir is None:
        pytest.skip(POSTGRESQL_MISSING)
    try:
        os_user = pwd.getpwnam(POSTGRESQL_OS_USER)
    except KeyError:
        pytest.skip(f"no '{POSTGRESQL_OS_USER}' system user: install Debian's postgresql package")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("psycopg2 missing: install requirements/test.txt (scripts/bootstrap.sh does)")
    base = Path(tempfile.mkdtemp(prefix="cinderlib-postgresql.", dir="/var/tmp"))
    os.chmod(base, 0o700)
    os.chown(base, os_user.pw_uid, os_user.pw_gid)
    server = PostgreSQLServer(bindir, base, os_user)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgreSQLServer]:
    """A private PostgreSQL server for the session (see ``postgresql_url``)."""
    with _private_postgresql_server() as server:
        yield server


@pytest.fixture(scope="module")
def breakable_postgresql_server() -> Iterator[PostgreSQLServer]:
    """A private PostgreSQL server of one test module, which its tests may stop
    (``stop()``) and start again (``resume()``) without touching the session's."""
    with _private_postgresql_server() as server:
        yield server


@pytest.fixture
def breakable_postgresql_store_url(breakable_postgresql_server: PostgreSQLServer) -> Iterator[str]:
    """The URL of a new, empty database on ``breakable_postgresql_server``; the
    server is started again after the test if the test left it stopped."""
    server = breakable_postgresql_server
    server.resume()
    name = server.new_database()
    try:
        yield server.url(name)
    finally:
        server.resume()
        server.drop_database(name)


@pytest.fixture(scope="session")
def postgresql_url(postgresql_server: PostgreSQLServer) -> str:
    """``postgresql+psycopg2://cinderlib:<password>@127.0.0.1:<port>/cinderlib``: a database of
    a private PostgreSQL server, shared by the whole session (see ``postgresql_store_url``)."""
    return postgresql_server.url()


@pytest.fixture
def postgresql_store_url(postgresql_server: PostgreSQLServer) -> Iterator[str]:
    """The URL of a new, empty database on the session's server, dropped after the test."""
    name = postgresql_server.new_database()
    try:
        yield postgresql_server.url(name)
    finally:
        postgresql_server.drop_database(name)


# --- Redis --------------------------------------------------------------------------
# A private redis-server (Debian's redis-server package; its system service is never
# used) for the coordination_url tests: 127.0.0.1 only, a free port, no persistence,
# run as the redis system user when there is one, stopped after the session.

REDIS_MISSING = "redis-server not found: install Debian's redis-server package (scripts/bootstrap.sh does)"
REDIS_START_TIMEOUT = 30


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A private redis-server on 127.0.0.1 (as the redis user when root), in
    its own directory; ``stop()`` and ``start()`` again keep its port."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.base = Path(tempfile.mkdtemp(prefix="cinderlib-redis.", dir="/var/tmp"))
        self.user = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("redis")
                os.chown(self.base, self.user.pw_uid, self.user.pw_gid)
            except KeyError:
                self.user = None
        os.chmod(self.base, 0o700)
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def _spawn(self, port: int) -> bool:
        with (self.base / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [self.server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                 "--dir", str(self.base), "--daemonize", "no", "--protected-mode", "yes"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.base,
                user=self.user.pw_uid if self.user else None, group=self.user.pw_gid if self.user else None,
                extra_groups=[] if self.user else None,
            )
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        while self.proc.poll() is None and not _redis_ping(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.proc.poll() is None and _redis_ping(port):
            self.port = port
            return True
        self.stop()
        return False

    def start(self) -> None:
        """Start on a free port, or on the same port after ``stop()``."""
        ports = [self.port] if self.port else [_free_port() for _attempt in range(3)]
        if not any(self._spawn(port) for port in ports):
            output = (self.base / "server.log").read_text(errors="replace")[-3000:]
            pytest.fail(f"redis-server did not start on 127.0.0.1:\n{output}", pytrace=False)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def _redis_server_or_skip() -> str:
    server = _which("redis-server")
    if server is None:
        pytest.skip(REDIS_MISSING)
    try:
        import redis  # noqa: F401 - tooz's redis driver needs it
    except ImportError:
        pytest.skip("the redis Python package is missing: install requirements/test.txt (scripts/bootstrap.sh does)")
    return server


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``redis://127.0.0.1:<port>``: a private Redis server for the session."""
    server = RedisServer(_redis_server_or_skip())
    try:
        server.start()
        yield server.url
    finally:
        server.remove()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private Redis server of the test's own, which it may stop and start."""
    server = RedisServer(_redis_server_or_skip())
    try:
        server.start()
        yield server
    finally:
        server.remove()
