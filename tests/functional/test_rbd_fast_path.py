# cinderlib_volume's fast path on a real Ceph cluster: an unchanged task is answered
# from the state store and one read-only open of the image through librados, with no
# Cinder, oslo or SQLAlchemy imported (python -X importtime); whatever the fast path
# can't confirm (an image removed behind the store's back, a keyring the driver would
# refuse, a cluster it can't reach) goes the full path, which reports it as it always did.
from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
from functional_helpers import assert_unchanged_on_the_fast_path, images, rbd

pytestmark = pytest.mark.usefixtures('ceph_cluster')


def closed_port() -> int:
    # A port nothing listens on (free a moment ago): a monitor address that refuses.
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_unchanged_rbd_volume_takes_the_fast_path_and_drift_is_still_reported(
        ceph_cluster, ceph_env, module_runner, tmp_path):
    key = Path(ceph_cluster['CEPH_KEYRING']).read_text().split('key = ', 1)[1].split()[0]
    # This test's own copy of the cluster's conf (it names the same monitor and keyrings),
    # so that it can make the cluster unreachable for this backend only.
    conf = tmp_path / 'ceph.conf'
    reachable = Path(ceph_cluster['CEPH_CONF']).read_text()
    conf.write_text(reachable)
    # The full path's wait for a dead cluster: one attempt of 10 s (Cinder's default is
    # librados' own timeout, three times).
    backend = dict(ceph_cluster['backend'], rbd_ceph_conf=str(conf), rados_connect_timeout=10,
                   rados_connection_retries=1)
    args = {'backend': backend, 'persistence': {'connection': 'sqlite:///%s' % (tmp_path / 'state.db')},
            'name': 'rbd-fast', 'size': 1}
    # The worker off: this test tells the full path by the Cinder imports of the task's own
    # process, which the worker makes in its own (test_fast_path.py runs both ways, on LVM).
    task_env = dict(ceph_env, CINDERLIB_WORKER='0')
    runs = {module: module_runner(task_env, module) for module in ('cinderlib_volume', 'cinderlib_snapshot')}
    results = []

    def task(task_args: dict, check_mode: bool = False, module: str = 'cinderlib_volume') -> tuple[dict, list[str]]:
        result, heavy = runs[module](task_args, check_mode=check_mode)
        results.append(result)
        return result, heavy

    created, heavy = task(args)
    assert created['changed'] is True, created
    assert 'cinder' in heavy  # a create needs the driver
    image = 'volume-%s' % created['volume']['id']
    spec = '%s/%s' % (ceph_cluster['CEPH_POOL'], image)
    assert image in images(ceph_cluster)

    assert_unchanged_on_the_fast_path(task, args, 'volume', created['volume'])

    # A configuration no full run accepted is checked by the full path, even for an unchanged volume.
    typo, heavy = task(dict(args, backend=dict(backend, rbd_pol='volumes')))
    assert typo.get('failed') and "unknown option 'rbd_pol'" in typo['msg'], typo
    assert 'cinder' in heavy

    # Grown behind the store's back: still at least the requested size, nothing to change.
    assert rbd(ceph_cluster, 'resize', '--size', '2G', spec).returncode == 0
    grown, heavy = task(args)
    assert grown['changed'] is False and grown['volume'] == created['volume'] and heavy == [], grown

    # A snapshot's unchanged task takes the same fast path (its volume's image is looked at).
    snap_args = {'backend': backend, 'persistence': args['persistence'], 'volume': 'rbd-fast', 'name': 'rbd-snap'}
    snapped, heavy = task(snap_args, module='cinderlib_snapshot')
    assert snapped['changed'] is True and 'cinder' in heavy, snapped
    assert_unchanged_on_the_fast_path(task, snap_args, 'snapshot', snapped['snapshot'], module='cinderlib_snapshot')
    unsnapped, _heavy = task(dict(snap_args, state='absent'), module='cinderlib_snapshot')
    assert unsnapped['changed'] is True, unsnapped

    # The keyring path is masked in what a full run remembers, so another path is the same
    # validated configuration: the probe checks the file as the driver's setup does, and the
    # full path reports it.
    no_keyring, heavy = task(dict(args, backend=dict(backend, rbd_keyring_conf=str(tmp_path / 'none.keyring'))))
    assert no_keyring.get('failed'), no_keyring
    assert no_keyring['msg'].startswith("Backend 'ceph' could not be initialised") and \
        'rbd_keyring_conf' in no_keyring['msg'], no_keyring
    assert 'cinder' in heavy

    # A cluster this backend can't reach: the fast path gives up and the full path fails,
    # saying so, as it always did.
    conf.write_text(re.sub(r'(?m)^mon host = .*$', 'mon host = [v2:127.0.0.1:%d]' % closed_port(), reachable))
    unreachable, heavy = task(args)
    assert unreachable.get('failed'), unreachable
    assert unreachable['msg'].startswith("Backend 'ceph' could not be initialised") and \
        'Error connecting to ceph cluster' in unreachable['msg'] and 'Traceback' not in unreachable['msg'], unreachable
    assert 'cinder' in heavy
    conf.write_text(reachable)

    # Removed behind the store's back: reported, not recreated, as the full path always did.
    assert rbd(ceph_cluster, 'rm', spec).returncode == 0
    for check_mode in (False, True):
        gone, heavy = task(args, check_mode=check_mode)
        assert gone.get('failed'), gone
        assert "is in the state store but not on backend 'ceph'" in gone['msg']
        assert 'cinder' in heavy
    assert image not in images(ceph_cluster)

    removed, _heavy = task(dict(args, state='absent'))
    assert removed['changed'] is True, removed
    assert_unchanged_on_the_fast_path(task, dict(args, state='absent'))
    assert images(ceph_cluster) == []
    assert key not in json.dumps(results)
