"""Assemble cinderlib 5.2.0's functional suite to run against our library.

    python tests/peer/prepare.py                  prints the assembled directory
    python tests/peer/prepare.py --bundle FILE    also writes FILE (.tar.gz) for the VM

The suite imports ``cinderlib``: that is the drop-in wheel
(scripts/build_cinderlib_wheel.py), installed into the venv that runs the
suite (scripts/test.sh's build+install stage on the host; the vm scenario's
peer_suite.yml in the VM). None of the library's code is here.

1. The cinderlib 5.2.0 wheel, downloaded once with
   ``pip download cinderlib==5.2.0 --no-deps`` into
   $CINDERLIB_BUILD/peer-suite/wheel/ and checked (version and sha256) on
   every run.
2. $CINDERLIB_BUILD/peer-suite/site/, rebuilt on every run:
     cinderlib/                   no __init__.py: not a package, the suite's
                                  part of cinderlib's tree, which conftest.py
                                  adds to the installed cinderlib's __path__
     cinderlib/tests/             the wheel's suite files, as they are
     cinderlib/cmd/               cinder_to_yaml (tests/peer/cinder_to_yaml.py),
                                  which the suite imports and the drop-in leaves out
     conftest.py, pytest.ini      our skip hook, the drop-in's check, pytest settings
     config/                      our suite configs (tests/peer/*.yaml)
   cinderlib/ must have no __init__.py: pytest would then import it as
   ``cinderlib`` and shadow the installed wheel. A plain copy, so that the
   same tree can be copied into the VM as is. None of cinderlib 5.2.0's
   library code is extracted.
3. With --bundle, a tarball of site/ and of the drop-in wheel built from the
   working tree (dist/cinderlib-*.whl), as the host run uses it: the VM
   installs the wheel into its venv before the suite and removes it after.
"""

from __future__ import annotations

import argparse
import email.parser
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

VERSION = "5.2.0"
WHEEL = f"cinderlib-{VERSION}-py3-none-any.whl"
# The sha256 PyPI lists for that file.
WHEEL_SHA256 = "dd212563dcb238ead35d37ce4b3dd2ef40a8629ef91a6be969ebcd8f5079094f"
SUITE_FILES = ("cinderlib/tests/__init__.py",
               *(f"cinderlib/tests/functional/{name}"
                 for name in ("__init__.py", "base_tests.py", "test_basic.py", "lvm.yaml", "ceph.yaml")))

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


class PrepareError(Exception):
    pass


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_wheel(path: Path) -> None:
    digest = _sha256(path)
    if digest != WHEEL_SHA256:
        raise PrepareError(f"{path}: sha256 {digest}, expected {WHEEL_SHA256} (cinderlib {VERSION} on PyPI)")
    with zipfile.ZipFile(path) as wheel:
        metadata = email.parser.Parser().parsestr(
            wheel.read(f"cinderlib-{VERSION}.dist-info/METADATA").decode("utf-8"), headersonly=True)
    if (metadata["Name"], metadata["Version"]) != ("cinderlib", VERSION):
        raise PrepareError(f"{path} is {metadata['Name']} {metadata['Version']}, not cinderlib {VERSION}")


def wheel(build: Path) -> Path:
    """The checked wheel, downloaded unless the cache has it."""
    cache = build / "peer-suite" / "wheel"
    path = cache / WHEEL
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", f"cinderlib=={VERSION}", "--no-deps", "-d", tmp,
                 "--disable-pip-version-check", "--quiet"],
                capture_output=True, text=True, check=False)
            got = Path(tmp, WHEEL)
            if proc.returncode != 0 or not got.exists():
                raise PrepareError(f"pip download cinderlib=={VERSION} failed (rc={proc.returncode}):\n"
                                   + (proc.stdout + proc.stderr)[-3000:])
            _check_wheel(got)
            got.replace(path)
        print(f"downloaded {WHEEL} into {cache}", file=sys.stderr)
    _check_wheel(path)
    return path


def assemble(build: Path) -> Path:
    whl = wheel(build)
    site = build / "peer-suite" / "site"
    shutil.rmtree(site, ignore_errors=True)
    with zipfile.ZipFile(whl) as archive:
        for name in SUITE_FILES:
            (site / name).parent.mkdir(parents=True, exist_ok=True)
            (site / name).write_bytes(archive.read(name))
    cmd = site / "cinderlib" / "cmd"
    cmd.mkdir()
    (cmd / "__init__.py").write_bytes(b"")
    shutil.copy2(HERE / "cinder_to_yaml.py", cmd / "cinder_to_yaml.py")
    shutil.copy2(HERE / "conftest.py", site / "conftest.py")
    shutil.copy2(HERE / "pytest.ini", site / "pytest.ini")
    (site / "config").mkdir()
    for config in sorted(HERE.glob("*.yaml")):
        shutil.copy2(config, site / "config" / config.name)
    return site


def _no_pycache(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if "__pycache__" in Path(info.name).parts else info


BUILD_SCRIPT = REPO / "scripts" / "build_cinderlib_wheel.py"


def bundle(site: Path, dest: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # The script prints the wheel's path, or says why it could not build one.
        proc = subprocess.run([sys.executable, str(BUILD_SCRIPT), tmp], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise PrepareError(f"building the drop-in cinderlib wheel: {(proc.stderr or proc.stdout).strip()}")
        dropin = Path(proc.stdout.strip().splitlines()[-1])
        with tarfile.open(dest, "w:gz") as archive:
            archive.add(site, "site", filter=_no_pycache)
            archive.add(dropin, f"dist/{dropin.name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="also write site/ and the drop-in wheel to this .tar.gz")
    args = parser.parse_args()
    build = Path(os.environ.get("CINDERLIB_BUILD") or REPO / ".build")
    try:
        site = assemble(build)
        if args.bundle:
            bundle(site, args.bundle)
        print(site)
    except PrepareError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
