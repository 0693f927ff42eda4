# Backend credentials never show: not in ansible-playbook -vvv output (results,
# warnings, errors, invocation, diff), not in the state store's files, not in
# facts, not in serialized output, not in the inventory.
#
# Two backends: an XtremIO one whose array is unreachable (nothing listens on
# 127.0.0.1:443), so that its driver fails after having been given san_password
# and a replication_device (which oslo marks secret though its name does not
# look like one); and the real LVM backend with a chap_password, on which a
# volume is created, gathered as facts, serialized and listed.
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from functional_helpers import run_python

XTREMIO = 'cinder.volume.drivers.dell_emc.xtremio.XtremIOISCSIDriver'

PLAYBOOK = '''
- name: Secrets never show
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ python }}"
  module_defaults:
    group/cinderlib.storage.cinderlib:
      persistence: "{{ store }}"
      driver_log_path: "{{ driver_log }}"
      driver_log_level: debug
  tasks:
    - name: Facts of the unreachable XtremIO backend
      cinderlib.storage.cinderlib_backend_facts:
        backend: "{{ xtremio }}"
      register: xio_facts
      ignore_errors: true

    - name: A volume on it, with diff
      cinderlib.storage.cinderlib_volume:
        backend: "{{ xtremio }}"
        name: never-made
        size: 1
      diff: true
      register: xio_volume
      ignore_errors: true

    - name: A volume on LVM, with diff
      cinderlib.storage.cinderlib_volume:
        backend: "{{ lvm }}"
        name: secret-test
        size: 1
      diff: true
      register: lvm_volume

    - name: Facts of the LVM backend
      cinderlib.storage.cinderlib_backend_facts:
        backend: "{{ lvm }}"
      register: lvm_facts

    - name: Show what was registered
      ansible.builtin.debug:
        var: item
      loop: ["{{ xio_facts }}", "{{ xio_volume }}", "{{ lvm_volume }}", "{{ lvm_facts }}"]

    - name: Keep the facts and results
      ansible.builtin.copy:
        dest: "{{ results_file }}"
        content: "{{ {'xio_facts': xio_facts, 'xio_volume': xio_volume, 'lvm_volume': lvm_volume,
                      'lvm_facts': lvm_facts, 'facts': ansible_facts} | to_json }}"
        mode: '0600'
'''


@pytest.fixture(scope='module')
def secret_run(tmp_path_factory, collections_path, lvm_backend_env):
    tmp_path = tmp_path_factory.mktemp('secrets')
    lvm_backend = dict(volume_driver='cinder.volume.drivers.lvm.LVMVolumeDriver', volume_group=lvm_backend_env['vg'],
                       target_protocol='iscsi', target_helper='lioadm', volume_backend_name='lvm',
                       lvm_type='default', volume_clear='none')
    passwords = {name: 'S3cr%s%s' % (name[:2], secrets.token_hex(12))
                 for name in ('san_password', 'replication', 'chap_password')}
    xtremio = dict(volume_backend_name='xtremio', volume_driver=XTREMIO, san_ip='127.0.0.1', san_login='admin',
                   san_password=passwords['san_password'], xtremio_cluster_name='cluster',
                   replication_device=[{'backend_id': 'r1', 'san_ip': '127.0.0.2',
                                        'san_password': passwords['replication']}])
    lvm = dict(lvm_backend, chap_password=passwords['chap_password'], use_chap_auth=False)
    db = tmp_path / 'store' / 'state.db'
    store = {'storage': 'db', 'connection': 'sqlite:///%s' % db}
    env = dict(os.environ)
    env.update(lvm_backend_env['environment'])
    env.update(ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='false',
               ANSIBLE_INVENTORY_UNPARSED_WARNING='false')
    env['PYTHONPATH'] = os.pathsep.join(p for p in (collections_path, env.get('PYTHONPATH')) if p)
    env['PATH'] = os.pathsep.join([env.get('PATH', ''), '/usr/local/sbin', '/usr/sbin', '/sbin'])
    (tmp_path / 'playbook.yml').write_text(PLAYBOOK)
    extra = {'python': sys.executable, 'store': store, 'xtremio': xtremio, 'lvm': lvm,
             'results_file': str(tmp_path / 'results.json'), 'driver_log': str(tmp_path / 'driver.log')}
    (tmp_path / 'vars.json').write_text(json.dumps(extra))
    bindir = Path(sys.executable).parent
    playbook = subprocess.run([str(bindir / 'ansible-playbook'), '-vvv', '-i', 'localhost,',
                               '-e', '@%s' % (tmp_path / 'vars.json'), str(tmp_path / 'playbook.yml')],
                              capture_output=True, text=True, env=env, timeout=600, check=False)

    (tmp_path / 'playbook.log').write_text(playbook.stdout + playbook.stderr)

    # Serialized output, through the library (output_all_backend_info off, the default).
    serialized = run_python(textwrap.dedent('''
        from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
        cinderlib.setup(persistence_config=%r)
        lvm = cinderlib.Backend(**%r)
        print(lvm.jsons)
        print(lvm.dumps)
        for volume in lvm.volumes:
            print(volume.jsons)
            print(volume.dumps)
        print(lvm.config)
        ''') % (store, lvm), env)

    (tmp_path / 'inventory.cinderlib.yml').write_text(json.dumps(
        {'plugin': 'cinderlib.storage.cinderlib', 'persistence': {'connection': store['connection']}}))
    inventory = subprocess.run([str(bindir / 'ansible-inventory'), '-i', str(tmp_path / 'inventory.cinderlib.yml'),
                                '--list'], capture_output=True, text=True, env=env, timeout=300, check=False)
    try:
        yield {'passwords': passwords, 'playbook': playbook, 'serialized': serialized, 'inventory': inventory,
               'store_dir': db.parent, 'results': tmp_path / 'results.json', 'driver_log': tmp_path / 'driver.log'}
    finally:
        run_python(textwrap.dedent('''
            from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
            cinderlib.setup(persistence_config=%r)
            for volume in cinderlib.Backend(**%r).volumes:
                volume.delete()
            ''') % (store, lvm), env)


def _hits(text: str, passwords: dict) -> list[str]:
    return [name for name, password in passwords.items() if password in text]


def test_the_runs_did_what_the_test_needs(secret_run):
    playbook = secret_run['playbook']
    assert playbook.returncode == 0, (playbook.stdout + playbook.stderr)[-4000:]
    results = json.loads(secret_run['results'].read_text())
    # The XtremIO driver got its options and failed on the unreachable array.
    for key in ('xio_facts', 'xio_volume'):
        assert results[key]['failed'] is True
        assert results[key]['msg'].startswith("Backend 'xtremio' could not be initialised by its driver "
                                              'XtremIOISCSIDriver'), results[key]['msg']
    assert results['lvm_volume']['changed'] is True
    assert results['lvm_facts']['ansible_facts']['cinderlib_backends']['lvm']['volumes']
    assert secret_run['serialized'].returncode == 0, secret_run['serialized'].stderr
    assert 'secret-test' in secret_run['serialized'].stdout
    assert secret_run['inventory'].returncode == 0, secret_run['inventory'].stderr
    assert 'secret-test' in secret_run['inventory'].stdout
    assert '<localhost> EXEC' in playbook.stdout  # really -vvv
    # -vvv shows the invocation: the options are there, their secrets masked
    # (replication_device's inside values too: oslo marks that option secret).
    assert '"san_login": "admin"' in playbook.stdout
    assert '"san_password": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"' in playbook.stdout
    assert '"chap_password": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"' in playbook.stdout


def test_no_password_in_vvv_output(secret_run):
    playbook = secret_run['playbook']
    assert _hits(playbook.stdout + playbook.stderr, secret_run['passwords']) == []


def test_no_password_in_the_state_store_files(secret_run):
    files = [p for p in secret_run['store_dir'].iterdir() if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        assert [n for n, pw in secret_run['passwords'].items() if pw.encode() in data] == [], path


def test_no_password_in_facts_results_serialized_output_or_inventory(secret_run):
    texts = {
        'facts and results': secret_run['results'].read_text(),
        'serialized': secret_run['serialized'].stdout + secret_run['serialized'].stderr,
        'inventory': secret_run['inventory'].stdout + secret_run['inventory'].stderr,
    }
    assert {where: _hits(text, secret_run['passwords']) for where, text in texts.items()} == {
        where: [] for where in texts}


def test_the_driver_log_has_the_drivers_debug_output_and_no_password(secret_run):
    log = secret_run['driver_log']
    assert log.stat().st_mode & 0o777 == 0o600
    text = log.read_text()
    # Both backends' drivers logged at debug level: the LVM commands, the XtremIO driver's failure.
    assert 'lvcreate' in text and 'cinder.volume.drivers.dell_emc.xtremio' in text, text[-3000:]
    assert _hits(text, secret_run['passwords']) == []
