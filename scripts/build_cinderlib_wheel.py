"""Build the drop-in ``cinderlib`` wheel from the collection's library.

    python scripts/build_cinderlib_wheel.py [OUTPUT_DIR]   writes the wheel, prints its path
    python scripts/build_cinderlib_wheel.py --check-installed
                                   exit 0 when this Python's installed cinderlib is this tree's

The wheel installs a top-level ``cinderlib`` package made from
plugins/module_utils/cinderlib (as Pillow is for PIL): a program written for
cinderlib 5.2 (``import cinderlib``) runs unchanged beside Cinder and os-brick.
There is no second copy of the code in the repository: every .py file of the
library goes into the wheel as ``cinderlib/...`` with its imports rewritten
(``ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.X`` ->
``cinderlib.X``, ``from ansible_collections.cinderlib.storage.plugins.module_utils
import cinderlib`` -> ``import cinderlib``). The build fails when any
``ansible_collections`` text is left, or a rewritten file does not compile.

Version: ``6.`` + the collection's version in galaxy.yml (collection 0.1.0 ->
wheel 6.0.1.0). The 6 says "after cinderlib 5" (pip then prefers it to PyPI's
5.x, which no longer runs on current Cinder); the rest names the collection
release the wheel was built from. It is also the wheel's
``cinderlib.__version__`` (that one assignment is rewritten).

Requires-Dist: Cinder and os-brick, at least the versions tested
(requirements/runtime.txt). What else the library imports comes with Cinder
(SQLAlchemy, jsonschema, PyYAML through oslo.config) or is optional: the
extras ``postgresql`` (a PostgreSQL state store) and ``redis`` (a redis://
coordination_url) name those drivers, at least the pins of
requirements/constraints.txt; Ceph's rados/rbd bindings come from the OS.

Stdlib only, no build backend: a wheel is a zip file with a ``.dist-info``
directory (METADATA, WHEEL, top_level.txt, LICENSE, RECORD), written here with
fixed timestamps and modes in sorted order, so that the same tree gives the
same bytes.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import os
import re
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIBRARY = Path('plugins', 'module_utils', 'cinderlib')
NAME = 'cinderlib'
PREFIX = 'ansible_collections.cinderlib.storage.plugins.module_utils'
# Python of the library's own needs (datetime.UTC) and Cinder 29's Requires-Python.
REQUIRES_PYTHON = '>=3.11'
# Requires-Dist: distribution names of requirements/runtime.txt, as lower bounds.
REQUIRED = ('cinder', 'os-brick')
# Extras: name -> distributions, lower bounds from requirements/constraints.txt.
EXTRAS = {'postgresql': ('psycopg2-binary',), 'redis': ('redis',)}
SUMMARY = 'cinderlib re-created on current Cinder: Cinder volume drivers without Cinder services'
# 1980-01-01, the earliest time a zip file can hold: the same bytes on every build.
DATE_TIME = (1980, 1, 1, 0, 0, 0)

_REWRITES = (
    # "from <prefix> import cinderlib [as x]", also split over lines in a docstring.
    (re.compile(r'\bfrom\s+' + re.escape(PREFIX) + r'\s+import\s+cinderlib\b(?!\s*,)'), 'import cinderlib'),
    (re.compile(r'\b' + re.escape(PREFIX + '.cinderlib') + r'\b'), NAME),
)
_VERSION = re.compile(r"^__version__ = (['\"])[^'\"]*\1$", re.M)


class BuildError(Exception):
    pass


def _read_pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements file, by normalized name."""
    pins = {}
    for line in path.read_text(encoding='utf-8').splitlines():
        line = line.split('#', 1)[0].strip()
        if '==' in line:
            name, version = (part.strip() for part in line.split('==', 1))
            pins[re.sub(r'[-_.]+', '-', name).lower()] = version
    return pins


def _galaxy(repo: Path) -> dict[str, str]:
    """The top-level scalar keys of galaxy.yml that the metadata uses (no YAML parser: stdlib only)."""
    text = (repo / 'galaxy.yml').read_text(encoding='utf-8')
    found = {}
    for key in ('version', 'repository', 'documentation'):
        match = re.search(r'^%s:\s*[\'"]?([^\'"\s#]+)' % key, text, flags=re.M)
        if match:
            found[key] = match.group(1)
    if not re.fullmatch(r'\d+\.\d+\.\d+([-+.][0-9A-Za-z.]+)?', found.get('version', '')):
        raise BuildError('%s: no version: X.Y.Z line' % (repo / 'galaxy.yml'))
    return found


def wheel_version(collection_version: str) -> str:
    """``6.`` + the collection's version: 0.1.0 -> 6.0.1.0."""
    return '6.' + collection_version


def rewrite(source: str, path: str) -> str:
    """A library file as the wheel has it: imports of the top-level ``cinderlib``."""
    for pattern, replacement in _REWRITES:
        source = pattern.sub(replacement, source)
    for number, line in enumerate(source.splitlines(), 1):
        if 'ansible_collections' in line:
            raise BuildError('%s:%d: ansible_collections is left after the rewrite (an import this script does '
                             'not know how to rewrite): %s' % (path, number, line.strip()))
    return source


def set_version(source: str, version: str, path: str) -> str:
    new, count = _VERSION.subn("__version__ = '%s'" % version, source)
    if count != 1:
        raise BuildError("%s: expected one line \"__version__ = '...'\", found %d" % (path, count))
    return new


def package_files(repo: Path, version: str) -> dict[str, bytes]:
    """``cinderlib/...`` name -> rewritten bytes, for every .py file of the library."""
    root = repo / LIBRARY
    sources = sorted(p for p in root.rglob('*.py') if '__pycache__' not in p.parts)
    if (root / '__init__.py') not in sources:
        raise BuildError('%s has no __init__.py' % root)
    files = {}
    for path in sources:
        rel = path.relative_to(root).as_posix()
        shown = (LIBRARY / rel).as_posix()
        text = rewrite(path.read_text(encoding='utf-8'), shown)
        if rel == '__init__.py':
            text = set_version(text, version, shown)
        try:
            compile(text, shown, 'exec')
        except SyntaxError as exc:
            raise BuildError('%s does not compile after the rewrite: %s' % (shown, exc)) from exc
        files['%s/%s' % (NAME, rel)] = text.encode('utf-8')
    return files


def requirements(repo: Path) -> tuple[list[str], dict[str, list[str]]]:
    """Requires-Dist lines, and those of each extra."""
    runtime = _read_pins(repo / 'requirements' / 'runtime.txt')
    constraints_file = repo / 'requirements' / 'constraints.txt'
    constraints = _read_pins(constraints_file) if constraints_file.exists() else {}
    required = []
    for name in REQUIRED:
        if name not in runtime:
            raise BuildError('requirements/runtime.txt pins no %s (the lower bound of Requires-Dist)' % name)
        required.append('%s>=%s' % (name, runtime[name]))
    extras = {extra: ['%s>=%s' % (name, constraints[name]) if name in constraints else name for name in names]
              for extra, names in EXTRAS.items()}
    return required, extras


def metadata(repo: Path, version: str) -> str:
    galaxy = _galaxy(repo)
    required, extras = requirements(repo)
    lines = ['Metadata-Version: 2.1', 'Name: %s' % NAME, 'Version: %s' % version, 'Summary: %s' % SUMMARY,
             'License: Apache-2.0']
    for label, key in (('Source', 'repository'), ('Documentation', 'documentation')):
        if key in galaxy:
            lines.append('Project-URL: %s, %s' % (label, galaxy[key]))
    lines += ['Classifier: License :: OSI Approved :: Apache Software License',
              'Classifier: Programming Language :: Python :: 3',
              'Requires-Python: %s' % REQUIRES_PYTHON]
    lines += ['Requires-Dist: %s' % req for req in required]
    for extra, reqs in extras.items():
        lines.append('Provides-Extra: %s' % extra)
        lines += ['Requires-Dist: %s; extra == "%s"' % (req, extra) for req in reqs]
    lines.append('Description-Content-Type: text/markdown')
    body = ('`import cinderlib` for programs written for cinderlib 5.x, on current Cinder and os-brick: the library '
            'of the Ansible collection cinderlib.storage %s (plugins/module_utils/cinderlib), packaged under '
            "cinderlib's name. Install it beside Cinder and os-brick (requirements/runtime.txt of that collection "
            'gives the versions tested):\n\n    pip install %s-%s-py3-none-any.whl\n'
            % (galaxy['version'], NAME, version))
    return '\n'.join(lines) + '\n\n' + body


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode('ascii')
    return '%s,sha256=%s,%d' % (name, digest, len(data))


def wheel_contents(repo: Path) -> tuple[str, dict[str, bytes]]:
    """The wheel's file name and its members, in the order they are written (RECORD last)."""
    version = wheel_version(_galaxy(repo)['version'])
    dist_info = '%s-%s.dist-info' % (NAME, version)
    members = package_files(repo, version)
    members[dist_info + '/METADATA'] = metadata(repo, version).encode('utf-8')
    members[dist_info + '/WHEEL'] = (b'Wheel-Version: 1.0\nGenerator: cinderlib.storage '
                                     b'scripts/build_cinderlib_wheel.py\nRoot-Is-Purelib: true\n'
                                     b'Tag: py3-none-any\n')
    members[dist_info + '/top_level.txt'] = (NAME + '\n').encode('utf-8')
    members[dist_info + '/LICENSE'] = (repo / 'LICENSE').read_bytes()
    record = [_record_line(name, data) for name, data in members.items()] + [dist_info + '/RECORD,,']
    members[dist_info + '/RECORD'] = ('\n'.join(record) + '\n').encode('utf-8')
    return '%s-%s-py3-none-any.whl' % (NAME, version), members


def build_wheel(out_dir: Path, repo: Path = REPO) -> Path:
    """Write the wheel into ``out_dir`` (made if missing); return its path."""
    name, members = wheel_contents(repo)
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % name, dir=out_dir)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, 'w') as wheel:
            for member, data in members.items():
                info = zipfile.ZipInfo(member, date_time=DATE_TIME)
                info.external_attr = 0o100644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                wheel.writestr(info, data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_dir / name)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out_dir / name


def installed_differences(repo: Path = REPO) -> list[str]:
    """How this Python's installed ``cinderlib`` differs from the wheel this tree gives (empty: it is that one)."""
    try:
        dist = importlib.metadata.distribution(NAME)
    except importlib.metadata.PackageNotFoundError:
        return ['no cinderlib distribution is installed for %s' % sys.executable]
    name, members = wheel_contents(repo)
    expected = name.split('-')[1]
    if dist.version != expected:
        return ['installed cinderlib %s, this tree builds %s' % (dist.version, expected)]
    installed = {str(f) for f in dist.files or () if str(f).startswith(NAME + '/') and str(f).endswith('.py')}
    built = {member for member in members if member.startswith(NAME + '/')}
    problems = ['%s: not in this tree' % f for f in sorted(installed - built)]
    problems += ['%s: not installed' % f for f in sorted(built - installed)]
    problems += ['%s: differs from this tree' % f for f in sorted(built & installed)
                 if Path(dist.locate_file(f)).read_bytes() != members[f]]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('output_dir', nargs='?', type=Path,
                        help='where to write the wheel (default: $CINDERLIB_BUILD/dist, or .build/dist)')
    parser.add_argument('--check-installed', action='store_true',
                        help="compare this Python's installed cinderlib with the wheel this tree gives")
    args = parser.parse_args(argv)
    try:
        if args.check_installed:
            problems = installed_differences()
            for problem in problems:
                print('cinderlib drop-in: %s' % problem, file=sys.stderr)
            return 1 if problems else 0
        out_dir = args.output_dir or Path(os.environ.get('CINDERLIB_BUILD') or REPO / '.build') / 'dist'
        print(build_wheel(out_dir))
    except (BuildError, OSError) as exc:
        print('ERROR: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
