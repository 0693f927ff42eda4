#!/usr/bin/python
# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: cinderlib_backend_facts
short_description: Initialise a Cinder-driver storage backend and return its stats and volumes as facts
version_added: 0.1.0
description:
  - Loads the Cinder volume driver named by O(backend) on the managed node (no Cinder services,
    database server or OpenStack needed), runs the driver's start-up checks against the array,
    and returns the backend's capacity stats, pools and the volumes the collection knows on it.
  - Read-only; safe in check mode. With O(reconcile=report), also compares the state store with
    what the backend has and returns the result as RV(reconcile), listing the records that an
    interrupted run left in a transitional state (C(creating), C(deleting), C(extending);
    connections C(connecting), C(disconnecting)), the connections a failed driver call left
    (C(error_connecting), C(error_disconnecting)) and the drift (volumes the backend has that the
    store does not know, records whose volume the backend no longer has).
    M(cinderlib.storage.cinderlib_reconcile) settles them.
  - The facts are set under C(ansible_facts.cinderlib_backends), keyed by backend name. Each
    call sets the backends of that call only.
  - Cinder and os-brick must be importable by the module's Python interpreter. The
    M(cinderlib.storage.cinderlib_backend_facts) module fails with a clear message otherwise;
    the C(cinderlib.storage.runtime) role installs them in a virtual environment and sets the fact
    C(cinderlib_python) for C(ansible_python_interpreter).
author:
  - cinderlib.storage developers (@cinderlib)
extends_documentation_fragment:
  - cinderlib.storage.cinderlib
options:
  refresh_stats:
    description:
      - V(true) asks the driver for its current stats (capacity, volume counts) on every run, as
        C(vgs) or C(ceph df) would show them.
      - V(false) returns the stats the driver read last on this node, without asking it again,
        that is when the backend started in this task, or earlier in the warm worker that serves
        the collection's tasks on this node (see O(worker)). They are read again when an operation on
        this node changed what the backend holds since (a create, delete, extend, clone or
        snapshot); changes made from other nodes, by hand or by other tools are not seen.
        RV(ansible_facts.cinderlib_backends.stats_age) says how old they are.
    type: bool
    default: true
  reconcile:
    description:
      - V(none) compares nothing.
      - V(report) lists the records left in a transitional state and the drift between the state
        store and the backend, and changes nothing. M(cinderlib.storage.cinderlib_reconcile)
        settles those records (and says what it does with each).
      - Drift is checked for LVM-based drivers and Ceph RBD, others report it as C(unsupported).
    type: str
    choices: [none, report]
    default: none
attributes:
  check_mode:
    support: full
    description: The module changes nothing.
  diff_mode:
    support: none
    description: The module changes nothing.
'''

EXAMPLES = r'''
- name: Initialise an LVM backend and gather its facts
  cinderlib.storage.cinderlib_backend_facts:
    backend:
      volume_backend_name: lvm
      volume_driver: cinder.volume.drivers.lvm.LVMVolumeDriver
      volume_group: cinder-volumes
      target_protocol: iscsi
      target_helper: lioadm

- name: Use a backend defined in a config file
  cinderlib.storage.cinderlib_backend_facts:
    backend: lvm
    config_file: /etc/cinderlib/backends.yml

- name: Show the free space of its first pool
  ansible.builtin.debug:
    msg: "{{ ansible_facts.cinderlib_backends.lvm.stats.pools[0].free_capacity_gb }} GiB free"

- name: Show what interrupted runs left, and the drift
  cinderlib.storage.cinderlib_backend_facts:
    backend: lvm
    reconcile: report
  register: lvm_facts

- name: Fail on volumes the store does not know
  ansible.builtin.assert:
    that: lvm_facts.reconcile.drift.unknown_on_backend | length == 0

# Ad-hoc, with the backend in /etc/cinderlib/backends.yml:
#   ansible HOST -b -m cinderlib.storage.cinderlib_backend_facts -a backend=lvm
# or inline, as JSON:
#   ansible HOST -b -m cinderlib.storage.cinderlib_backend_facts \
#     -a '{"backend": {"volume_backend_name": "lvm", "volume_group": "cinder-volumes",
#          "volume_driver": "cinder.volume.drivers.lvm.LVMVolumeDriver"}}'
'''

RETURN = r'''
ansible_facts:
  description: Facts set by the module.
  returned: success
  type: dict
  contains:
    cinderlib_backends:
      description: The backends of this call, keyed by their C(volume_backend_name).
      returned: success
      type: dict
      sample:
        lvm:
          id: lvm
          config: {volume_backend_name: lvm}
          pool_names: [lvm]
          stats_age: 0
          stats:
            driver_version: 3.0.0
            storage_protocol: iSCSI
            vendor_name: Open Source
            volume_backend_name: lvm
            pools:
              - pool_name: lvm
                total_capacity_gb: 4.0
                free_capacity_gb: 3.0
          volumes:
            - id: 0b5e8c7a-6e1e-4f7c-9d4e-4f3bd2a9b0c1
              name: data01
              size: 1
              status: available
              backend: lvm
          serialized: '{"format":"cinderlib.storage/2","class":"Backend","backend":{"volume_backend_name":"lvm"},...}'
      contains:
        id:
          description: The backend's name (its C(volume_backend_name)).
          type: str
        config:
          description:
            - The backend's configuration; only C(volume_backend_name) unless
              O(output_all_backend_info) is set.
          type: dict
        stats:
          description: The driver's capacity stats; drivers reporting no pools get one pool.
          type: dict
        stats_age:
          description:
            - Seconds since the driver read RV(ansible_facts.cinderlib_backends.stats), rounded
              down; C(0) when they were read in this task (always, with O(refresh_stats=true)).
          type: int
        pool_names:
          description: Names of the backend's pools.
          type: list
          elements: str
        volumes:
          description: The volumes the collection knows on this backend, from the state store.
          type: list
          elements: dict
        serialized:
          description:
            - The backend and its volumes, with their snapshots and connections, as a JSON string in
              format C(cinderlib.storage/2) (the library's C(Backend.dumps), as cinderlib's C(dumps)).
            - Load it on another node or into another state store with the library's
              C(cinderlib.load(serialized, save=True)).
            - Holds no credentials unless O(output_all_backend_info) is set.
          type: str
          sample: '{"format":"cinderlib.storage/2","class":"Backend","volumes":[],...}'
reconcile:
  description:
    - The state store compared with the backend, as M(cinderlib.storage.cinderlib_reconcile)
      returns it (see its RV(cinderlib.storage.cinderlib_reconcile#module:transitional) and
      RV(cinderlib.storage.cinderlib_reconcile#module:drift)), with C(mode) V(report) and no
      C(actions).
  returned: when O(reconcile=report)
  type: dict
  sample:
    mode: report
    transitional:
      - {kind: volume, id: 0b5e8c7a-6e1e-4f7c-9d4e-4f3bd2a9b0c1, name: data01, status: creating, size: 1,
         on_backend: true, in_progress: false}
    actions: []
    drift:
      status: checked
      reason: ''
      unknown_on_backend:
        - kind: volume
          id: 5f0d2b8e-2c1f-4a7e-8f53-7d1b0e6c9a41
          backend_name: volume-5f0d2b8e-2c1f-4a7e-8f53-7d1b0e6c9a41
          size: 1
      missing_on_backend: []
'''

from ansible_collections.cinderlib.storage.plugins.module_utils.ansible_module import CinderlibModule
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.reconcile import reconcile


def gather_facts(module: CinderlibModule) -> dict:
    backend = module.backend
    report = reconcile(backend, 'report') if module.params['reconcile'] == 'report' else None
    # Cached stats only when asked for, and never after this node changed the backend since.
    stats = backend.stats(refresh=module.params['refresh_stats'] or backend.stats_outdated)
    facts = {
        'id': backend.id,
        'config': backend.config,
        'stats': stats,
        'stats_age': int(backend.stats_age),
        'pool_names': list(backend.pool_names),
        'volumes': [volume.to_dict() for volume in backend.volumes],
        'serialized': backend.dumps,
    }
    result = {'changed': False, 'ansible_facts': {'cinderlib_backends': {backend.id: facts}}}
    if report is not None:
        result['reconcile'] = report
    return result


def main() -> None:
    module = CinderlibModule(argument_spec=dict(
        refresh_stats=dict(type='bool', default=True),
        reconcile=dict(type='str', default='none', choices=['none', 'report']),
    ))
    module.run(gather_facts)


if __name__ == '__main__':
    main()
