# The inventory plugin over a state store written by real module runs.
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from functional_helpers import plain


def ansible_inventory(config: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / 'ansible-inventory'), '-i', str(config), *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def test_graph_groups_volumes_per_backend(tmp_path, run_env, lvm_backend):
    db = tmp_path / 'state.db'
    persistence = {'connection': 'sqlite:///%s' % db}
    # Two backends on one volume group: the store keeps their volumes apart.
    backends = {'lvm': lvm_backend, 'lvm_b': dict(lvm_backend, volume_backend_name='lvm_b')}
    created = []
    for backend, name in (('lvm', 'data01'), ('lvm', 'shared'), ('lvm_b', 'shared')):
        code = ('from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib\n'
                'cinderlib.setup(persistence_config=%r)\n'
                'cfg = %r\n'
                'print(cinderlib.Backend(cfg.pop("volume_backend_name"), **cfg).create_volume(1, name=%r).id)\n'
                % ({'storage': 'db', **persistence}, backends[backend], name))
        proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=run_env, check=False)
        assert proc.returncode == 0, proc.stderr
        created.append((backends[backend], proc.stdout.strip()))
    config = tmp_path / 'my.cinderlib.yml'
    config.write_text('plugin: cinderlib.storage.cinderlib\npersistence:\n  connection: sqlite:///%s\n'
                      'keyed_groups:\n  - key: status\n    prefix: status\n' % db)
    try:
        graph = ansible_inventory(config, run_env, '--graph')
        assert graph.returncode == 0, graph.stderr
        lines = [line.strip(' |-') for line in graph.stdout.splitlines()]
        lvm_group = lines[lines.index('@lvm:') + 1:lines.index('@lvm:') + 3]
        assert sorted(lvm_group) == ['data01', 'shared@lvm']
        assert 'shared@lvm_b' in lines and '@status_available:' in lines
        listing = plain(json.loads(ansible_inventory(config, run_env, '--list').stdout))
        hostvars = listing['_meta']['hostvars']['data01']
        assert hostvars['size'] == 1 and hostvars['backend'] == 'lvm' and hostvars['status'] == 'available'
        assert hostvars['volume_name'] == 'data01' and hostvars['ansible_connection'] == 'local'
        assert hostvars['snapshots'] == [] and hostvars['attached_hosts'] == []
        filtered = tmp_path / 'lvm_b.cinderlib.yml'
        filtered.write_text(config.read_text() + 'backends: [lvm_b]\n')
        only_b = json.loads(ansible_inventory(filtered, run_env, '--list').stdout)
        assert sorted(only_b['_meta']['hostvars']) == ['shared']
    finally:
        for backend, volume_id in created:
            code = ('from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib\n'
                    'cinderlib.setup(persistence_config=%r)\ncfg = %r\n'
                    'b = cinderlib.Backend(cfg.pop("volume_backend_name"), **cfg)\n'
                    'b.volumes_filtered(volume_id=%r)[0].delete()\n' % ({'storage': 'db', **persistence}, backend,
                                                                        volume_id))
            subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=run_env, check=False)


def test_unreadable_store_is_a_clear_parse_error(tmp_path, run_env):
    config = tmp_path / 'bad.cinderlib.yml'
    config.write_text('plugin: cinderlib.storage.cinderlib\npersistence:\n'
                      '  connection: postgresql+psycopg2://u:pw-secret@127.0.0.1:1/db\n  retry_window: 0\n')
    proc = ansible_inventory(config, dict(run_env, ANSIBLE_INVENTORY_UNPARSED_FAILED='true'), '--list')
    assert proc.returncode != 0
    shown = "cinderlib inventory: Can't open the state store postgresql+psycopg2://u:********@127.0.0.1:1/db"
    assert shown in proc.stderr
    assert 'pw-secret' not in proc.stderr + proc.stdout


def test_status_filter_compose_groups_and_cache(tmp_path, run_env):
    # Records as the modules leave them, one of them failed.
    db = tmp_path / 'state.db'
    code = ('from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import open_store\n'
            'store = open_store({"connection": "sqlite:///%s"})\n'
            'def put(i, name, size, status):\n'
            '    store.put("volume", dict(id=i, backend="lvm", display_name=name, size=size, status=status))\n'
            'put("v1", "ok1", 1, "available")\n'
            'put("v2", "big", 200, "available")\n'
            'put("v3", "bad", 1, "error")\n'
            % db)
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=run_env, check=False)
    assert proc.returncode == 0, proc.stderr
    cache_dir = tmp_path / 'cache'
    config = tmp_path / 'filtered.cinderlib.yml'
    config.write_text('plugin: cinderlib.storage.cinderlib\npersistence:\n  connection: sqlite:///%s\n'
                      'statuses: [available]\ncompose:\n  size_bytes: size * 1073741824\n'
                      'groups:\n  large: size >= 100\n'
                      'cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\n'
                      % (db, cache_dir))
    listing = plain(json.loads(ansible_inventory(config, run_env, '--list').stdout))
    assert sorted(listing['_meta']['hostvars']) == ['big', 'ok1']
    assert listing['_meta']['hostvars']['ok1']['size_bytes'] == 1073741824
    assert listing['large']['hosts'] == ['big']
    assert any(cache_dir.iterdir()), 'the inventory was not cached'
    # A cached listing is served from the cache, not from the store.
    db.unlink()
    cached = plain(json.loads(ansible_inventory(config, run_env, '--list').stdout))
    assert sorted(cached['_meta']['hostvars']) == ['big', 'ok1']
