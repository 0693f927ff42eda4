# Serialization across processes and stores, on a real LVM volume group: the facts'
# 'serialized' string loaded into another store, and cinderlib 5.2.0's JSON.
from __future__ import annotations

import json
import textwrap
from pathlib import Path

from functional_helpers import lv_names, run_adhoc, run_python

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import views
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import open_store

FIXTURE = Path(__file__).resolve().parents[1] / 'fixtures' / 'cinderlib5_backend.json'

LOAD = textwrap.dedent('''\
    import json
    from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
    cinderlib.setup(persistence_config={'storage': 'db', 'connection': 'sqlite:///%s'},
                    file_locks_path='%s', fail_on_missing_backend=False)
    backend = cinderlib.load(open('%s').read(), save=True)
    print(json.dumps(sorted(v.display_name for v in backend.volumes)))
''')


def store_of(path: Path) -> dict:
    return {'storage': 'db', 'connection': 'sqlite:///%s' % path}


def facts(lvm_backend: dict, persistence: dict, env: dict) -> dict:
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts',
                                {'backend': lvm_backend, 'persistence': persistence}, env)
    assert rc == 0, out
    return result['ansible_facts']['cinderlib_backends']['lvm']


def load_in_another_process(tmp_path: Path, data_file: Path, db: Path, env: dict) -> list[str]:
    proc = run_python(LOAD % (db, tmp_path / 'locks', data_file), env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def without_updated_at(value):
    if isinstance(value, dict):
        return {k: without_updated_at(v) for k, v in value.items() if k != 'updated_at'}
    if isinstance(value, list):
        return [without_updated_at(v) for v in value]
    return value


def test_facts_serialized_loads_into_an_empty_store(tmp_path, run_env, lvm_backend, lvm_backend_env):
    db_a, db_b = tmp_path / 'a.db', tmp_path / 'b.db'
    for name, size, extra in (('ser-data', 1, {'metadata': {'owner': 'db'}, 'extra_specs': {'ser:test': 'yes'}}),
                              ('ser-logs', 2, {})):
        args = dict(extra, backend=lvm_backend, persistence=store_of(db_a), name=name, size=size)
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', args, run_env)
        assert rc == 0 and result['changed'], out
    facts_a = facts(lvm_backend, store_of(db_a), run_env)
    serialized = json.loads(facts_a['serialized'])
    assert serialized['format'] == 'cinderlib.storage/2' and serialized['backend'] == {'volume_backend_name': 'lvm'}

    data_file = tmp_path / 'serialized.json'
    data_file.write_text(facts_a['serialized'], encoding='utf-8')
    assert load_in_another_process(tmp_path, data_file, db_b, run_env) == ['ser-data', 'ser-logs']

    facts_b = facts(lvm_backend, store_of(db_b), run_env)
    summary = sorted((v['id'], v['name'], v['size']) for v in facts_b['volumes'])
    assert summary == sorted((v['id'], v['name'], v['size']) for v in facts_a['volumes'])
    assert without_updated_at(facts_b['volumes']) == without_updated_at(facts_a['volumes'])
    store_a, store_b = open_store(store_of(db_a)), open_store(store_of(db_b))
    try:
        assert without_updated_at(views.backend_volume_views(store_b, 'lvm')) == \
            without_updated_at(views.backend_volume_views(store_a, 'lvm'))
    finally:
        store_a.close()
        store_b.close()

    # The loaded records drive the real driver: store B deletes the LVs.
    for volume in facts_b['volumes']:
        args = {'backend': lvm_backend, 'persistence': store_of(db_b), 'name': volume['name'], 'state': 'absent'}
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', args, run_env)
        assert rc == 0 and result['changed'], out
    left = lv_names(lvm_backend_env['vg'], run_env)
    assert not [v for v in facts_a['volumes'] if 'volume-%s' % v['id'] in left]


def test_cinderlib5_json_is_seen_by_backend_facts(tmp_path, run_env, lvm_backend):
    db = tmp_path / 'cl5.db'
    assert load_in_another_process(tmp_path, FIXTURE, db, run_env) == ['plain', 'typed']
    found = {v['name']: v for v in facts(lvm_backend, store_of(db), run_env)['volumes']}
    assert sorted(found) == ['plain', 'typed']
    assert found['typed']['size'] == 2 and found['typed']['qos_specs'] == {'maxIOPS': '1000',
                                                                           'read_bytes_sec': '1048576'}
    assert sorted(s['name'] for s in found['plain']['snapshots']) == ['snap-a', 'snap-b']
