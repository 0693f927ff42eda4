# cinderlib_volume's fast path on real LVM: an unchanged task is answered from the
# state store and one lvs, with no Cinder, oslo or SQLAlchemy imported (checked with
# python -X importtime), and a volume removed behind the collection's back is still
# reported as the full path reports it.
from __future__ import annotations

import subprocess

import pytest
from functional_helpers import assert_unchanged_on_the_fast_path


@pytest.fixture(params=['worker', 'no-worker'])
def worker_on(request) -> bool:
    """Each test runs with the warm worker and without it."""
    return request.param == 'worker'


@pytest.fixture
def full_path(worker_on):
    """``full_path(heavy, check_mode=False)``: whether a run's imports are those of
    a run that needed the driver. With the worker, the driver runs in the worker and
    the module's own process imports nothing heavy either way; a check-mode task
    never uses the worker (it makes no files on the node, and a worker is some)."""
    return lambda heavy, check_mode=False: heavy == [] if worker_on and not check_mode else 'cinder' in heavy


@pytest.fixture
def module_run(module_runner, run_env, worker_on, worker_root):
    """cinderlib_volume on the test VG (see module_runner), with or without the worker
    (one of the test's own, stopped at its end)."""
    return module_runner(dict(run_env, CINDERLIB_WORKER='1' if worker_on else '0',
                              CINDERLIB_WORKER_DIR=str(worker_root)))


def test_unchanged_volume_takes_the_fast_path_and_a_removed_lv_is_still_reported(
        tmp_path, module_run, full_path, lvm_backend, lvm_backend_env, run_env):
    args = {'backend': lvm_backend, 'persistence': {'connection': 'sqlite:///%s' % (tmp_path / 'state.db')},
            'name': 'fast01', 'size': 1}
    created, heavy = module_run(args)
    assert created['changed'] is True, created
    assert full_path(heavy)  # a create needs the driver

    assert_unchanged_on_the_fast_path(module_run, args, 'volume', created['volume'])

    # A configuration no full run accepted is checked by the full path, even for an unchanged volume.
    typo, heavy = module_run(dict(args, backend=dict(lvm_backend, volume_grup='x')))
    assert typo.get('failed') and "unknown option 'volume_grup'" in typo['msg']

    # Removed behind the collection's back: reported, not recreated, as the full path always did.
    lv = '%s/volume-%s' % (lvm_backend_env['vg'], created['volume']['id'])
    subprocess.run(['lvremove', '-f', lv], env=run_env, capture_output=True, check=True)
    for check_mode in (False, True):
        gone, heavy = module_run(args, check_mode=check_mode)
        assert gone.get('failed'), gone
        assert "is in the state store but not on backend 'lvm'" in gone['msg']
        assert full_path(heavy, check_mode)

    removed, _heavy = module_run(dict(args, state='absent'))
    assert removed['changed'] is True
    assert_unchanged_on_the_fast_path(module_run, dict(args, state='absent'))


def test_volumes_list_in_one_task(tmp_path, module_run, lvm_backend, lvm_backend_env, run_env):
    vg = lvm_backend_env['vg']
    task = {'backend': lvm_backend, 'persistence': {'connection': 'sqlite:///%s' % (tmp_path / 'state.db')},
            'size': 1, 'volumes': [{'name': 'batch01'}, {'name': 'batch02', 'metadata': {'k': 'v'}},
                                   {'name': 'batch03', 'description': 'third'}]}

    def lvs() -> set[str]:
        out = subprocess.run(['lvs', '--noheadings', '-o', 'lv_name', vg], env=run_env, capture_output=True,
                             text=True, check=True)
        return {name for name in out.stdout.split() if name.startswith('volume-')}

    before = lvs()
    predicted, _heavy = module_run(task, check_mode=True)
    assert predicted['changed'] is True and lvs() == before
    assert [v['changed'] for v in predicted['volumes']] == [True] * 3

    created, heavy = module_run(task)
    assert created['changed'] is True, created
    assert [(v['name'], v['state'], v['changed'], v['volume']['size']) for v in created['volumes']] == [
        ('batch01', 'present', True, 1), ('batch02', 'present', True, 1), ('batch03', 'present', True, 1)]
    assert created['volumes'][1]['volume']['metadata'] == {'k': 'v'}
    assert created['volumes'][2]['volume']['description'] == 'third'
    ids = [v['id'] for v in created['volumes']]
    assert lvs() == before | {'volume-%s' % i for i in ids}

    again, heavy = module_run(task)
    assert again['changed'] is False and heavy == [], (again, heavy)
    assert [v['volume'] for v in again['volumes']] == [v['volume'] for v in created['volumes']]

    # A bad item fails the task before anything is done.
    bad, _heavy = module_run(dict(task, volumes=[{'name': 'batch04'}, {'name': 'batch05', 'size': '0'}]))
    assert bad.get('failed') and bad['msg'].startswith("volumes[1] 'batch05': Invalid size '0'")
    dup, _heavy = module_run(dict(task, volumes=[{'name': 'batch04'}, {'name': 'batch04'}]))
    assert dup.get('failed') and "volumes[1] 'batch04': volume 'batch04' is already volumes[0]" in dup['msg']
    assert lvs() == before | {'volume-%s' % i for i in ids}

    # An item that fails at run time is reported; the others are done (items may set their own state).
    mixed, _heavy = module_run(dict(task, volumes=[
        {'name': 'batch02', 'state': 'absent'}, {'name': 'batch05', 'source_volume': 'nowhere'}, {'name': 'batch04'},
        {'name': 'batch01'}]))
    assert mixed.get('failed') and mixed['changed'] is True
    assert mixed['msg'].startswith('1 of 4 volumes failed') and "volumes[1] 'batch05': source_volume" in mixed['msg']
    removed, failed, added, unchanged = mixed['volumes']
    assert removed['changed'] is True and 'volume-%s' % ids[1] not in lvs()
    assert failed['failed'] is True and 'volume' not in failed and "'nowhere'" in failed['msg']
    assert added['changed'] is True and 'volume-%s' % added['id'] in lvs()
    assert unchanged['changed'] is False and unchanged['volume'] == created['volumes'][0]['volume']

    gone, _heavy = module_run(dict(task, state='absent', volumes=[
        {'name': n} for n in ('batch01', 'batch02', 'batch03', 'batch04', 'batch05')]))
    assert [v['changed'] for v in gone['volumes']] == [True, False, True, True, False]
    assert all('volume' not in v for v in gone['volumes'])
    assert lvs() == before
