# What an operator met in a first afternoon on real LVM (issue 29, point 8), run
# as a playbook runs the modules: size_policy=at_least, decimal sizes, a
# volume_driver given as a class name alone, and the volume_clear hint on LVM
# without device-mapper.
from __future__ import annotations

import subprocess

import pytest
from functional_helpers import lv_names, run_adhoc

LVM_CLASS = 'cinder.volume.drivers.lvm.LVMVolumeDriver'


@pytest.fixture
def opts(tmp_path, lvm_backend) -> dict:
    return {'backend': dict(lvm_backend), 'worker': False,
            'persistence': {'storage': 'db', 'connection': 'sqlite:///%s' % (tmp_path / 'state.db')}}


def lv_size_gib(vg: str, volume_id: str, env: dict) -> float:
    out = subprocess.run(['lvs', '--noheadings', '--units', 'g', '--nosuffix', '-o', 'lv_size',
                          '%s/volume-%s' % (vg, volume_id)], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip())


def one_line(out: str) -> str:
    # Ad hoc, warnings go to stderr, wrapped.
    return ' '.join(out.split())


def volume(opts: dict, env: dict, check: bool = False, **args) -> tuple[int, dict, str]:
    return run_adhoc('cinderlib.storage.cinderlib_volume', dict(opts, **args), env, check=check)


def test_at_least_lets_the_create_play_run_again_after_a_grow(opts, run_env, lvm_backend_env):
    vg = lvm_backend_env['vg']
    rc, result, out = volume(opts, run_env, name='grown', size='1G')
    assert rc == 0 and result['changed'], out
    volume_id = result['volume']['id']
    try:
        rc, result, out = volume(opts, run_env, name='grown', size='2G')
        assert rc == 0 and result['changed'] and result['volume']['size'] == 2, out
        assert lv_size_gib(vg, volume_id, run_env) == 2.0
        # The create play again, as it was written: exact (the default) refuses to shrink...
        rc, result, out = volume(opts, run_env, name='grown', size='1G')
        assert rc != 0 and 'size=1G would shrink it' in result['msg'] and 'size_policy=at_least' in result['msg'], out
        # ...at_least is satisfied by the larger volume: ok, in check mode and for real.
        for check in (True, False):
            rc, result, out = volume(opts, run_env, check=check, name='grown', size='1G', size_policy='at_least')
            assert rc == 0 and result['changed'] is False, out
            assert result['volume']['size'] == 2 and result['volume']['id'] == volume_id
        # at_least still grows a smaller volume (check mode predicts it, changes nothing).
        rc, result, out = volume(opts, run_env, check=True, name='grown', size=3, size_policy='at_least')
        assert rc == 0 and result['changed'] and result['volume']['size'] == 3, out
        assert lv_size_gib(vg, volume_id, run_env) == 2.0
    finally:
        volume(opts, run_env, name='grown', state='absent')
    assert 'volume-%s' % volume_id not in lv_names(vg, run_env)


def test_a_decimal_size_gets_whole_gib_with_a_warning(opts, run_env, lvm_backend_env):
    rc, result, out = volume(opts, run_env, name='decimal', size='1.5 GB')
    try:
        assert rc == 0 and result['changed'] and result['volume']['size'] == 2, out
        assert ("size '1.5 GB' is in decimal units (GB = 10^9 bytes): 1500000000 bytes, 1.40 GiB, so the volume "
                "gets 2 GiB") in one_line(out), out
        assert lv_size_gib(lvm_backend_env['vg'], result['volume']['id'], run_env) == 2.0
    finally:
        volume(opts, run_env, name='decimal', state='absent')


def test_a_class_name_alone_is_the_lvm_driver(opts, run_env, lvm_backend_env):
    by_name = dict(opts, backend=dict(opts['backend'], volume_driver='LVMVolumeDriver'))
    rc, result, out = volume(by_name, run_env, name='by-class-name', size=1)
    assert rc == 0 and result['changed'], out
    try:
        assert 'volume-%s' % result['volume']['id'] in lv_names(lvm_backend_env['vg'], run_env)
        # The same backend, given by class path: the same volume, unchanged.
        rc, again, out = volume(opts, run_env, name='by-class-name', size=1)
        assert rc == 0 and again['changed'] is False and again['volume']['id'] == result['volume']['id'], out
    finally:
        rc, _result, out = volume(by_name, run_env, name='by-class-name', state='absent')
        assert rc == 0, out


def test_volume_clear_without_device_mapper_says_how_to_fix_it(opts, run_env, lvm_backend_env):
    if not lvm_backend_env['metadata_only']:
        pytest.skip('LVM has device-mapper here: the driver can wipe deleted volumes')
    rc, result, out = volume(opts, run_env, name='wiped', size=1)
    assert rc == 0 and result['changed'], out
    volume_id = result['volume']['id']
    zero = dict(opts, backend=dict(opts['backend'], volume_clear='zero'))
    try:
        rc, result, out = volume(zero, run_env, name='wiped', state='absent')
        assert rc != 0, out
        assert 'Volume device file path /dev/mapper/' in result['msg'], out
        assert result['msg'].endswith('set volume_clear: none in the backend\'s options there (deleted volumes '
                                      'are then not wiped).'), out
    finally:
        rc, result, out = volume(opts, run_env, name='wiped', state='absent')
        assert rc == 0, out
    assert 'volume-%s' % volume_id not in lv_names(lvm_backend_env['vg'], run_env)
