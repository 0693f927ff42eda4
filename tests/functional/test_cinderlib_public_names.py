# Every public name of cinderlib 5.2.0 exists on the library (issue 27), read at
# test time from cinderlib's own wheel (PyPI's, checked by sha256: the one the
# peer suite runs). The wheel's source is parsed, not imported: cinderlib 5.2.0
# no longer imports on current Cinder. Names of its package and its public
# submodules, of Backend, Volume, Snapshot, Connection, KeyValue, the
# persistence plugins' base class and cinderlib.exception, with what each
# class inherits from cinderlib's own base classes.
from __future__ import annotations

import ast
import importlib.util
import os
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# What the library leaves out on purpose, and why (the README's library section says the same).
LEFT_OUT = {
    'cinderlib.cinderlib': "cinderlib's module of Backend and setup: the library has them in the package itself",
    'cinderlib.cmd': "cinderlib's command-line converters of cinder.conf; the collection reads cinder.conf "
                     '(config_file) and the library takes its sections as Backend options',
    # cinderlib's wiring of Cinder's versioned objects: the library makes a fresh one from the
    # record for each driver call (_ovo), so these have nothing to hold.
    'CONTEXT': "cinderlib's RequestContext of its objects",
    'DEFAULT_FIELDS_VALUES': "cinderlib's defaults of new objects' fields (the library's are in fields.py)",
    'LAZY_PROPERTIES': "cinderlib's list of lazily loaded attributes",
    'OVO_CLASS': "the Cinder object class cinderlib wrapped",
    'SIMPLE_JSON_IGNORE': "cinderlib's list of fields its json left out",
    'setup': "cinderlib's wiring of its objects to the persistence plugin (Object.setup), done by "
             'cinderlib.setup; the module-level cinderlib.setup is there',
}


def _wheel() -> Path:
    spec = importlib.util.spec_from_file_location('peer_prepare', REPO / 'tests' / 'peer' / 'prepare.py')
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    try:
        return prepare.wheel(Path(os.environ.get('CINDERLIB_BUILD') or REPO / '.build'))
    except prepare.PrepareError as exc:  # no PyPI and no cached wheel
        pytest.skip('cinderlib 5.2.0 wheel not available: %s' % exc)


@pytest.fixture(scope='module')
def sources() -> dict[str, ast.Module]:
    with zipfile.ZipFile(_wheel()) as wheel:
        return {name[len('cinderlib/'):]: ast.parse(wheel.read(name))
                for name in wheel.namelist() if name.startswith('cinderlib/') and name.endswith('.py')
                and not name.startswith('cinderlib/tests/')}


def _public(names) -> set[str]:
    return {name for name in names if not name.startswith('_')}


def _top_level(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split('.')[0] for alias in node.names)
    return _public(names)


def _classes(tree: ast.Module) -> dict[str, tuple[set[str], list[str]]]:
    found = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names = set()
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    names.add(item.name)
                elif isinstance(item, ast.Assign):
                    names.update(t.id for t in item.targets if isinstance(t, ast.Name))
            found[node.name] = (names, [ast.unparse(base) for base in node.bases])
    return found


def _class_names(classes: dict, name: str) -> set[str]:
    """A class's public names with those of its bases defined in the same module."""
    names, bases = classes[name]
    names = set(names)
    for base in bases:
        if base in classes:
            names |= _class_names(classes, base)
    return _public(names)


def _library():
    from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
    return cinderlib


def _missing(names: set[str], has) -> list[str]:
    return sorted(name for name in names if name not in LEFT_OUT and not has(name))


def test_the_package_and_its_submodules(sources):
    cinderlib = _library()
    submodules = {path.split('/')[0].removesuffix('.py') for path in sources if not path.startswith('_')}
    submodules.discard('__init__')
    names = _top_level(sources['__init__.py']) | submodules
    assert {'Backend', 'setup', 'Volume', 'get_connector_properties', 'exception', 'utils'} <= names
    missing = sorted(name for name in names
                     if 'cinderlib.' + name not in LEFT_OUT and name not in LEFT_OUT and not hasattr(cinderlib, name))
    assert missing == []


@pytest.mark.parametrize('module, cls', [
    ('cinderlib.py', 'Backend'), ('objects.py', 'Volume'), ('objects.py', 'Snapshot'),
    ('objects.py', 'Connection'), ('objects.py', 'KeyValue'), ('persistence/base.py', 'PersistenceDriverBase'),
])
def test_every_public_name_of_the_class(sources, module, cls):
    names = _class_names(_classes(sources[module]), cls)
    ours = getattr(_library(), cls)
    assert _missing(names, lambda name: hasattr(ours, name)) == []


def test_cinderlib_exception(sources):
    names = _top_level(sources['exception.py']) - {'exception'}  # its own 'from cinder import exception'
    exception = _library().exception
    assert names == {'NotFound', 'VolumeNotFound', 'SnapshotNotFound', 'ConnectionNotFound', 'InvalidVolume',
                     'InvalidPersistence', 'NotLocal'}
    assert _missing(names, lambda name: hasattr(exception, name)) == []
    # Each is also the library's error of that kind, so one except clause catches both.
    for name in ('VolumeNotFound', 'SnapshotNotFound', 'ConnectionNotFound'):
        assert issubclass(getattr(exception, name), exception.NotFound)
    assert issubclass(exception.NotFound, _library().CinderlibError)


def test_cinderlib_utils(sources):
    names = _top_level(sources['utils.py'])
    utils = _library().utils
    assert names == {'find_by_id', 'add_by_id'} and _missing(names, lambda name: hasattr(utils, name)) == []
    items = [type('R', (), {'id': i})() for i in 'ab']
    replacement = type('R', (), {'id': 'b'})()
    utils.add_by_id(replacement, items)
    assert utils.find_by_id('b', items) == (1, replacement) and utils.find_by_id('c', items) == (None, None)
