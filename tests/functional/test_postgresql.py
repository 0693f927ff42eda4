# The modules and the inventory plugin on a PostgreSQL state store (a real
# server, tests/conftest.py) and on SQLite: real LVM, real ansible runs.
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from functional_helpers import lv_names, plain, run_adhoc, run_python
from sqlalchemy.engine import make_url

BIN = Path(sys.executable).parent

PLAYBOOK = textwrap.dedent('''\
    - name: One volume on each of two backends, in a PostgreSQL store
      hosts: localhost
      connection: local
      gather_facts: false
      module_defaults:
        group/cinderlib.storage.cinderlib:
          persistence:
            storage: db
            connection: "{{ pg_url }}"
      tasks:
        - name: Volume {{ volume_state }}
          cinderlib.storage.cinderlib_volume:
            backend: "{{ item.backend }}"
            name: "{{ item.name }}"
            size: 1
            state: "{{ volume_state }}"
          loop: "{{ pg_volumes }}"
          loop_control:
            label: "{{ item.name }}@{{ item.backend.volume_backend_name }}"
    ''')


def library_script(url: str, body: str) -> str:
    return ('from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib\n'
            'cinderlib.setup(persistence_config=%r)\n' % {'storage': 'db', 'connection': url}
            + textwrap.dedent(body))


def run(cmd: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)


def recap_changed(output: str) -> int:
    found = re.findall(r'^localhost\s+:.*\bchanged=(\d+)', output, re.MULTILINE)
    assert found, output
    return int(found[-1])


@pytest.fixture
def password(postgresql_store_url) -> str:
    return make_url(postgresql_store_url).password


def test_facts_ad_hoc_see_volumes_another_process_created(postgresql_store_url, password, run_env, lvm_backend,
                                                          lvm_backend_env):
    vg = lvm_backend_env['vg']
    args = {'backend': lvm_backend, 'persistence': {'storage': 'db', 'connection': postgresql_store_url}}
    outputs = []
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts', args, run_env)
    outputs.append(out)
    assert rc == 0, out
    assert result['ansible_facts']['cinderlib_backends']['lvm']['volumes'] == []

    proc = run_python(library_script(postgresql_store_url, '''
        cfg = %r
        print(cinderlib.Backend(cfg.pop('volume_backend_name'), **cfg).create_volume(1, name='pg-shared').id)
        ''' % lvm_backend), run_env)
    outputs.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr
    volume_id = proc.stdout.strip().splitlines()[-1]
    try:
        assert 'volume-%s' % volume_id in lv_names(vg, run_env)
        rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts', args, run_env)
        outputs.append(out)
        assert rc == 0, out
        [volume] = result['ansible_facts']['cinderlib_backends']['lvm']['volumes']
        assert volume['id'] == volume_id and volume['name'] == 'pg-shared'
        assert volume['size'] == 1 and volume['status'] == 'available' and volume['backend'] == 'lvm'
    finally:
        proc = run_python(library_script(postgresql_store_url, '''
            cfg = %r
            backend = cinderlib.Backend(cfg.pop('volume_backend_name'), **cfg)
            for vol in backend.volumes:
                vol.delete()
            print('left', backend.volumes)
            ''' % lvm_backend), run_env)
        outputs.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr
    assert 'left []' in proc.stdout
    assert 'volume-%s' % volume_id not in lv_names(vg, run_env)
    for output in outputs:
        assert password not in output


@pytest.fixture(params=['sqlite', 'postgresql'])
def store_url(request, tmp_path) -> str:
    if request.param == 'sqlite':
        return 'sqlite:///%s' % (tmp_path / 'state.db')
    return request.getfixturevalue('postgresql_store_url')


def test_playbook_and_inventory_on_each_store(tmp_path, store_url, run_env, lvm_backend, lvm_backend_env):
    # The same playbook and inventory file on the default SQLite store and on
    # a PostgreSQL store shared through the network.
    postgresql_store_url = store_url
    password = make_url(store_url).password
    vg = lvm_backend_env['vg']
    # Two backends on one volume group: the store keeps their volumes apart.
    volumes = [{'name': 'pg-data01', 'backend': lvm_backend},
               {'name': 'pg-data02', 'backend': dict(lvm_backend, volume_backend_name='lvm_b')}]
    playbook = tmp_path / 'volumes.yml'
    playbook.write_text(PLAYBOOK)
    (tmp_path / 'vars.json').write_text(json.dumps({
        'pg_url': postgresql_store_url, 'pg_volumes': volumes, 'ansible_python_interpreter': sys.executable}))
    inventory = tmp_path / 'pg.cinderlib.yml'
    inventory.write_text('plugin: cinderlib.storage.cinderlib\npersistence:\n  connection: %s\n'
                         % postgresql_store_url)
    outputs = []

    def play(state: str) -> str:
        proc = run([str(BIN / 'ansible-playbook'), '-v', '-i', 'localhost,', str(playbook),
                    '-e', '@%s' % (tmp_path / 'vars.json'), '-e', 'volume_state=%s' % state], run_env)
        outputs.append(proc.stdout + proc.stderr)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def ansible_inventory(*args: str) -> str:
        proc = run([str(BIN / 'ansible-inventory'), '-i', str(inventory), *args], run_env)
        outputs.append(proc.stdout + proc.stderr)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    cleaned = False
    try:
        assert recap_changed(play('present')) == 1
        assert recap_changed(play('present')) == 0

        lines = [line.strip(' |-') for line in ansible_inventory('--graph').splitlines()]
        assert lines[lines.index('@lvm:') + 1] == 'pg-data01'
        assert lines[lines.index('@lvm_b:') + 1] == 'pg-data02'
        hostvars = plain(json.loads(ansible_inventory('--list')))['_meta']['hostvars']
        assert sorted(hostvars) == ['pg-data01', 'pg-data02']
        assert hostvars['pg-data01']['backend'] == 'lvm' and hostvars['pg-data02']['backend'] == 'lvm_b'
        ids = [hostvars[name]['id'] for name in ('pg-data01', 'pg-data02')]
        lvs = lv_names(vg, run_env)
        for volume_id in ids:
            assert 'volume-%s' % volume_id in lvs

        assert recap_changed(play('absent')) == 1
        cleaned = True
        lvs = lv_names(vg, run_env)
        for volume_id in ids:
            assert 'volume-%s' % volume_id not in lvs
        assert plain(json.loads(ansible_inventory('--list')))['_meta']['hostvars'] == {}
        assert recap_changed(play('absent')) == 0
    finally:
        if not cleaned:
            run([str(BIN / 'ansible-playbook'), '-i', 'localhost,', str(playbook),
                 '-e', '@%s' % (tmp_path / 'vars.json'), '-e', 'volume_state=absent'], run_env)
    for output in outputs:
        assert password is None or password not in output


def test_a_wrong_password_fails_clearly_and_shows_no_password(tmp_path, postgresql_url, run_env, lvm_backend):
    url = make_url(postgresql_url)
    wrong = 'wrong-%s' % url.password
    bad_url = url.set(password=wrong).render_as_string(hide_password=False)
    shown = "Can't open the state store postgresql+psycopg2://cinderlib:********@127.0.0.1:%d/cinderlib" % url.port
    # -vvv: the module's traceback (exception) and its arguments are shown too.
    proc = run([str(BIN / 'ansible'), 'localhost', '-vvv', '-c', 'local',
                '-e', 'ansible_python_interpreter=%s' % sys.executable, '-m', 'cinderlib.storage.cinderlib_volume',
                '-a', json.dumps({'backend': lvm_backend, 'name': 'pg-never', 'size': 1,
                                  'persistence': {'storage': 'db', 'connection': bad_url}})], run_env)
    module_output = proc.stdout + proc.stderr
    assert proc.returncode != 0, module_output
    assert shown in module_output and 'password authentication failed' in module_output
    assert 'MODULE FAILURE' not in module_output

    config = tmp_path / 'wrong.cinderlib.yml'
    config.write_text('plugin: cinderlib.storage.cinderlib\npersistence:\n  connection: %s\n' % bad_url)
    proc = run([str(BIN / 'ansible-inventory'), '-vvv', '-i', str(config), '--list'],
               dict(run_env, ANSIBLE_INVENTORY_UNPARSED_FAILED='true'))
    inventory_output = proc.stdout + proc.stderr
    assert proc.returncode != 0, inventory_output
    assert 'cinderlib inventory: %s' % shown in inventory_output
    for output in (module_output, inventory_output):
        assert wrong not in output and url.password not in output
