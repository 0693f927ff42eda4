# version_added in the plugins' DOCUMENTATION agrees with galaxy.yml: no
# module, plugin or option claims a release after the collection's version
# (antsibull-changelog lists new modules and plugins from version_added, so a
# wrong one puts them in the wrong release), and every module and plugin says it.
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

REPO = Path(__file__).resolve().parents[3]
PLUGIN_FILES = sorted(path for pattern in ('plugins/modules/*.py', 'plugins/inventory/*.py')
                      for path in REPO.glob(pattern) if path.name != '__init__.py')


def collection_version() -> Version:
    return Version(yaml.safe_load((REPO / 'galaxy.yml').read_text(encoding='utf-8'))['version'])


def documentation(path: Path) -> dict:
    for node in ast.parse(path.read_text(encoding='utf-8')).body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == 'DOCUMENTATION' for t in node.targets):
            return yaml.safe_load(ast.literal_eval(node.value))
    raise AssertionError('%s has no DOCUMENTATION' % path)


def option_versions(options: dict, prefix: str = ''):
    for name, spec in (options or {}).items():
        if 'version_added' in spec:
            yield prefix + name, Version(str(spec['version_added']))
        yield from option_versions(spec.get('suboptions'), prefix + name + '.')


@pytest.mark.parametrize('path', PLUGIN_FILES, ids=lambda p: p.name)
def test_version_added_is_not_after_the_collection_version(path):
    doc = documentation(path)
    released = collection_version()
    added = Version(str(doc['version_added']))
    assert added <= released, '%s: version_added %s, galaxy.yml %s' % (path.name, added, released)
    for option, version in option_versions(doc.get('options')):
        assert added < version <= released, '%s option %s: version_added %s (plugin %s, galaxy.yml %s)' % (
            path.name, option, version, added, released)
