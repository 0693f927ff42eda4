# The runtime role's driver requirements that are pinned must carry the
# versions the tests run with (requirements/constraints.txt): the role
# installs on managed nodes what was validated here.
from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]


def constraint_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / 'requirements' / 'constraints.txt').read_text(encoding='utf-8').splitlines():
        match = re.fullmatch(r'([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)', line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def driver_table() -> dict:
    data = yaml.safe_load((REPO / 'roles' / 'runtime' / 'vars' / 'main.yml').read_text(encoding='utf-8'))
    return data['__cinderlib_runtime_builtin_drivers']


def test_pinned_driver_requirements_match_the_tested_versions():
    pins = constraint_pins()
    checked = 0
    for name, entry in driver_table().items():
        for spec in entry.get('pip_packages', []):
            package, sep, version = spec.partition('==')
            if sep and package.lower() in pins:
                assert version == pins[package.lower()], (name, spec, pins[package.lower()])
                checked += 1
    assert checked >= 1  # krest for kaminario at least


def test_kaminario_gets_the_krest_that_works_with_cinder_29():
    assert driver_table()['kaminario']['pip_packages'] == ['krest==1.3.7']
    assert constraint_pins()['krest'] == '1.3.7'
