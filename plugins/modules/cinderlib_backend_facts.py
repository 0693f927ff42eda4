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
  - Read-only; safe in check mode.
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
      - Ask the driver for its stats once more after initialisation.
      - The driver already reads them while starting up, so this is only useful for drivers that
        cache stale values.
    type: bool
    default: false
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
        pool_names:
          description: Names of the backend's pools.
          type: list
          elements: str
        volumes:
          description: The volumes the collection knows on this backend, from the state store.
          type: list
          elements: dict
'''

from ansible_collections.cinderlib.storage.plugins.module_utils.ansible_module import CinderlibModule


def gather_facts(module: CinderlibModule) -> dict:
    backend = module.backend
    stats = backend.stats(refresh=module.params['refresh_stats'])
    facts = {
        'id': backend.id,
        'config': backend.config,
        'stats': stats,
        'pool_names': list(backend.pool_names),
        'volumes': [volume.to_dict() for volume in backend.volumes],
    }
    return {'changed': False, 'ansible_facts': {'cinderlib_backends': {backend.id: facts}}}


def main() -> None:
    module = CinderlibModule(argument_spec=dict(refresh_stats=dict(type='bool', default=False)))
    module.run(gather_facts)


if __name__ == '__main__':
    main()
