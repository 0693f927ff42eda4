# A corpus of bad inputs, each run as a real module invocation against the real
# LVM backend and a SQLite state store: every case must fail (or warn) with its
# exact one-line message, show no traceback and no MODULE FAILURE, and change
# nothing (the volume group's LVs and the store's records are the same before
# and after).
#
# The URL in persistence.connection is no_log (it may hold a password), so
# Ansible masks it as given in messages; only its password-less form shows.
#
# One ansible-playbook run executes the whole corpus: each case is a host of
# the inventory (all local) whose variables name the module and its arguments,
# so that the cases run in parallel (forks); each task ignores errors and
# registers its result, and the results of every host are written to one JSON
# file that the tests below read.
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from functional_helpers import run_adhoc

MODULES = ('cinderlib_volume', 'cinderlib_snapshot', 'cinderlib_backend_facts', 'cinderlib_drivers_info')
FORKS = 6
OTHER_UUID = '3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d'

PLAYBOOK = '''
- name: Bad inputs, one case per host
  hosts: all
  gather_facts: false
  tasks:
%(tasks)s
    - name: Keep the case's result
      ansible.builtin.set_fact:
        case_result: "{{ lookup('ansible.builtin.vars', 'r_' + case_module) }}"

    - name: Write every case's result
      run_once: true
      ansible.builtin.copy:
        dest: "{{ results_file }}"
        content: "{{ dict(hosts | zip(hosts | map('extract', hostvars, 'case_result'))) | to_json }}"
      vars:
        hosts: "{{ ansible_play_hosts_all }}"
        mode: '0600'
'''

TASK = '''
    - name: %(module)s
      cinderlib.storage.%(module)s: "{{ case_args }}"
      when: case_module == '%(module)s'
      register: r_%(module)s
      ignore_errors: true
'''


def lvm_opts(c, **changes):
    backend = dict(c.backend)
    for key, value in changes.items():
        if value is None:
            backend.pop(key, None)
        else:
            backend[key] = value
    return {'backend': backend, 'persistence': c.store}


def vol(c, **args):
    return dict(lvm_opts(c), **args)


def with_backend(c, args, **changes):
    return dict(lvm_opts(c, **changes), **args)


NEW = {'name': 'must-not-exist', 'size': 1}

# (case id, module, arguments from the context, regex the message must match)
CASES = [
    # -- the driver's Python path --------------------------------------------------------------
    ('driver-missing', 'cinderlib_volume', lambda c: with_backend(c, NEW, volume_driver=None),
     r"^Backend 'lvm' needs 'volume_driver': the Python path of a Cinder driver class, such as "
     r"'cinder\.volume\.drivers\.lvm\.LVMVolumeDriver', or its class name alone \('LVMVolumeDriver'\)\.$"),
    ('driver-not-a-class-name', 'cinderlib_volume', lambda c: with_backend(c, NEW, volume_driver='lvm'),
     r"^Backend 'lvm': volume_driver: Cinder has no volume driver class named 'lvm'.*; give the class name "
     r"\(such as LVMVolumeDriver\) or the class path of one of the volume drivers Cinder has\. "
     r"cinderlib\.storage\.cinderlib_drivers_info lists the volume drivers Cinder has on the managed node, "
     r"by class name and class path\.$"),
    ('driver-class-name-ambiguous', 'cinderlib_volume',
     lambda c: with_backend(c, NEW, volume_driver='NexentaISCSIDriver'),
     r"^Backend 'lvm': volume_driver: Several Cinder drivers are named NexentaISCSIDriver: \S+, \S+; give the "
     r"class path of the one meant\.$"),
    ('driver-not-a-string', 'cinderlib_volume', lambda c: with_backend(c, NEW, volume_driver=42),
     r"^Backend 'lvm' needs 'volume_driver'"),
    ('driver-class-typo', 'cinderlib_volume',
     lambda c: with_backend(c, NEW, volume_driver='cinder.volume.drivers.lvm.LVMDriver'),
     r"^Backend 'lvm': module cinder\.volume\.drivers\.lvm has no class 'LVMDriver' "
     r"\(did you mean 'LVMVolumeDriver'\?\)\. cinderlib\.storage\.cinderlib_drivers_info lists the volume "
     r"drivers Cinder has on the managed node, by class name and class path\.$"),
    ('driver-module-missing', 'cinderlib_volume',
     lambda c: with_backend(c, NEW, volume_driver='cinder.volume.drivers.nosuch.Driver'),
     r"^Backend 'lvm': volume_driver 'cinder\.volume\.drivers\.nosuch\.Driver' names no existing module "
     r"\(no module 'cinder\.volume\.drivers\.nosuch'\); give the class path of one of the volume drivers "
     r"Cinder has, .*cinderlib\.storage\.cinderlib_drivers_info lists the volume drivers"),
    ('driver-package-missing', 'cinderlib_backend_facts',
     lambda c: lvm_opts(c, volume_driver='nosuchpackage.Driver'),
     r"^Backend 'lvm': volume_driver 'nosuchpackage\.Driver' names no existing module \(no module "
     r"'nosuchpackage'\)"),
    ('drivers-info-unknown-class', 'cinderlib_drivers_info', lambda c: {'driver': 'LVMDriver'},
     r"^Cinder has no volume driver class named 'LVMDriver' \(did you mean .*'LVMVolumeDriver'.*\); give the "
     r"class name \(such as LVMVolumeDriver\) or the class path of one of the volume drivers Cinder has\. "
     r"cinderlib\.storage\.cinderlib_drivers_info lists the volume drivers Cinder has on the managed node, "
     r"by class name and class path\.$"),
    ('drivers-info-bad-path', 'cinderlib_drivers_info',
     lambda c: {'driver': 'cinder.volume.drivers.lvm.NoDriver'},
     r"^Driver 'cinder\.volume\.drivers\.lvm\.NoDriver': module cinder\.volume\.drivers\.lvm has no class "
     r"'NoDriver'"),

    # -- option types ----------------------------------------------------------------------------
    ('type-integer', 'cinderlib_volume', lambda c: with_backend(c, NEW, reserved_percentage='lots'),
     r"^Invalid configuration for backend 'lvm': reserved_percentage='lots': must be an integer$"),
    ('type-integer-float', 'cinderlib_volume', lambda c: with_backend(c, NEW, volume_clear_size=2.5),
     r"^Invalid configuration for backend 'lvm': volume_clear_size=2\.5: must be an integer$"),
    ('type-maximum', 'cinderlib_volume', lambda c: with_backend(c, NEW, reserved_percentage=150),
     r"^Invalid configuration for backend 'lvm': reserved_percentage=150: must be at most 100$"),
    ('type-string-maximum', 'cinderlib_volume', lambda c: with_backend(c, NEW, volume_clear_size='2048'),
     r"^Invalid configuration for backend 'lvm': volume_clear_size='2048': must be at most 1024$"),
    ('type-port', 'cinderlib_volume', lambda c: with_backend(c, NEW, target_port=70000),
     r"^Invalid configuration for backend 'lvm': target_port=70000: must be at most 65535$"),
    ('type-boolean', 'cinderlib_volume', lambda c: with_backend(c, NEW, lvm_suppress_fd_warnings='maybe'),
     r"^Invalid configuration for backend 'lvm': lvm_suppress_fd_warnings='maybe': must be a boolean \(true/false, "
     r"yes/no, on/off or 1/0\)$"),
    ('type-list', 'cinderlib_volume', lambda c: with_backend(c, NEW, target_secondary_ip_addresses={'a': 1}),
     r"^Invalid configuration for backend 'lvm': target_secondary_ip_addresses=\{'a': 1\}: must be a list "
     r"\(or a comma-separated string\)$"),
    ('type-string', 'cinderlib_volume', lambda c: with_backend(c, NEW, volume_group=['a', 'b']),
     r"^Invalid configuration for backend 'lvm': volume_group=\['a', 'b'\]: must be a string$"),
    ('type-pattern', 'cinderlib_volume', lambda c: with_backend(c, NEW, max_over_subscription_ratio='lots'),
     r"^Invalid configuration for backend 'lvm': max_over_subscription_ratio='lots': must match the regular "
     r"expression"),
    ('type-secret-redacted', 'cinderlib_volume', lambda c: with_backend(c, NEW, chap_password=['Xy7-s3cr3t']),
     r"^Invalid configuration for backend 'lvm': chap_password=\*{8}: must be a string$"),

    # -- choices -------------------------------------------------------------------------------------
    ('choice-lvm-type', 'cinderlib_volume', lambda c: with_backend(c, NEW, lvm_type='thick'),
     r'^Invalid configuration for backend \'lvm\': lvm_type=\'thick\': must be one of: "default", "thin", '
     r'"auto"$'),
    ('choice-target-helper', 'cinderlib_volume', lambda c: with_backend(c, NEW, target_helper='iscsiadm'),
     r"^Invalid configuration for backend 'lvm': target_helper='iscsiadm': must be one of: \"tgtadm\", "
     r"\"lioadm\""),
    ('choice-target-protocol', 'cinderlib_snapshot',
     lambda c: with_backend(c, {'volume': 'existing', 'name': 's1'}, target_protocol='fc'),
     r"^Invalid configuration for backend 'lvm': target_protocol='fc': must be one of: \"iscsi\""),
    ('choice-volume-clear', 'cinderlib_backend_facts', lambda c: lvm_opts(c, volume_clear='shred'),
     r"^Invalid configuration for backend 'lvm': volume_clear='shred': must be one of: \"none\", \"zero\"$"),
    ('every-problem-at-once', 'cinderlib_volume',
     lambda c: with_backend(c, NEW, lvm_type='thick', volume_grup='x', reserved_percentage=101),
     r"^Invalid configuration for backend 'lvm': lvm_type='thick': must be one of: .*; unknown option "
     r"'volume_grup' \(did you mean 'volume_group'.*\); reserved_percentage=101: must be at most 100$"),
    ('state-choice', 'cinderlib_volume', lambda c: vol(c, name='existing', state='gone'),
     r'^value of state must be one of: present, absent, unmanaged, got: gone$'),

    # -- unknown options -----------------------------------------------------------------------------
    ('unknown-option', 'cinderlib_volume', lambda c: with_backend(c, NEW, volume_grup='x'),
     r"^Invalid configuration for backend 'lvm': unknown option 'volume_grup' \(did you mean "
     r"'volume_group'.*\)$"),
    ('unknown-option-no-match', 'cinderlib_backend_facts', lambda c: lvm_opts(c, zzz_qqq=1),
     r"^Invalid configuration for backend 'lvm': unknown option 'zzz_qqq'$"),
    ('unknown-warn-other-fails', 'cinderlib_volume',
     lambda c: dict(with_backend(c, NEW, lvm_typo='thin', lvm_type='thick'), unknown_options='warn'),
     r"^Invalid configuration for backend 'lvm': lvm_type='thick': must be one of: .*; unknown option 'lvm_typo' "
     r"\(did you mean 'lvm_type'\?\)$"),
    ('unknown-options-choice', 'cinderlib_volume', lambda c: dict(vol(c, **NEW), unknown_options='maybe'),
     r'^value of unknown_options must be one of: error, warn, got: maybe$'),

    # -- sizes -------------------------------------------------------------------------------------------
    ('size-zero', 'cinderlib_volume', lambda c: vol(c, name='must-not-exist', size=0),
     r'^Invalid size 0: a volume needs at least 1 GiB\.$'),
    ('size-negative', 'cinderlib_volume', lambda c: vol(c, name='must-not-exist', size=-5),
     r'^Invalid size -5: a volume needs at least 1 GiB\.$'),
    ('size-unit', 'cinderlib_volume', lambda c: vol(c, name='must-not-exist', size='10Q'),
     r"^Invalid size '10Q': use a whole number of GiB \(10\) or a number with a unit"),
    ('size-words', 'cinderlib_volume', lambda c: vol(c, name='must-not-exist', size='ten'),
     r"^Invalid size 'ten': use a whole number of GiB"),
    ('size-boolean', 'cinderlib_volume', lambda c: vol(c, name='must-not-exist', size=True),
     r'^Invalid size True: use a whole number of GiB'),
    ('size-shrink', 'cinderlib_volume', lambda c: vol(c, name='existing', size=1),
     r"^Volume 'existing' on backend 'lvm' is 2 GiB; size=1 would shrink it, which Cinder drivers can't do\. "
     r"Set size to 2 GiB or more, or size_policy=at_least to only grow volumes smaller than size; nothing was "
     r"changed\.$"),
    ('size-policy-choice', 'cinderlib_volume', lambda c: vol(c, name='existing', size=1, size_policy='grow'),
     r'^value of size_policy must be one of: exact, at_least, got: grow$'),
    ('size-missing', 'cinderlib_volume', lambda c: vol(c, name='must-not-exist'),
     r"^Volume 'must-not-exist' does not exist on backend 'lvm': size is required to create it \(or "
     r"source_volume / source_snapshot\)\.$"),

    # -- names -------------------------------------------------------------------------------------------
    ('name-empty', 'cinderlib_volume', lambda c: vol(c, name='', size=1),
     r'^name is empty; give a name such as data01, or leave name out\.$'),
    ('name-too-long', 'cinderlib_volume', lambda c: vol(c, name='n' * 256, size=1),
     r'^name is 256 characters long; use at most 255\.$'),
    ('name-newline', 'cinderlib_volume', lambda c: vol(c, name='bad\nname', size=1),
     r"^name 'bad\\nname' contains the control character '\\n' \(a newline, tab\.\.\.\); remove it\.$"),
    ('name-missing', 'cinderlib_volume', lambda c: vol(c, size=1),
     r'^one of the following is required: name, id, volumes$'),
    ('volumes-and-name', 'cinderlib_volume', lambda c: vol(c, name='a', volumes=[{'name': 'b'}], size=1),
     r'^parameters are mutually exclusive: volumes\|name$'),
    ('volumes-bad-item', 'cinderlib_volume', lambda c: vol(c, volumes=[{'name': 'ok1'}, {'name': 'ok2', 'size': -1}]),
     r"^volumes\[1\] 'ok2': Invalid size -1: a volume needs at least 1 GiB\.$"),
    ('volumes-twice', 'cinderlib_volume', lambda c: vol(c, size=1, volumes=[{'name': 'ok1'}, {'name': 'ok1'}]),
     r"^volumes\[1\] 'ok1': volume 'ok1' is already volumes\[0\]; list each volume once\.$"),
    ('snapshot-name-tab', 'cinderlib_snapshot', lambda c: vol(c, volume='existing', name='snap\tshot'),
     r"^name 'snap\\tshot' contains the control character '\\t'"),
    ('snapshot-volume-empty', 'cinderlib_snapshot', lambda c: vol(c, volume='', name='s1'),
     r'^volume is empty; give a name such as data01, or leave volume out\.$'),

    # -- ids -------------------------------------------------------------------------------------------
    ('id-not-uuid', 'cinderlib_volume', lambda c: vol(c, name='must-not-exist', id='vol-1', size=1),
     r"^id 'vol-1' is not a UUID \(such as [0-9a-f-]{36}\); give a UUID, or set non_uuid_ids=true to allow "
     r"other ids\.$"),
    ('id-not-uuid-absent', 'cinderlib_volume', lambda c: vol(c, id='nope', state='absent'),
     r"^id 'nope' is not a UUID"),
    ('id-of-another-volume', 'cinderlib_volume', lambda c: vol(c, name='must-not-exist', id=c.existing_id, size=1),
     r"^Volume id %(existing_id)s already belongs to volume 'existing' on backend 'lvm'; use another id for "
     r"'must-not-exist'\.$"),
    ('id-mismatch', 'cinderlib_volume', lambda c: vol(c, name='existing', id=OTHER_UUID, size=2),
     r"^Volume 'existing' on backend 'lvm' has id %(existing_id)s, not " + OTHER_UUID + r'; remove id or fix it\.$'),

    # -- sources -------------------------------------------------------------------------------------------
    ('source-volume-missing', 'cinderlib_volume', lambda c: vol(c, name='must-not-exist', source_volume='nosuch'),
     r"^source_volume: volume 'nosuch' is not known on backend 'lvm'; give the name or id of an existing "
     r"volume\.$"),
    ('source-snapshot-missing', 'cinderlib_volume',
     lambda c: vol(c, name='must-not-exist', source_snapshot='nosuch'),
     r"^source_snapshot: snapshot 'nosuch' is not known on backend 'lvm'; give the name or id of an existing "
     r"snapshot\.$"),
    ('sources-exclusive', 'cinderlib_volume',
     lambda c: vol(c, name='must-not-exist', source_volume='existing', source_snapshot='s'),
     r'^parameters are mutually exclusive: source_volume\|source_snapshot$'),
    ('source-clone-smaller', 'cinderlib_volume',
     lambda c: vol(c, name='must-not-exist', source_volume='existing', size=1),
     r"^A clone of volume 'existing' can't be smaller than its 2 GiB; set size to 2 or more, or "
     r"size_policy=at_least\.$"),
    ('snapshot-volume-missing', 'cinderlib_snapshot', lambda c: vol(c, volume='nosuch', name='s1'),
     r"^Can't snapshot volume 'nosuch': it is not known on backend 'lvm'; give the name or id of an existing "
     r"volume\.$"),

    # -- persistence ---------------------------------------------------------------------------------------
    ('store-unknown-dialect', 'cinderlib_volume',
     lambda c: dict(vol(c, **NEW), persistence={'connection': 'nosuchdb://host/db'}),
     r"^Can't open the state store nosuchdb://host/db: Can't load plugin: sqlalchemy\.dialects:nosuchdb$"),
    ('store-not-a-url', 'cinderlib_volume',
     lambda c: dict(vol(c, **NEW), persistence={'connection': 'not a url'}),
     r"^Can't open the state store not a url: Could not parse SQLAlchemy URL from given URL string$"),
    ('store-unwritable-path', 'cinderlib_backend_facts',
     lambda c: dict(lvm_opts(c), persistence={'connection': 'sqlite:////proc/no/such/state.db'}),
     r"^Can't open the state store sqlite:////proc/no/such/state\.db: \[Errno 2\] No such file or directory: "
     r"'/proc/no'$"),
    ('store-refused', 'cinderlib_volume',
     lambda c: dict(vol(c, **NEW), persistence={'connection': 'postgresql+psycopg2://u:Pw-9z1@127.0.0.1:9/db',
                                                'retry_window': 0}),
     r"^Can't open the state store postgresql\+psycopg2://u:\*{8}@127\.0\.0\.1:9/db: it is unreachable "
     r"\(persistence\.retry_window is 0: tried once\): "
     r"\(psycopg2\.OperationalError\) connection to server at \"127\.0\.0\.1\", port 9 failed: Connection refused"),
    ('store-retry-window-negative', 'cinderlib_volume',
     lambda c: dict(vol(c, **NEW), persistence=dict(c.store, retry_window=-1)),
     r"^persistence\.retry_window must be a number of seconds, 0 or more \(0: try the state store once\), "
     r"not -1\.0\.$"),
    ('store-retry-window-not-a-number', 'cinderlib_volume',
     lambda c: dict(vol(c, **NEW), persistence=dict(c.store, retry_window='soon')),
     r"^argument 'retry_window' is of type (str|<class 'str'>) found in 'persistence'\. and we were unable to "
     r"convert to float: "),
    ('store-extra-option', 'cinderlib_volume',
     lambda c: dict(vol(c, **NEW), persistence={'storage': 'memory', 'connection': 'sqlite://'}),
     r"^Unknown persistence option\(s\) for storage 'memory': connection\.$"),
    ('store-storage-choice', 'cinderlib_volume',
     lambda c: dict(vol(c, **NEW), persistence={'storage': 'redis'}),
     r'^value of storage must be one of: db, memory_db, memory, got: redis found in persistence$'),

    # -- config files and backend names ------------------------------------------------------------------
    ('config-file-missing', 'cinderlib_volume',
     lambda c: dict(NEW, backend='lvm', config_file='/nonexistent/backends.yml', persistence=c.store),
     r"^Can't read config_file /nonexistent/backends\.yml: No such file or directory\.$"),
    ('config-file-bad-yaml', 'cinderlib_volume',
     lambda c: dict(NEW, backend='lvm', config_file=c.files['bad_yaml'], persistence=c.store),
     r'^config_file .*/bad\.yml is not valid YAML: '),
    ('config-file-no-backends', 'cinderlib_backend_facts',
     lambda c: dict(backend='lvm', config_file=c.files['no_backends'], persistence=c.store),
     r"^config_file .*/no_backends\.yml must be a YAML mapping with a 'backends:' list \(or a cinder\.conf\)\.$"),
    ('config-file-twice', 'cinderlib_volume',
     lambda c: dict(NEW, backend='lvm', config_file=c.files['twice'], persistence=c.store),
     r"^config_file .*/twice\.yml defines backend 'lvm' twice\.$"),
    ('cinder-conf-no-enabled', 'cinderlib_volume',
     lambda c: dict(NEW, backend='lvm', config_file=c.files['conf_no_enabled'], persistence=c.store),
     r'^config_file .*/no_enabled\.conf is a cinder\.conf without enabled_backends\.$'),
    ('cinder-conf-missing-section', 'cinderlib_volume',
     lambda c: dict(NEW, backend='lvm', config_file=c.files['conf_missing_section'], persistence=c.store),
     r'^config_file .*/missing_section\.conf enables backend section \[lvm2\], which is missing\.$'),
    ('cinder-conf-bad-value', 'cinderlib_volume',
     lambda c: dict(NEW, backend='lvm', config_file=c.files['conf_bad_value'], persistence=c.store),
     r"^Invalid configuration for backend 'lvm': lvm_type='thick': must be one of: .*; "
     r"reserved_percentage='x5': must be an integer$"),
    ('backend-not-in-file', 'cinderlib_volume',
     lambda c: dict(NEW, backend='lvmm', config_file=c.files['good'], persistence=c.store),
     r"^Backend 'lvmm' is not defined in .*/backends\.yml \(did you mean 'lvm'\?\); it defines: lvm\.$"),
    ('backend-name-clash', 'cinderlib_volume', lambda c: with_backend(c, NEW, volume_backend_name='database'),
     r"^Backend name 'database' clashes with a Cinder configuration section; choose another "
     r"volume_backend_name\.$"),
    ('backend-dict-unnamed', 'cinderlib_volume', lambda c: with_backend(c, NEW, volume_backend_name=None),
     r"^The backend dict needs 'volume_backend_name' \(and 'volume_driver'\)\.$"),
    ('backend-not-dict-or-name', 'cinderlib_volume', lambda c: dict(NEW, backend=['lvm'], persistence=c.store),
     r"^backend must be a dict of driver options or the name of a backend in config_file, not \['lvm'\]\.$"),
]


def _lvs(vg: str, env: dict) -> list[str]:
    proc = subprocess.run(['lvs', '--noheadings', '--units', 'b', '-o', 'lv_name,lv_size,lv_attr', vg],
                          capture_output=True, text=True, env=env, check=True)
    return sorted(' '.join(line.split()) for line in proc.stdout.splitlines() if line.strip())


def _records(db: Path) -> dict:
    conn = sqlite3.connect(str(db))
    try:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {table: sorted(map(repr, conn.execute('SELECT * FROM "%s"' % table))) for table in tables}
    finally:
        conn.close()


def _write_files(root: Path, backend: dict) -> dict:
    import yaml
    files = {
        'good': root / 'backends.yml',
        'bad_yaml': root / 'bad.yml',
        'no_backends': root / 'no_backends.yml',
        'twice': root / 'twice.yml',
        'conf_no_enabled': root / 'no_enabled.conf',
        'conf_missing_section': root / 'missing_section.conf',
        'conf_bad_value': root / 'bad_value.conf',
    }
    files['good'].write_text(yaml.safe_dump({'backends': [backend]}))
    files['bad_yaml'].write_text('backends:\n  - volume_backend_name: lvm\n   bad: [\n')
    files['no_backends'].write_text(yaml.safe_dump({'lvm': backend}))
    files['twice'].write_text(yaml.safe_dump({'backends': [backend, backend]}))
    section = ''.join('%s = %s\n' % (k, v) for k, v in backend.items() if k != 'volume_backend_name')
    files['conf_no_enabled'].write_text('[DEFAULT]\ndebug = false\n\n[lvm]\n' + section)
    files['conf_missing_section'].write_text('[DEFAULT]\nenabled_backends = lvm, lvm2\n\n[lvm]\n' + section)
    bad = section.replace('lvm_type = default', 'lvm_type = thick') + 'reserved_percentage = x5\n'
    files['conf_bad_value'].write_text('[DEFAULT]\nenabled_backends = lvm\n\n[lvm]\n' + bad)
    return {k: str(v) for k, v in files.items()}


@pytest.fixture(scope='module')
def corpus(tmp_path_factory, collections_path, lvm_backend_env):
    root = tmp_path_factory.mktemp('bad_inputs')
    env = dict(os.environ)
    env.update(lvm_backend_env['environment'])
    env.update(ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='false',
               ANSIBLE_INVENTORY_UNPARSED_WARNING='false', ANSIBLE_HOST_KEY_CHECKING='false',
               ANSIBLE_RETRY_FILES_ENABLED='false')
    env['PYTHONPATH'] = os.pathsep.join(p for p in (collections_path, env.get('PYTHONPATH')) if p)
    env['PATH'] = os.pathsep.join([env.get('PATH', ''), '/usr/local/sbin', '/usr/sbin', '/sbin'])
    vg = lvm_backend_env['vg']
    backend = dict(volume_driver='cinder.volume.drivers.lvm.LVMVolumeDriver', volume_group=vg,
                   target_protocol='iscsi', target_helper='lioadm', volume_backend_name='lvm', lvm_type='default',
                   volume_clear='none')
    db = root / 'state.db'
    store = {'storage': 'db', 'connection': 'sqlite:///%s' % db}

    # What the cases find: one 2 GiB volume named 'existing'.
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume',
                                {'backend': backend, 'persistence': store, 'name': 'existing', 'size': 2}, env)
    assert rc == 0 and result.get('changed'), out
    context = SimpleNamespace(backend=backend, store=store, existing_id=result['volume']['id'],
                              files=_write_files(root, backend))

    inventory = {'all': {'hosts': {}, 'vars': {
        'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
        'results_file': str(root / 'results.json')}}}
    for case_id, module, make_args, _message in CASES:
        inventory['all']['hosts'][case_id] = {'case_module': module, 'case_args': make_args(context)}
    (root / 'inventory.json').write_text(json.dumps(inventory))
    playbook = PLAYBOOK % {'tasks': ''.join(TASK % {'module': m} for m in MODULES)}
    (root / 'playbook.yml').write_text(playbook)

    before = (_lvs(vg, env), _records(db))
    started = time.monotonic()
    proc = subprocess.run([str(Path(sys.executable).parent / 'ansible-playbook'), '-i', str(root / 'inventory.json'),
                           '-f', str(FORKS), str(root / 'playbook.yml')],
                          capture_output=True, text=True, env=env, timeout=900, check=False)
    seconds = time.monotonic() - started
    after = (_lvs(vg, env), _records(db))
    output = proc.stdout + proc.stderr
    results_file = root / 'results.json'
    assert results_file.exists(), output[-5000:]
    results = json.loads(results_file.read_text())
    try:
        yield SimpleNamespace(results=results, output=output, before=before, after=after, seconds=seconds,
                              context=context, rc=proc.returncode)
    finally:
        run_adhoc('cinderlib.storage.cinderlib_volume',
                  {'backend': backend, 'persistence': store, 'name': 'existing', 'state': 'absent'}, env)


def test_the_corpus_is_big(corpus):
    assert len(CASES) >= 40
    assert len({case[0] for case in CASES}) == len(CASES)
    # Every case failed as expected (ignored), so the play itself succeeded.
    assert corpus.rc == 0, corpus.output[-3000:]
    # Reported, never asserted: timings depend on the machine and its load.
    print('%d cases in %.0f s' % (len(CASES), corpus.seconds))


def test_no_traceback_and_no_module_failure_in_the_output(corpus):
    assert 'Traceback' not in corpus.output
    assert 'MODULE FAILURE' not in corpus.output


def test_secrets_of_bad_inputs_are_never_shown(corpus):
    # The store password of 'store-refused' and the chap_password of 'type-secret-redacted'.
    text = corpus.output + json.dumps(corpus.results)
    assert 'Pw-9z1' not in text and 'Xy7-s3cr3t' not in text


def test_nothing_changed(corpus):
    lvs_before, records_before = corpus.before
    lvs_after, records_after = corpus.after
    assert lvs_after == lvs_before
    assert records_after == records_before
    assert any('volume-%s' % corpus.context.existing_id in lv for lv in lvs_after)


@pytest.mark.parametrize('case_id, module, message', [(c[0], c[1], c[3]) for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(corpus, case_id, module, message):
    import re
    result = corpus.results[case_id]
    assert result.get('failed') is True, result
    assert not result.get('changed'), result
    msg = result.get('msg', '')
    pattern = message % {'existing_id': corpus.context.existing_id} if '%(existing_id)s' in message else message
    assert re.search(pattern, msg), msg
    assert '\n' not in msg.strip(), msg
    assert 'Traceback' not in msg and 'MODULE FAILURE' not in msg
    assert 'module_stderr' not in result and 'module_stdout' not in result, result
