"""Fixtures shared by every test suite (tests/unit, tests/functional).

- ``lvm_backend_env`` (session): a real LVM volume group on a loop device, made
  by the ``cinderlib.storage.lvm_loopback`` role through ``ansible-playbook``.
- ``requires_device_mapper``: a marker (``@pytest.mark.requires_device_mapper``)
  and a fixture of the same name; both skip when the kernel has no device-mapper,
  where LVM runs metadata-only (no snapshots, clones or attach).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
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
