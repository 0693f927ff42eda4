"""Assemble cinderlib 5.2.0's functional suite to run against our library.

    python tests/peer/prepare.py                  prints the assembled directory
    python tests/peer/prepare.py --bundle FILE    also writes FILE (.tar.gz) for the VM

1. The cinderlib 5.2.0 wheel, downloaded once with
   ``pip download cinderlib==5.2.0 --no-deps`` into
   $CINDERLIB_BUILD/peer-suite/wheel/ and checked (version and sha256) on
   every run.
2. $CINDERLIB_BUILD/peer-suite/site/, rebuilt on every run:
     cinderlib/                   our alias package (tests/peer/cinderlib/)
     cinderlib/tests/functional/  the wheel's suite files, as they are
     conftest.py, pytest.ini      our skip hook and pytest settings
     config/                      our suite configs (tests/peer/*.yaml)
   With that directory first on sys.path, ``import cinderlib`` is our library
   and ``cinderlib.tests.functional`` is the wheel's suite. A plain copy (not
   __path__ tricks) so that the same tree can be copied into the VM as is.
   None of cinderlib's library code is extracted.
3. With --bundle, a tarball of site/ and of our library as
   collections/ansible_collections/cinderlib/storage/plugins/module_utils/
   (the working tree's, as the host run uses it): the VM has no copy of the
   collection besides what modules ship, and the suite imports the library.
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
SUITE_DIR = "cinderlib/tests/functional/"
SUITE_FILES = ("__init__.py", "base_tests.py", "test_basic.py", "lvm.yaml", "ceph.yaml")

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
    shutil.copytree(HERE / "cinderlib", site / "cinderlib", ignore=shutil.ignore_patterns("__pycache__"))
    functional = site / SUITE_DIR
    functional.mkdir(parents=True)
    with zipfile.ZipFile(whl) as archive:
        for name in SUITE_FILES:
            (functional / name).write_bytes(archive.read(SUITE_DIR + name))
    shutil.copy2(HERE / "conftest.py", site / "conftest.py")
    shutil.copy2(HERE / "pytest.ini", site / "pytest.ini")
    (site / "config").mkdir()
    for config in sorted(HERE.glob("*.yaml")):
        shutil.copy2(config, site / "config" / config.name)
    return site


def _no_pycache(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if "__pycache__" in Path(info.name).parts else info


def bundle(site: Path, dest: Path) -> None:
    with tarfile.open(dest, "w:gz") as archive:
        archive.add(site, "site", filter=_no_pycache)
        archive.add(REPO / "plugins" / "module_utils",
                    "collections/ansible_collections/cinderlib/storage/plugins/module_utils", filter=_no_pycache)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="also write site/ and our library to this .tar.gz")
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
