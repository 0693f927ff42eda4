# The collection's execution-environment metadata (meta/execution-environment.yml):
# its requirement files carry the repository's pins, and ansible-builder finds
# them in the *built* collection. ansible-builder only writes a build context
# here (`create`): no container runtime is needed or used, so no image is built.
# What the image build would do with the collection's requirements is what
# `ansible-builder introspect` does, run here on the installed tarball.
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
META = REPO / 'meta'
EXAMPLE = Path(__file__).resolve().parent / 'execution-environment.yml'
PIN = re.compile(r'([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)')

needs_builder = pytest.mark.skipif(
    importlib.util.find_spec('ansible_builder') is None,
    reason='ansible-builder is not installed: pip install -r requirements/test.txt -c requirements/constraints.txt',
)


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text(encoding='utf-8').splitlines():
        match = PIN.fullmatch(line.split('#', 1)[0].strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def ee_definition() -> dict:
    return yaml.safe_load((META / 'execution-environment.yml').read_text(encoding='utf-8'))


def requirement_lines(path: Path) -> list[str]:
    return [line.split('#', 1)[0].strip() for line in path.read_text(encoding='utf-8').splitlines()
            if line.split('#', 1)[0].strip()]


def test_ee_metadata_names_files_that_exist():
    definition = ee_definition()
    assert definition['version'] == 3
    for key in ('python', 'system'):
        relative = definition['dependencies'][key]
        assert not Path(relative).is_absolute(), relative  # ansible-builder refuses absolute paths
        assert (REPO / relative).is_file(), relative


def test_ee_python_requirements_are_the_repository_pins():
    ee_pins = pins(REPO / ee_definition()['dependencies']['python'])
    lines = requirement_lines(REPO / ee_definition()['dependencies']['python'])
    assert len(ee_pins) == len(lines), 'every requirement is pinned with =='
    tested = pins(REPO / 'requirements' / 'constraints.txt')
    for name, version in ee_pins.items():
        assert tested.get(name) == version, (name, version, tested.get(name))
    # Everything the runtime role puts in a managed node's venv, so that the
    # modules run in the EE as they do on a node.
    role = pins(REPO / 'roles' / 'runtime' / 'files' / 'requirements.txt')
    assert role.items() <= ee_pins.items()
    # The inventory plugin's store: SQLAlchemy, and psycopg2 for PostgreSQL.
    assert {'sqlalchemy', 'psycopg2-binary'} <= ee_pins.keys()


def builder(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'ansible_builder', *args], cwd=cwd,
                          capture_output=True, text=True, check=False)


@pytest.fixture(scope='module')
def installed_collection(tmp_path_factory) -> Path:
    """The collection built with ansible-galaxy and installed from its tarball."""
    galaxy = shutil.which('ansible-galaxy')
    if galaxy is None:
        pytest.skip('ansible-galaxy is not on PATH')
    tmp = tmp_path_factory.mktemp('ee-collection')
    subprocess.run([galaxy, 'collection', 'build', '--output-path', str(tmp), str(REPO)],
                   check=True, capture_output=True, text=True)
    tarball = next(tmp.glob('cinderlib-storage-*.tar.gz'))
    collections = tmp / 'collections'
    # Offline and without the repository's own copy on the collections path.
    env = {'PATH': str(Path(galaxy).parent) + ':/usr/bin:/bin', 'ANSIBLE_COLLECTIONS_PATH': str(collections),
           'HOME': str(tmp)}
    subprocess.run([galaxy, 'collection', 'install', str(tarball), '-p', str(collections)],
                   check=True, capture_output=True, text=True, env=env)
    return collections


@needs_builder
def test_ansible_builder_finds_the_requirements_in_the_built_collection(installed_collection, tmp_path):
    pip_out, bindep_out = tmp_path / 'requirements.txt', tmp_path / 'bindep.txt'
    result = builder('introspect', '--write-pip', str(pip_out), '--write-bindep', str(bindep_out),
                     str(installed_collection), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    python = pip_out.read_text(encoding='utf-8').splitlines()
    system = bindep_out.read_text(encoding='utf-8').splitlines()
    expected_python = requirement_lines(META / 'ee-requirements.txt')
    expected_system = requirement_lines(META / 'ee-bindep.txt')
    assert [line.split('#', 1)[0].strip() for line in python if line] == expected_python
    assert [line.split('#', 1)[0].strip() for line in system if line] == expected_system
    assert all(line.endswith('# from collection cinderlib.storage') for line in python + system if line)


@needs_builder
def test_ansible_builder_creates_a_context_for_an_ee_with_the_collection(tmp_path):
    shutil.copy(EXAMPLE, tmp_path / 'execution-environment.yml')
    result = builder('create', '--file', 'execution-environment.yml', '--context', 'context',
                     '--output-filename', 'Containerfile', cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    context = tmp_path / 'context'
    galaxy = yaml.safe_load((context / '_build' / 'requirements.yml').read_text(encoding='utf-8'))
    assert galaxy['collections'] == [{'name': 'cinderlib.storage', 'version': '0.1.0'}]
    containerfile = (context / 'Containerfile').read_text(encoding='utf-8')
    # The collection is installed, then its requirements are introspected and installed.
    assert 'ansible-galaxy collection install' in containerfile
    assert 'introspect.py introspect' in containerfile
    assert 'install-from-bindep' in containerfile
    assert 'ansible-core==2.19.14' in containerfile


def test_example_ee_uses_the_collection_version_and_tested_ansible_core():
    example = yaml.safe_load(EXAMPLE.read_text(encoding='utf-8'))
    galaxy = yaml.safe_load((REPO / 'galaxy.yml').read_text(encoding='utf-8'))
    assert example['dependencies']['galaxy']['collections'][0]['version'] == galaxy['version']
    core = example['dependencies']['ansible_core']['package_pip']
    assert core == 'ansible-core==%s' % pins(REPO / 'requirements' / 'constraints.txt')['ansible-core']
