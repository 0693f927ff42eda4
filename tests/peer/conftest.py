"""The drop-in check and the skips for cinderlib 5.2.0's functional suite, kept
in our tree (the suite's files are used as the wheel has them).

Copied by tests/peer/prepare.py to the root of the assembled suite.

``import cinderlib`` must be the installed drop-in wheel
(scripts/build_cinderlib_wheel.py), never a copy of the collection's library:
this checks that, then adds the assembled suite's cinderlib/ (tests/ and cmd/,
no __init__.py) to the installed package's ``__path__``, so that
``cinderlib.tests.functional`` and ``cinderlib.cmd`` are the suite's while
everything else is the wheel's. With ``consider_namespace_packages`` (pytest.ini)
pytest imports test_basic.py as ``cinderlib.tests.functional.test_basic``, as
cinderlib's own runs did. Done here, at import, because pytest loads this file
before it collects the suite.

Tests
that need what this kernel lacks are marked skipped, each with the reason,
decided by probing the kernel: device-mapper (LVM snapshots; and LVM must not
run metadata-only), LIO (Cinder's lioadm target) and the iSCSI initiator
(attaching). The molecule vm scenario has them all and runs the 17 tests.
With an RBD config (tests/peer/run.sh with CINDERLIB_PEER_BACKEND=ceph), the
attaching tests need krbd instead.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cinderlib
import pytest

SUITE_PART = Path(__file__).resolve().parent / "cinderlib"
INSTALL_HINT = ("install the drop-in: scripts/test.sh's build+install stage, or "
                "scripts/build_cinderlib_wheel.py + pip install --no-deps --force-reinstall WHEEL")


def _check_dropin() -> None:
    """``cinderlib`` is the installed drop-in wheel's package (version 6.x), not the collection's library."""
    try:
        dist = importlib.metadata.distribution("cinderlib")
    except importlib.metadata.PackageNotFoundError:
        raise pytest.UsageError(f"no cinderlib distribution in {sys.prefix}: {INSTALL_HINT}") from None
    installed = Path(dist.locate_file("cinderlib/__init__.py")).resolve()
    imported = Path(cinderlib.__file__ or "").resolve()
    if imported != installed or not dist.version.startswith("6."):
        raise pytest.UsageError(f"import cinderlib gave {imported}, not the installed drop-in wheel's "
                                f"{installed} (cinderlib {dist.version}): {INSTALL_HINT}")


_check_dropin()
if str(SUITE_PART) not in cinderlib.__path__:
    cinderlib.__path__.append(str(SUITE_PART))

SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
WHERE = "runs in the vm scenario (extensions/molecule/vm/peer_suite.yml)"
WHERE_RBD = "attaching RBD volumes is not run anywhere yet"

# Test methods of test_basic.py (without ddt's or test_all_backends' suffixes)
# by what they need besides creating and deleting LVs.
NEEDS_DEVICE_MAPPER = {
    "test_create_snapshot",
    "test_create_delete_snapshot",
}
NEEDS_ATTACH = {  # device-mapper to activate the LV, LIO to export it, iSCSI to attach it
    "test_create_volume",
    "test_attach_volume",
    "test_attach_detach_volume",
    "test_attach_detach_volume_via_attachment",
    "test_disk_io",
    "test_extend",
    "test_extend_attached",
    "test_clone",
    "test_create_volume_from_snapshot",
}


def _module_available(name: str) -> bool:
    """Whether a kernel module is loaded, built in, or loadable."""
    if Path("/sys/module", name).exists():
        return True
    modprobe = shutil.which("modprobe", path=SBIN_PATH)
    if modprobe is None:
        return False
    try:
        return subprocess.run([modprobe, "--dry-run", "--quiet", name], capture_output=True, timeout=30,
                              check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def device_mapper_problem() -> str | None:
    """Why LVs can't be activated here, or None."""
    try:
        has_dm = "device-mapper" in Path("/proc/misc").read_text(encoding="utf-8").split()
    except OSError:
        # libdevmapper makes this node even without the driver: only a fallback.
        has_dm = Path("/dev/mapper/control").exists()
    if not has_dm:
        return "the kernel has no device-mapper"
    # The lvm_loopback role selects a metadata-only lvm.conf with LVM_SYSTEM_DIR.
    lvm_conf = Path(os.environ.get("LVM_SYSTEM_DIR", "/etc/lvm"), "lvm.conf")
    try:
        text = "\n".join(line.split("#", 1)[0] for line in lvm_conf.read_text(encoding="utf-8").splitlines())
    except OSError:
        return None
    if re.search(r"\bactivation\s*=\s*0\b", text):
        return f"LVM runs metadata-only (activation = 0 in {lvm_conf})"
    return None


def attach_problems() -> list[str]:
    """Why a volume can't be exported with LIO and attached over iSCSI here."""
    problems = []
    if not (Path("/sys/kernel/config/target").is_dir() or _module_available("target_core_mod")):
        problems.append("no LIO (target_core_mod) in this kernel")
    if not _module_available("iscsi_tcp"):
        problems.append("no iSCSI initiator (iscsi_tcp) in this kernel")
    elif shutil.which("iscsiadm", path=SBIN_PATH) is None:
        problems.append("no iscsiadm (open-iscsi)")
    return problems


def rbd_attach_problems() -> list[str]:
    """Why an RBD volume can't be attached here (os-brick maps it with krbd)."""
    problems = []
    if not _module_available("rbd"):
        problems.append("no RBD kernel module (krbd) in this kernel")
    if shutil.which("rbd", path=SBIN_PATH) is None:
        problems.append("no rbd command (ceph-common)")
    return problems


def _config_backends() -> list[dict]:
    """The backends of the suite's config (CL_FTEST_CFG)."""
    base_tests = sys.modules.get("cinderlib.tests.functional.base_tests")
    if base_tests is None:
        return []
    return base_tests.BaseFunctTestCase.ensure_config_loaded()["backends"]


def _fake_target_backends() -> list[str]:
    """Backends of the suite's config whose exports can't be attached (target_helper fake)."""
    return [b["volume_backend_name"] for b in _config_backends() if b.get("target_helper") == "fake"]


def _method(item: pytest.Item, names: set[str]) -> bool:
    # test_all_backends names the copies <method>_on_<backend>.
    return any(item.name == name or item.name.startswith(name + "_on_") for name in names)


def pytest_report_header(config: pytest.Config) -> str:
    return f"cinderlib {cinderlib.__version__} (the drop-in wheel) from {Path(cinderlib.__file__).parent}"


def pytest_sessionfinish(session: pytest.Session) -> None:
    leaked = sorted(name for name in sys.modules if name.startswith("ansible_collections"))
    if leaked:
        print(f"\nFAIL: the suite imported the collection ({', '.join(leaked[:5])}): it must run on the drop-in only",
              file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    drivers = {b.get("volume_driver", "") for b in _config_backends()}
    if drivers and all(d.endswith(".RBDDriver") for d in drivers):
        # Ceph snapshots need no device-mapper; attaching needs krbd.
        dm, attach, where = None, rbd_attach_problems(), WHERE_RBD
    else:
        dm, where = device_mapper_problem(), WHERE
        attach = ([dm] if dm else []) + attach_problems()
        if not attach:
            fake = _fake_target_backends()
            if fake:
                attach = [f"backend(s) {', '.join(fake)} export with target_helper fake"]
    for item in items:
        if dm and _method(item, NEEDS_DEVICE_MAPPER):
            item.add_marker(pytest.mark.skip(reason=f"{dm}: {where}"))
        elif attach and _method(item, NEEDS_ATTACH):
            item.add_marker(pytest.mark.skip(reason=f"{'; '.join(attach)}: {where}"))
