# The drop-in cinderlib wheel (scripts/build_cinderlib_wheel.py), installed
# with pip into a throwaway venv as an operator installs it beside Cinder and
# os-brick, runs a program written for cinderlib 5.2 unchanged: `import
# cinderlib`, setup(), a Backend on the real LVM volume group, a volume made in
# one process and found, extended and deleted in another.
#
# The throwaway venv gets Cinder and os-brick from this venv through a .pth
# file (pip's own too: `python -m pip` there installs into the throwaway
# venv); its own site-packages comes first on sys.path, so its cinderlib wins
# over one the build+install stage put in this venv. The programs run with no
# PYTHONPATH: nothing of the collection is reachable.
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def dropin(tmp_path_factory) -> dict:
    """``{"python", "site_packages", "wheel", "timings"}`` of a throwaway venv with the wheel installed."""
    root = tmp_path_factory.mktemp('dropin')
    timings = {}
    start = time.monotonic()
    built = subprocess.run([sys.executable, str(REPO / 'scripts' / 'build_cinderlib_wheel.py'), str(root / 'dist')],
                           capture_output=True, text=True, check=True, timeout=120)
    wheel = Path(built.stdout.strip().splitlines()[-1])
    timings['build'] = time.monotonic() - start

    venv = root / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True, timeout=120)
    python = str(venv / 'bin' / 'python')
    site_packages = Path(subprocess.run(
        [python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
        capture_output=True, text=True, check=True, env=_env()).stdout.strip())
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ('purelib', 'platlib'))
    (site_packages / 'cinderlib-storage-runtime.pth').write_text(''.join('%s\n' % path for path in ours))

    start = time.monotonic()
    proc = subprocess.run([python, '-m', 'pip', 'install', '--no-deps', '--no-index', '--ignore-installed',
                           '--disable-pip-version-check', str(wheel)],
                          capture_output=True, text=True, env=_env(), timeout=300, check=False)
    timings['install'] = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {'python': python, 'site_packages': site_packages, 'wheel': wheel, 'timings': timings}


def _env(extra: dict | None = None) -> dict:
    env = {key: value for key, value in os.environ.items() if key != 'PYTHONPATH'}
    env.update(extra or {})
    return env


# Appended to every program: where cinderlib came from, and that nothing of
# the collection was imported.
REPORT = '''
import sys as _sys
print(json.dumps({"file": cinderlib.__file__, "version": cinderlib.__version__,
                  "collection_modules": sorted(m for m in _sys.modules if m.startswith("ansible_collections"))}))
'''


def _run(dropin: dict, body: str, env: dict | None = None) -> tuple[dict, str]:
    code = 'import json\nimport cinderlib\n' + textwrap.dedent(body) + REPORT
    proc = subprocess.run([dropin['python'], '-c', code], capture_output=True, text=True, env=_env(env),
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(report['file']).parent == dropin['site_packages'] / 'cinderlib'
    assert report['version'].startswith('6.')
    assert report['collection_modules'] == []
    return report, proc.stdout


def _output(dropin: dict, body: str, env: dict | None = None) -> str:
    return _run(dropin, body, env)[1]


def test_the_wheel_installs_as_cinderlib(dropin):
    report, out = _run(dropin, '''
        import importlib.metadata
        print("dist", importlib.metadata.version("cinderlib"))
        print("exception", cinderlib.exception.VolumeNotFound.__name__,
              issubclass(cinderlib.exception.VolumeNotFound, cinderlib.exception.NotFound))
        print("names", all(hasattr(cinderlib, n) for n in ("Backend", "setup", "Volume", "Snapshot", "Connection",
                                                            "load", "dumps", "utils", "objects", "serialization")))
        ''')
    name = dropin['wheel'].name
    assert name == 'cinderlib-%s-py3-none-any.whl' % report['version']
    assert 'dist %s\n' % report['version'] in out
    assert 'exception VolumeNotFound True\n' in out and 'names True\n' in out
    timings = dropin['timings']
    print('drop-in wheel %s: build %.2f s, install %.2f s' % (name, timings['build'], timings['install']))


def test_a_cinderlib5_program_on_lvm(tmp_path, dropin, lvm_backend, lvm_backend_env):
    env = dict(lvm_backend_env['environment'])
    env['PATH'] = os.pathsep.join([os.environ.get('PATH', ''), '/usr/local/sbin', '/usr/sbin', '/sbin'])
    setup = '''
        cinderlib.setup(persistence_config={'storage': 'db', 'connection': 'sqlite:///%s'},
                        file_locks_path='%s')
        lvm = cinderlib.Backend(**%r)
        ''' % (tmp_path / 'state.db', tmp_path / 'locks', lvm_backend)
    out = _output(dropin, setup + '''
        vol = lvm.create_volume(1, name='dropin01')
        print("created", json.dumps([vol.id, vol.status, vol.size]))
        ''', env)
    line = next(line for line in out.splitlines() if line.startswith('created '))
    volume_id, status, size = json.loads(line.split(' ', 1)[1])
    assert (status, size) == ('available', 1)

    # Another process: the volume from the state store, grown and deleted.
    out = _output(dropin, setup + '''
        vol = cinderlib.Volume.get_by_id(%r)
        print("listed", [v.id for v in lvm.volumes] == [vol.id], vol.display_name == 'dropin01')
        vol.extend(2)
        print("extended", vol.size, vol.status)
        vol.delete()
        try:
            cinderlib.Volume.get_by_id(vol.id)
        except cinderlib.exception.VolumeNotFound:
            print("gone")
        ''' % volume_id, env)
    assert 'listed True True\n' in out
    assert 'extended 2 available\n' in out and 'gone\n' in out


# The public names of the drop-in are the collection library's, which
# test_cinderlib_public_names.py checks against cinderlib 5.2.0's own.
NAMES = '''
def _public(obj):
    return sorted(name for name in dir(obj) if not name.startswith("_"))
names = {"cinderlib": _public(cinderlib), "exception": _public(cinderlib.exception),
         "utils": _public(cinderlib.utils)}
for cls in ("Backend", "Volume", "Snapshot", "Connection", "KeyValue", "PersistenceDriverBase"):
    names[cls] = _public(getattr(cinderlib, cls))
'''


def test_the_dropin_has_the_public_names_of_the_collections_library(dropin):
    out = _output(dropin, NAMES + 'print("names", json.dumps(names))\n')
    dropin_names = json.loads(next(line for line in out.splitlines() if line.startswith('names '))[len('names '):])
    # The same code on the collection's library, in a fresh process too: in this
    # one, the submodules other tests imported are attributes of the package.
    from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
    collections = Path(cinderlib.__file__).parents[6]
    code = 'from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib\nimport json\n'
    proc = subprocess.run([sys.executable, '-c', code + NAMES + 'print(json.dumps(names))\n'], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(collections)), timeout=120, check=True)
    assert dropin_names == json.loads(proc.stdout.strip().splitlines()[-1])
