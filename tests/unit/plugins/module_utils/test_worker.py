# Unit tests of the warm worker's pieces that need no process: settings from
# options and environment, framing, the worker's key, which backends stay warm,
# and the messages a task gets when its run in the worker ends without a result.
# The worker itself runs in tests/functional/test_warm_worker.py.
from __future__ import annotations

import socket

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils import worker, worker_server

LVM = 'cinder.volume.drivers.lvm.LVMVolumeDriver'


@pytest.mark.parametrize('params, environ, expected', [
    ({}, {}, {'enabled': True, 'idle_timeout': 300, 'timeout': 3600}),
    ({}, {'CINDERLIB_WORKER': '1'}, {'enabled': True, 'idle_timeout': 300, 'timeout': 3600}),
    ({'worker': False}, {}, {'enabled': False, 'idle_timeout': 300, 'timeout': 3600}),
    ({}, {'CINDERLIB_WORKER': '0'}, {'enabled': False, 'idle_timeout': 300, 'timeout': 3600}),
    ({}, {'CINDERLIB_WORKER': 'false'}, {'enabled': False, 'idle_timeout': 300, 'timeout': 3600}),
    ({'worker': True}, {'CINDERLIB_WORKER': '0'}, {'enabled': True, 'idle_timeout': 300, 'timeout': 3600}),
    ({'worker': True, 'worker_idle_timeout': 0}, {}, {'enabled': False, 'idle_timeout': 0, 'timeout': 3600}),
    ({'worker': True}, {'CINDERLIB_WORKER_IDLE_TIMEOUT': '0'}, {'enabled': False, 'idle_timeout': 0, 'timeout': 3600}),
    ({'worker': True, 'worker_idle_timeout': 30}, {'CINDERLIB_WORKER_IDLE_TIMEOUT': '0'},
     {'enabled': True, 'idle_timeout': 30, 'timeout': 3600}),
    ({}, {'CINDERLIB_WORKER': 'yes', 'CINDERLIB_WORKER_TIMEOUT': '60', 'CINDERLIB_WORKER_IDLE_TIMEOUT': 'x'},
     {'enabled': True, 'idle_timeout': 300, 'timeout': 60}),
    ({'worker': True, 'worker_timeout': 0}, {}, {'enabled': True, 'idle_timeout': 300, 'timeout': 0}),
])
def test_settings_come_from_the_options_then_the_environment(params, environ, expected):
    assert worker.settings(params, environ) == expected


def test_frames_round_trip_and_a_short_read_is_an_eof():
    left, right = socket.socketpair()
    with left, right:
        message = {'args': '{"ANSIBLE_MODULE_ARGS": {}}', 'env': {'A': 'é' * 1000}}
        worker.send_frame(left, message)
        assert worker.recv_frame(right) == message
        left.sendall(b'\x00\x00\x00\x10{')
        left.close()
        with pytest.raises(EOFError):
            worker.recv_frame(right)


def test_the_key_changes_with_the_code_and_the_path():
    files = {'ansible_collections/x.py': b'a'}
    key = worker.worker_key(files, ['/usr/lib/python3'])
    assert key == worker.worker_key(dict(files), ['/usr/lib/python3'])
    assert key != worker.worker_key({'ansible_collections/x.py': b'b'}, ['/usr/lib/python3'])
    assert key != worker.worker_key(files, ['/other'])
    assert len(key) == 20


def test_the_code_of_a_checkout_is_the_collections_module_utils():
    files, path = worker.code_files()
    base = 'ansible_collections/cinderlib/storage/plugins/module_utils/'
    assert base + 'worker_server.py' in files and base + 'cinderlib/loader.py' in files
    assert 'ansible_collections/__init__.py' in files
    assert not [name for name in files if '/plugins/modules/' in name]
    assert all(p for p in path)


@pytest.mark.parametrize('backend, setup, warm', [
    ({'name': 'lvm', 'config': {'volume_driver': LVM}}, {}, True),
    ({'name': 'lvm', 'config': {'volume_driver': LVM}}, {'coordination_url': 'redis://h'}, False),
    ({'name': 'rbd', 'config': {'volume_driver': 'cinder.volume.drivers.rbd.RBDDriver'}}, {}, False),
    (None, {}, False),
])
def test_backends_kept_warm(backend, setup, warm):
    key = worker_server.warm_key({'setup': setup, 'backend': backend}, {'PATH': '/bin'})
    assert (key is not None) is warm
    if warm:
        assert key != worker_server.warm_key({'setup': setup, 'backend': backend}, {'PATH': '/usr/bin'})
        changed = {'name': 'lvm', 'config': dict(backend['config'], volume_group='other')}
        assert key != worker_server.warm_key({'setup': setup, 'backend': changed}, {'PATH': '/bin'})


def test_messages_when_a_run_ends_without_a_result():
    killed = worker.ended_message({'exit': {'pid': 12, 'status': -9}})
    assert 'pid 12' in killed and 'killed by signal 9 (SIGKILL)' in killed and 'cinderlib_reconcile' in killed
    assert 'exit status 3' in worker.ended_message({'exit': {'pid': 12, 'status': 3}})
    late = worker.ended_message({'exit': {'pid': 12, 'status': -9, 'timeout': 5}})
    assert 'longer than worker_timeout (5 s)' in late and 'Raise worker_timeout' in late


def test_module_source_is_none_outside_a_module_run():
    # pytest's __main__ is no module of the collection: the library used by a script never hands over.
    assert worker.module_source() is None
