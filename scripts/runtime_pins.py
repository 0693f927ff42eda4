"""Keep the runtime role's pins in step with requirements/constraints.txt.

The runtime role ships its own pins (the role is installed without the rest of
this repository):

  roles/runtime/files/requirements.txt  what a managed node needs, by name
                                        (edited by hand; versions rewritten here)
  roles/runtime/files/constraints.txt   the full dependency closure of those,
                                        generated here

Both take their versions from requirements/constraints.txt. The closure is
read from the installed distributions of the project venv (bootstrap.sh
installs it from the same constraints), so no index is asked.

  python scripts/runtime_pins.py           rewrite both files
  python scripts/runtime_pins.py --check   exit 1, with a diff, when they are stale
"""

from __future__ import annotations

import argparse
import difflib
import importlib.metadata
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
CONSTRAINTS = REPO / "requirements" / "constraints.txt"
RUNTIME = REPO / "requirements" / "runtime.txt"
ROLE_FILES = REPO / "roles" / "runtime" / "files"
ROLE_REQUIREMENTS = ROLE_FILES / "requirements.txt"
ROLE_CONSTRAINTS = ROLE_FILES / "constraints.txt"

# Installed in every venv by `python -m venv`; pip freeze leaves them out.
VENV_TOOLS = {"pip", "setuptools", "wheel"}

REQUIREMENTS_HEADER = """\
# Python packages a managed node needs to run cinderlib.storage's modules.
# Names are chosen by hand; versions come from requirements/constraints.txt
# (rewrite them with: python scripts/runtime_pins.py).
#   pip install -r requirements.txt -c constraints.txt
"""

CONSTRAINTS_HEADER = """\
# The full dependency closure of requirements.txt (Python 3.11, Linux), with the
# versions of requirements/constraints.txt. Generated, do not edit:
#   python scripts/runtime_pins.py
"""


class PinError(Exception):
    """The pins cannot be made; the message says what to fix."""


def read_pins(path: Path) -> dict[str, tuple[str, str]]:
    """Map canonical name -> (name as written, version) for `name==version` lines."""
    pins: dict[str, tuple[str, str]] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;]+)", line)
        if not match:
            raise PinError(f"{path.relative_to(REPO)}:{number}: expected name==version, got {line!r}")
        pins[canonicalize_name(match.group(1))] = (match.group(1), match.group(2))
    return pins


def read_names(path: Path) -> list[str]:
    """Project names of a requirements file (versions ignored)."""
    names = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.append(Requirement(line).name)
    return names


def closure(names: list[str]) -> set[str]:
    """Canonical names of `names` and everything they need, from installed metadata."""
    seen: set[str] = set()
    todo: list[tuple[str, frozenset[str]]] = [(name, frozenset()) for name in names]
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        key = (canonicalize_name(name), extras)
        if key in done:
            continue
        done.add(key)
        seen.add(key[0])
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise PinError(
                f"{name} is not installed in {sys.prefix}; run scripts/bootstrap.sh and use its venv"
            ) from exc
        for spec in dist.requires or []:
            req = Requirement(spec)
            wanted = [""] + sorted(extras)
            if req.marker is None or any(req.marker.evaluate({"extra": extra}) for extra in wanted):
                todo.append((req.name, frozenset(req.extras)))
    return seen


def render(header: str, names: list[str], pins: dict[str, tuple[str, str]]) -> str:
    lines = []
    for canonical in sorted(names, key=lambda item: pins[item][0].lower()):
        written, version = pins[canonical]
        lines.append(f"{written}=={version}")
    return header + "\n".join(lines) + "\n"


def expected_files() -> dict[Path, str]:
    pins = read_pins(CONSTRAINTS)
    wanted = read_names(ROLE_REQUIREMENTS)
    for name in read_names(RUNTIME):
        if canonicalize_name(name) not in {canonicalize_name(item) for item in wanted}:
            raise PinError(
                f"{name} is in requirements/runtime.txt but not in {ROLE_REQUIREMENTS.relative_to(REPO)}; add it there"
            )
    top = [canonicalize_name(name) for name in wanted]
    missing = [name for name in top if name not in pins]
    if missing:
        raise PinError(f"not pinned in requirements/constraints.txt: {', '.join(missing)}")
    needed = closure(wanted) - VENV_TOOLS
    unpinned = sorted(needed - pins.keys())
    if unpinned:
        raise PinError(
            "needed by the runtime but not pinned in requirements/constraints.txt: "
            + ", ".join(unpinned) + "; regenerate requirements/constraints.txt first"
        )
    return {
        ROLE_REQUIREMENTS: render(REQUIREMENTS_HEADER, top, pins),
        ROLE_CONSTRAINTS: render(CONSTRAINTS_HEADER, sorted(needed), pins),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    try:
        files = expected_files()
    except PinError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    stale = 0
    for path, text in files.items():
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current == text:
            continue
        stale += 1
        rel = str(path.relative_to(REPO))
        if args.check:
            sys.stdout.writelines(
                difflib.unified_diff(current.splitlines(True), text.splitlines(True), rel, f"{rel} (expected)")
            )
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {rel}")
    if args.check and stale:
        print("The runtime role's pins are stale: run python scripts/runtime_pins.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
