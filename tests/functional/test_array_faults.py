# Issue 19, fault 5: the array API misbehaves. The real Cinder 29 drivers
# (XtremIO, and Kaminario through the real krest client) talk HTTPS to the
# simulators of tests/simulators, which answer late, answer HTTP 500/503,
# drop the connection (before the work, or after it: a lost answer) or hold
# a request past driver_timeout, on chosen calls. Each test runs the module
# as Ansible does and asserts what is left on the array, in the state store
# and in the output, then that running the task again converges.
from __future__ import annotations

import json
import os
import time

import pytest
from functional_helpers import KAMINARIO_SEED, XTREMIO_SEED, run_adhoc, store_volumes

from ansible_collections.cinderlib.storage.tests.simulators.base import Fault

# XtremIO retries "system is busy" answers. Cinder 29's driver hands its two
# options to cinder.utils.retry swapped: xtremio_array_busy_retry_count is
# the interval and xtremio_array_busy_retry_interval the number of attempts
# (the defaults, 5 and 5, hide it). Here: 5 attempts, 1 s apart.
XTREMIO = dict(XTREMIO_SEED, xtremio_array_busy_retry_count=1, xtremio_array_busy_retry_interval=5)
SECRETS = (XTREMIO_SEED['san_password'], KAMINARIO_SEED['san_password'])
XTREMIO_VOLUMES = r'/types/volumes'
K2_VOLUMES = r'^/api/v2/volumes$'


@pytest.fixture
def env(collections_path) -> dict:
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_NOCOLOR='1',
                ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false')


def task(tmp_path, seed: dict, server, **extra) -> dict:
    return dict({'backend': dict(seed, san_ip=server.address), 'name': 'data', 'size': 1,
                 'persistence': {'storage': 'db', 'connection': 'sqlite:///%s' % (tmp_path / 'state.db')}}, **extra)


def records(tmp_path) -> list[tuple[str, str]]:
    """(display name, status) of every volume the state store holds."""
    path = tmp_path / 'state.db'
    if not path.exists():
        return []
    return sorted((r['display_name'], r['status']) for r in store_volumes('sqlite:///%s' % path))


def on_array(api) -> list[str]:
    """The ids of the volumes the array has (XtremIO names them by id, Kaminario 'cv-<id>')."""
    return sorted(v['name'].removeprefix('cv-') for v in api.objects['volumes'].values())


def run(args: dict, env: dict) -> tuple[int, dict, str]:
    rc, result, raw = run_adhoc('cinderlib.storage.cinderlib_volume', args, env)
    for secret in SECRETS:
        assert secret not in raw
    return rc, result, raw


def assert_converges(tmp_path, api, args: dict, env: dict) -> None:
    """Running the task again creates the volume once; a third run changes nothing."""
    rc, result, raw = run(args, env)
    assert rc == 0 and result['changed'], raw
    assert records(tmp_path) == [('data', 'available')]
    assert on_array(api) == [result['volume']['id']]
    rc, result, raw = run(args, env)
    assert rc == 0 and not result['changed'], raw


# -- XtremIO: errors are not retried by its driver, except "system is busy" ------------
def test_xtremio_latency_is_waited_out(xtremio, tmp_path, env):
    api, server = xtremio
    fault = api.inject(Fault('latency', method='POST', path=XTREMIO_VOLUMES, seconds=3))
    started = time.monotonic()
    rc, result, raw = run(task(tmp_path, XTREMIO, server), env)
    assert rc == 0 and result['changed'], raw
    assert fault.hits == 1 and time.monotonic() - started >= 3
    assert records(tmp_path) == [('data', 'available')]
    assert on_array(api) == [result['volume']['id']]


def test_xtremio_busy_array_is_retried_as_its_driver_does(xtremio, tmp_path, env):
    api, server = xtremio
    fault = api.inject(Fault('status', method='POST', path=XTREMIO_VOLUMES, status=400, times=2,
                             message='system_is_busy'))
    rc, result, raw = run(task(tmp_path, XTREMIO, server), env)
    assert rc == 0 and result['changed'], raw
    assert fault.hits == 2
    assert [r for r in api.requests if r[0] == 'POST' and r[1].endswith('/volumes')] == [
        ('POST', '/api/json/v2/types/volumes')] * 3
    assert records(tmp_path) == [('data', 'available')]


@pytest.mark.parametrize('fault, reported', [
    (Fault('status', method='POST', path=XTREMIO_VOLUMES, status=503),
     'Bad response from XMS, {"message": "simulated HTTP 503"'),
    (Fault('status', method='POST', path=XTREMIO_VOLUMES, status=500),
     'Bad response from XMS, {"message": "simulated HTTP 500"'),
    (Fault('drop', method='POST', path=XTREMIO_VOLUMES), 'Remote end closed connection without response'),
    # The array made the volume, the answer was lost: the clean-up deletes it.
    (Fault('drop', method='POST', path=XTREMIO_VOLUMES, after_work=True),
     'Remote end closed connection without response'),
], ids=['503', '500', 'dropped', 'answer-lost'])
def test_xtremio_failed_create_leaves_nothing_and_a_rerun_creates(xtremio, tmp_path, env, fault, reported):
    api, server = xtremio
    api.inject(fault)
    args = task(tmp_path, XTREMIO, server)
    rc, result, raw = run(args, env)
    assert rc != 0, raw
    assert result['msg'].startswith("Failed to create volume 'data' on backend 'xtremio': "), raw
    assert reported in result['msg'] and result['msg'].endswith('Nothing was left behind.'), raw
    assert fault.hits == 1
    assert records(tmp_path) == [] and on_array(api) == []
    assert_converges(tmp_path, api, args, env)


def test_xtremio_array_down_for_the_clean_up_too_is_left_as_an_error(xtremio, tmp_path, env):
    api, server = xtremio
    fault = api.inject(Fault('status', status=503, times=None))  # every request
    args = task(tmp_path, XTREMIO, server)
    rc, result, raw = run(args, env)
    assert rc != 0, raw
    # Initialising the backend already asks the array: nothing was recorded.
    assert "Backend 'xtremio' could not be initialised by its driver" in result['msg'], raw
    assert records(tmp_path) == []

    fault.path, fault.method = XTREMIO_VOLUMES, ''  # the create and its clean-up fail, the rest answers
    rc, result, raw = run(args, env)
    assert rc != 0, raw
    assert result['msg'].startswith("Failed to create volume 'data' on backend 'xtremio': Bad response from XMS"), raw
    assert "Cleaning up failed too (Failed to delete volume 'data' on backend 'xtremio'" in result['msg'], raw
    assert result['msg'].endswith("is recorded with status 'error_deleting' and state=absent removes it."), raw
    # Never 'available' for a volume the array does not have.
    assert records(tmp_path) == [('data', 'error_deleting')] and on_array(api) == []
    rc, result, raw = run(args, env)
    assert rc != 0 and "has status 'error_deleting' in the state store" in result['msg'], raw

    api.faults.clear()
    rc, result, raw = run(dict(args, state='absent'), env)
    assert rc == 0 and result['changed'], raw
    assert records(tmp_path) == []
    assert_converges(tmp_path, api, args, env)


# -- Kaminario: krest retries HTTP 5xx and connection errors, 20 s apart, for 10 min ----
def test_kaminario_503_and_a_dropped_connection_are_retried_as_krest_does(kaminario, tmp_path, env):
    api, server = kaminario
    unavailable = api.inject(Fault('status', method='POST', path=K2_VOLUMES, status=503))
    dropped = api.inject(Fault('drop', method='POST', path=r'^/api/v2/volume_groups$'))
    rc, result, raw = run(task(tmp_path, KAMINARIO_SEED, server), env)
    assert rc == 0 and result['changed'], raw
    assert unavailable.hits == 1 and dropped.hits == 1
    posts = [path for method, path in api.requests if method == 'POST']
    assert posts.count('/api/v2/volumes') == 2 and posts.count('/api/v2/volume_groups') == 2
    assert records(tmp_path) == [('data', 'available')]
    assert on_array(api) == [result['volume']['id']]


# -- both: a call that never returns ------------------------------------------------
@pytest.mark.parametrize('array, seed, path', [('xtremio', XTREMIO, XTREMIO_VOLUMES),
                                               ('kaminario', KAMINARIO_SEED, K2_VOLUMES)])
def test_hung_call_is_bounded_by_driver_timeout(request, tmp_path, env, array, seed, path):
    api, server = request.getfixturevalue(array)
    # Neither client sets a timeout: without driver_timeout the task would wait out the hang,
    # longer than run_adhoc waits for it.
    fault = api.inject(Fault('hang', method='POST', path=path, seconds=900))
    args = task(tmp_path, seed, server, driver_timeout=4)
    rc, result, raw = run(args, env)
    assert rc != 0, raw
    assert result['msg'] == ("Failed to create volume 'data' on backend '%s': the driver did not return within "
                             "4 seconds (driver_timeout); what it had done by then on the backend is unknown. "
                             "Nothing was left behind." % seed['volume_backend_name']), raw
    assert fault.hits == 1
    assert records(tmp_path) == [] and on_array(api) == []
    if array == 'kaminario':
        assert not api.objects['volume_groups'], json.dumps(api.objects['volume_groups'])
    assert_converges(tmp_path, api, args, env)
