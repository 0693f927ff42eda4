# CONTRIBUTING.md's Layout names every file of plugins/module_utils, so a new
# file comes with a line that says what it holds.
from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[3]


def test_the_layout_names_every_module_utils_file():
    text = (ROOT / 'CONTRIBUTING.md').read_text(encoding='utf-8')
    layout = text[text.index('## Layout'):]
    layout = layout[:layout.index('\n## ', 1)]
    named = set(re.findall(r'^\| `([\w.]+\.py)` \|', layout, flags=re.M))
    files = {path.name for path in (ROOT / 'plugins' / 'module_utils').rglob('*.py')}
    assert files, 'no module_utils files found'
    assert sorted(files - named) == [], 'files missing from the Layout of CONTRIBUTING.md'
    assert sorted(named - files) == [], 'the Layout of CONTRIBUTING.md names files that do not exist'


def test_test_modules_have_names_of_their_own():
    # pytest imports test modules by base name (rootdir-relative, no packages):
    # two of one name, say under tests/unit and tests/functional, stop its collection.
    seen: dict[str, list[str]] = {}
    for path in (ROOT / 'tests').rglob('test_*.py'):
        if 'output' not in path.relative_to(ROOT).parts:
            seen.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}
