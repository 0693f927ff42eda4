# The rules of scripts/build_cinderlib_wheel.py: the import rewrite, the
# version, the metadata and a wheel pip can trust (RECORD), the same bytes on
# every build. Installing and running the wheel: tests/functional/test_dropin_wheel.py.
from __future__ import annotations

import base64
import email.parser
import hashlib
import importlib.util
import re
import shutil
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PREFIX = 'ansible_collections.cinderlib.storage.plugins.module_utils'


def _load():
    path = REPO / 'scripts' / 'build_cinderlib_wheel.py'
    spec = importlib.util.spec_from_file_location('build_cinderlib_wheel', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load()


def _galaxy_version() -> str:
    return re.search(r'^version:\s*(\S+)', (REPO / 'galaxy.yml').read_text(), flags=re.M).group(1)


def _runtime_pin(name: str) -> str:
    return re.search(r'^%s==(\S+)' % re.escape(name), (REPO / 'requirements' / 'runtime.txt').read_text(),
                     flags=re.M).group(1)


@pytest.mark.parametrize('collection, wheel', [('0.1.0', '6.0.1.0'), ('1.2.3', '6.1.2.3'), ('2.0.0', '6.2.0.0')])
def test_the_version_is_6_then_the_collections(collection, wheel):
    assert build.wheel_version(collection) == wheel


@pytest.mark.parametrize('source, expected', [
    ('from %s.cinderlib.exceptions import NotFound\n' % PREFIX, 'from cinderlib.exceptions import NotFound\n'),
    ('from %s.cinderlib import fields, loader\n' % PREFIX, 'from cinderlib import fields, loader\n'),
    ('    from %s.cinderlib.loader import X\n' % PREFIX, '    from cinderlib.loader import X\n'),
    ('import %s.cinderlib.objects as objects\n' % PREFIX, 'import cinderlib.objects as objects\n'),
    ('from %s import cinderlib\n' % PREFIX, 'import cinderlib\n'),
    ('from %s import cinderlib as cl\n' % PREFIX, 'import cinderlib as cl\n'),
    ('"""Import it as ``from %s\nimport cinderlib`` and use it"""\n' % PREFIX,
     '"""Import it as ``import cinderlib`` and use it"""\n'),
    ("sys.modules.get('%s.cinderlib.context')\n" % PREFIX, "sys.modules.get('cinderlib.context')\n"),
])
def test_imports_of_the_library_become_imports_of_cinderlib(source, expected):
    assert build.rewrite(source, 'x.py') == expected


@pytest.mark.parametrize('source', [
    'from %s import worker\n' % PREFIX,                     # outside the library: not in the wheel
    'from %s import cinderlib, worker\n' % PREFIX,
    'from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlibx import y\n',
    '# see ansible_collections\n',
])
def test_anything_left_of_ansible_collections_fails_the_build(source):
    with pytest.raises(build.BuildError, match=r'^lib/x\.py:1: ansible_collections is left'):
        build.rewrite(source, 'lib/x.py')


def test_the_version_assignment_is_rewritten_once():
    assert build.set_version("x = 1\n__version__ = '0.1.0'\n", '6.0.1.0', 'i.py') == "x = 1\n__version__ = '6.0.1.0'\n"
    with pytest.raises(build.BuildError, match='found 0'):
        build.set_version('x = 1\n', '6.0.1.0', 'i.py')


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> Path:
    return build.build_wheel(tmp_path_factory.mktemp('dist'))


def test_the_wheel_holds_every_library_file_rewritten(wheel):
    library = REPO / 'plugins' / 'module_utils' / 'cinderlib'
    expected = {'cinderlib/' + p.relative_to(library).as_posix() for p in library.rglob('*.py')
                if '__pycache__' not in p.parts}
    with zipfile.ZipFile(wheel) as archive:
        code = {name: archive.read(name).decode() for name in archive.namelist() if name.startswith('cinderlib/')}
    assert set(code) == expected
    assert [name for name, text in code.items() if 'ansible_collections' in text] == []
    version = build.wheel_version(_galaxy_version())
    assert re.findall(r'^__version__ = .*$', code['cinderlib/__init__.py'], flags=re.M) == [
        "__version__ = '%s'" % version]
    assert 'from cinderlib.exceptions import' in code['cinderlib/__init__.py']


def test_the_metadata(wheel):
    version = build.wheel_version(_galaxy_version())
    assert wheel.name == 'cinderlib-%s-py3-none-any.whl' % version
    with zipfile.ZipFile(wheel) as archive:
        meta = email.parser.Parser().parsestr(archive.read('cinderlib-%s.dist-info/METADATA' % version).decode())
        wheel_file = archive.read('cinderlib-%s.dist-info/WHEEL' % version).decode()
        top_level = archive.read('cinderlib-%s.dist-info/top_level.txt' % version).decode()
    assert (meta['Name'], meta['Version'], meta['License']) == ('cinderlib', version, 'Apache-2.0')
    assert meta['Summary'] and meta['Requires-Python'] == '>=3.11'
    required = [req for req in meta.get_all('Requires-Dist') if 'extra ==' not in req]
    assert required == ['cinder>=%s' % _runtime_pin('cinder'), 'os-brick>=%s' % _runtime_pin('os-brick')]
    assert meta.get_all('Provides-Extra') == ['postgresql', 'redis']
    assert 'Root-Is-Purelib: true\n' in wheel_file and 'Tag: py3-none-any\n' in wheel_file
    assert top_level == 'cinderlib\n'


def test_the_record_lists_every_member_with_its_hash(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        record_name = next(name for name in names if name.endswith('.dist-info/RECORD'))
        assert names[-1] == record_name
        lines = archive.read(record_name).decode().splitlines()
        assert lines[-1] == record_name + ',,'
        listed = {}
        for line in lines[:-1]:
            path, digest, size = line.rsplit(',', 2)
            listed[path] = (digest, int(size))
        assert set(listed) == set(names) - {record_name}
        for name, (digest, size) in listed.items():
            data = archive.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
            assert (digest, size) == ('sha256=' + expected, len(data)), name
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_two_builds_give_the_same_bytes(wheel, tmp_path):
    assert build.build_wheel(tmp_path).read_bytes() == wheel.read_bytes()


def test_a_library_import_it_cannot_rewrite_fails_the_build_and_writes_nothing(tmp_path):
    repo = tmp_path / 'repo'
    library = repo / 'plugins' / 'module_utils' / 'cinderlib'
    library.mkdir(parents=True)
    for name in ('galaxy.yml', 'LICENSE', 'requirements/runtime.txt'):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, repo / name)
    (library / '__init__.py').write_text("__version__ = '0.1.0'\n")
    (library / 'good.py').write_text('from %s.cinderlib import exceptions\n' % PREFIX)
    assert build.build_wheel(tmp_path / 'ok', repo).exists()
    (library / 'bad.py').write_text('import os\nfrom %s.worker import run\n' % PREFIX)
    with pytest.raises(build.BuildError, match=r'plugins/module_utils/cinderlib/bad\.py:2: ansible_collections'):
        build.build_wheel(tmp_path / 'dist', repo)
    assert not (tmp_path / 'dist').exists() or list((tmp_path / 'dist').iterdir()) == []


def test_main_prints_the_wheel_path(tmp_path, capsys):
    assert build.main([str(tmp_path)]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed.parent == tmp_path and printed.exists()
