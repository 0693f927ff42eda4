# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""Ceph RBD against LVM through the library, in one run on one machine (the
VM of bench/rbd_vm.sh: the LVM clone copies data through device-mapper, which
the CI host's kernel lacks):

1. a clone of a 10 GiB volume: RBD makes a copy-on-write child of a
   snapshot, the LVM driver (thick, ``lvm_type: default``) copies every byte
   with dd (through a temporary snapshot of the source: the volume group
   holds three times the size); a raw ``dd`` from the source into the clone
   is the floor of the copy;
2. creates (and deletes) per second of 1 GiB volumes on each backend.

Prints one JSON document (the timings and what was checked) on stdout.
Usage: python rbd_clone.py --ceph-env DIR/env --vg VG [--clone-gib 10] [--creates 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time


def read_env(path: str) -> dict:
    with open(path, encoding='utf-8') as handle:
        return dict(line.strip().split('=', 1) for line in handle if '=' in line)


def timed(func, *args, **kwargs):
    start = time.perf_counter()
    result = func(*args, **kwargs)
    return time.perf_counter() - start, result


def rbd_parent(conf: str, pool: str, image: str) -> dict:
    out = subprocess.run(['rbd', '--conf', conf, 'info', '--format', 'json', '%s/%s' % (pool, image)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out).get('parent') or {}


def clone_times(backend, gib: int, repeat: int) -> tuple[list[float], list]:
    """Seconds of each clone of one ``gib`` GiB volume; the clones (deleted by the caller)."""
    source = backend.create_volume(gib, name='bench-source')
    times, clones = [], []
    for i in range(repeat):
        seconds, clone = timed(source.clone, name='bench-clone-%d' % i)
        times.append(seconds)
        clones.append(clone)
    return times, [source] + clones


def creates(backend, count: int) -> dict:
    made = []
    start = time.perf_counter()
    for i in range(count):
        made.append(backend.create_volume(1, name='bench-create-%d' % i))
    created = time.perf_counter() - start
    start = time.perf_counter()
    for volume in made:
        volume.delete()
    deleted = time.perf_counter() - start
    return {'count': count, 'create_s': created, 'delete_s': deleted,
            'creates_per_s': count / created, 'deletes_per_s': count / deleted}


def raw_copy(vg: str, source_id: str, target_id: str, gib: int) -> float:
    """Seconds of the copy the LVM driver makes, with its own dd flags, from
    the source volume's LV into its clone's (already written, so the VM's disk
    needs no more room): the floor of an LVM clone."""
    paths = ['/dev/%s/volume-%s' % (vg, volume_id) for volume_id in (source_id, target_id)]
    start = time.perf_counter()
    subprocess.run(['dd', 'if=%s' % paths[0], 'of=%s' % paths[1], 'bs=1M', 'count=%d' % (gib * 1024),
                    'iflag=direct', 'oflag=direct', 'status=none'], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--ceph-env', required=True)
    parser.add_argument('--vg', required=True)
    parser.add_argument('--clone-gib', type=int, default=10)
    parser.add_argument('--rbd-clones', type=int, default=5)
    parser.add_argument('--lvm-clones', type=int, default=1)
    parser.add_argument('--creates', type=int, default=10)
    args = parser.parse_args()

    from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib

    ceph = read_env(args.ceph_env)
    cinderlib.setup(persistence_config={'storage': 'memory'})
    rbd = cinderlib.Backend(volume_backend_name='bench-rbd', volume_driver='cinder.volume.drivers.rbd.RBDDriver',
                            rbd_pool=ceph['CEPH_POOL'], rbd_user=ceph['CEPH_USER'], rbd_ceph_conf=ceph['CEPH_CONF'])
    lvm = cinderlib.Backend(volume_backend_name='bench-lvm', volume_driver='cinder.volume.drivers.lvm.LVMVolumeDriver',
                            volume_group=args.vg, lvm_type='default', target_helper='lioadm',
                            target_protocol='iscsi', volume_clear='none')
    result = {'clone_gib': args.clone_gib}

    times, made = clone_times(rbd, args.clone_gib, args.rbd_clones)
    parents = [rbd_parent(ceph['CEPH_CONF'], ceph['CEPH_POOL'], 'volume-%s' % clone.id) for clone in made[1:]]
    result['rbd_clone_s'] = times
    result['rbd_clones_are_children'] = all(p.get('image') == 'volume-%s' % made[0].id for p in parents)
    for volume in reversed(made):
        volume.delete()

    times, made = clone_times(lvm, args.clone_gib, args.lvm_clones)
    result['lvm_clone_s'] = times
    result['raw_dd_s'] = raw_copy(args.vg, made[0].id, made[1].id, args.clone_gib)
    for volume in reversed(made):
        volume.delete()

    result['rbd_creates'] = creates(rbd, args.creates)
    result['lvm_creates'] = creates(lvm, args.creates)
    result['rbd_clone_median_s'] = statistics.median(result['rbd_clone_s'])
    result['lvm_clone_median_s'] = statistics.median(result['lvm_clone_s'])
    print(json.dumps(result))


if __name__ == '__main__':
    main()
