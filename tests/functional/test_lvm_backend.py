# The library and cinderlib_backend_facts on a real LVM volume group.
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from functional_helpers import lv_names, run_adhoc, run_python

SETUP = textwrap.dedent('''\
    from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
    cinderlib.setup(persistence_config={{'storage': 'db', 'connection': 'sqlite:///{db}'}},
                    file_locks_path='{locks}')
''')


def script(tmp_path, body: str) -> str:
    return SETUP.format(db=tmp_path / 'state.db', locks=tmp_path / 'locks') + textwrap.dedent(body)


def test_seed_lvm_example_backends_loop_and_stats(tmp_path, run_env, lvm_backend_env):
    # The seed's code, with only the import line changed (and the two options
    # metadata-only LVM needs).
    seed = script(tmp_path, '''
        lvm = cinderlib.Backend(
            volume_driver='cinder.volume.drivers.lvm.LVMVolumeDriver',
            volume_group='%s',
            iscsi_protocol='iscsi',
            iscsi_helper='lioadm',
            volume_backend_name='lvm_iscsi',
            lvm_type='default', volume_clear='none',
        )

        for backend in cinderlib.Backend.backends.values():
            initialized_msg = '' if backend.initialized else 'not '
            print('Backend %%s is %%sinitialized with configuration: %%s' %%
                  (backend.id, initialized_msg, backend.config))

        from pprint import pprint
        pprint(lvm.stats())
        for vol in lvm.volumes:
            print('Volume %%s has %%s GB' %% (vol.id, vol.size))
        ''' % lvm_backend_env['vg'])
    proc = run_python(seed, run_env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Backend lvm_iscsi is initialized with configuration: {'volume_backend_name': 'lvm_iscsi'}" in out
    for expected in ("'driver_version'", "'pools': [{", "'pool_name': 'lvm_iscsi'", "'storage_protocol': 'iSCSI'",
                     "'total_capacity_gb'", "'free_capacity_gb'", "'vendor_name': 'Open Source'"):
        assert expected in out


def test_output_all_backend_info_shows_the_whole_config(tmp_path, run_env, lvm_backend):
    code = SETUP.replace('file_locks_path=', 'output_all_backend_info=True, file_locks_path=').format(
        db=tmp_path / 'state.db', locks=tmp_path / 'locks') + \
        'print(sorted(cinderlib.Backend(**%r).config))\n' % lvm_backend
    proc = run_python(code, run_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(sorted(lvm_backend))


def test_singleton_same_config_and_conflict(tmp_path, run_env, lvm_backend):
    proc = run_python(script(tmp_path, '''
        cfg = %r
        first = cinderlib.Backend(**cfg)
        again = cinderlib.Backend(**cfg)
        print('same', first is again)
        try:
            cinderlib.Backend(**dict(cfg, volume_clear='zero'))
        except ValueError as exc:
            print('conflict', exc)
        print('driver attribute', first.initialized, first.pool_names)
        ''' % lvm_backend), run_env)
    assert proc.returncode == 0, proc.stderr
    assert 'same True' in proc.stdout
    assert 'conflict Backend named lvm already exists with a different configuration' in proc.stdout
    assert "driver attribute True ('lvm',)" in proc.stdout


def test_volume_lifecycle_on_real_lvm(tmp_path, run_env, lvm_backend, lvm_backend_env):
    vg = lvm_backend_env['vg']
    proc = run_python(script(tmp_path, '''
        import json
        lvm = cinderlib.Backend(**%r)
        vol = lvm.create_volume(1, name='data01', description='d')
        print(json.dumps({'created': vol.id, 'status': vol.status, 'names': [v.display_name for v in lvm.volumes]}))
        ''' % lvm_backend), run_env)
    assert proc.returncode == 0, proc.stderr
    created = json.loads(proc.stdout.strip().splitlines()[-1])
    assert created['status'] == 'available' and created['names'] == ['data01']
    assert 'volume-%s' % created['created'] in lv_names(vg, run_env)

    # Another process finds it in the state store, grows and deletes it.
    proc = run_python(script(tmp_path, '''
        lvm = cinderlib.Backend(**%r)
        [vol] = lvm.volumes_filtered(volume_name='data01')
        vol.extend(2)
        print('extended', vol.size, vol.status)
        vol.delete()
        print('left', lvm.volumes)
        ''' % lvm_backend), run_env)
    assert proc.returncode == 0, proc.stderr
    assert 'extended 2 available' in proc.stdout and 'left []' in proc.stdout
    assert 'volume-%s' % created['created'] not in lv_names(vg, run_env)


def test_two_module_runs_in_two_processes_share_the_store(tmp_path, run_env, lvm_backend, lvm_backend_env):
    persistence = {'storage': 'db', 'connection': 'sqlite:///%s' % (tmp_path / 'state.db')}
    args = {'backend': lvm_backend, 'persistence': persistence}
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts', args, run_env)
    assert rc == 0, out
    facts = result['ansible_facts']['cinderlib_backends']['lvm']
    assert facts['volumes'] == [] and facts['pool_names'] == ['lvm'] and facts['id'] == 'lvm'
    assert facts['config'] == {'volume_backend_name': 'lvm'}
    assert facts['stats']['pools'][0]['total_capacity_gb'] > 0

    proc = run_python(script(tmp_path, 'cinderlib.Backend(**%r).create_volume(1, name="shared")\n' % lvm_backend),
                      run_env)
    assert proc.returncode == 0, proc.stderr

    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts', args, run_env)
    assert rc == 0, out
    [volume] = result['ansible_facts']['cinderlib_backends']['lvm']['volumes']
    assert volume['name'] == 'shared' and volume['size'] == 1 and volume['status'] == 'available'
    assert volume['backend'] == 'lvm'

    proc = run_python(script(tmp_path, '''
        lvm = cinderlib.Backend(**%r)
        for vol in lvm.volumes:
            vol.delete()
        ''' % lvm_backend), run_env)
    assert proc.returncode == 0, proc.stderr


def test_adhoc_by_name_from_a_config_file(tmp_path, run_env, lvm_backend):
    import yaml
    config = tmp_path / 'backends.yml'
    config.write_text(yaml.safe_dump({'backends': [lvm_backend]}))
    rc, result, out = run_adhoc(
        'cinderlib.storage.cinderlib_backend_facts',
        'backend=lvm config_file=%s persistence={"connection":"sqlite:///%s"}' % (config, tmp_path / 's.db'),
        run_env)
    assert rc == 0, out
    assert result['ansible_facts']['cinderlib_backends']['lvm']['pool_names'] == ['lvm']


def test_adhoc_with_the_backend_as_json(tmp_path, run_env, lvm_backend):
    args = 'backend=%s persistence={"storage":"memory_db"}' % json.dumps(json.dumps(lvm_backend))
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts', args, run_env)
    assert rc == 0, out
    assert 'lvm' in result['ansible_facts']['cinderlib_backends']


def test_bad_option_fails_clearly_through_the_module(tmp_path, run_env, lvm_backend):
    args = {'backend': dict(lvm_backend, volume_grup='x'), 'persistence': {'storage': 'memory_db'}}
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts', args, run_env)
    assert rc != 0
    assert result['msg'].startswith("Invalid configuration for backend 'lvm': unknown option 'volume_grup'")
    assert 'Traceback' not in result['msg'] and 'MODULE FAILURE' not in out


@pytest.fixture(scope='module')
def python_without_cinder(tmp_path_factory) -> str:
    venv = tmp_path_factory.mktemp('nocinder') / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    return str(venv / 'bin' / 'python')


def test_module_on_a_python_without_cinder_says_how_to_fix_it(run_env, lvm_backend, python_without_cinder):
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts', {'backend': lvm_backend}, run_env,
                                interpreter=python_without_cinder)
    assert rc != 0, out
    assert 'MODULE FAILURE' not in out and 'Traceback' not in out
    assert 'Failed to import the required Python library (cinder and os-brick)' in result['msg']
    assert 'ansible_python_interpreter' in result['msg'] and 'cinderlib_python' in result['msg']
