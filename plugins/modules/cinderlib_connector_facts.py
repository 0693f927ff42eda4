#!/usr/bin/python
# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: cinderlib_connector_facts
short_description: Gather a host's os-brick connector properties as facts
version_added: 0.1.0
description:
  - Reads the managed node's os-brick connector properties (its iSCSI initiator name, NVMe host NQN,
    host name, IP address, multipath setting, Fibre Channel WWPNs...), which a storage backend needs
    to export a volume to that node, and returns them as the fact C(cinderlib_connector).
  - Read-only. M(cinderlib.storage.cinderlib_connector) stores the same properties in the state
    store under a node id, so that a storage host sharing the store can export volumes to this node
    without the properties passing through the playbook.
  - Needs os-brick on the managed node, not Cinder; the node's storage tools (C(open-iscsi),
    C(nvme-cli), C(multipath-tools)) decide which properties it has.
author:
  - cinderlib.storage developers (@cinderlib)
extends_documentation_fragment:
  # First: its backend option wins over the shared fragment's.
  - cinderlib.storage.cinderlib.no_backend
  - cinderlib.storage.cinderlib
  - cinderlib.storage.cinderlib.connector
attributes:
  check_mode:
    support: full
    description: The module changes nothing.
  diff_mode:
    support: none
    description: The module changes nothing.
notes:
  - The properties hold no secrets.
seealso:
  - module: cinderlib.storage.cinderlib_connector
  - module: cinderlib.storage.cinderlib_connection
'''

EXAMPLES = r'''
- name: Gather this node's connector properties
  cinderlib.storage.cinderlib_connector_facts:

- name: Show the node's iSCSI initiator name
  ansible.builtin.debug:
    msg: "{{ ansible_facts.cinderlib_connector.initiator }}"
'''

RETURN = r'''
ansible_facts:
  description: Facts set by the module.
  returned: always
  type: dict
  contains:
    cinderlib_connector:
      description:
        - The node's os-brick connector properties, as backends read them.
        - Which keys are present depends on the node (C(initiator) needs C(open-iscsi), C(nqn)
          needs NVMe support, C(wwpns) Fibre Channel HBAs).
      type: dict
      sample:
        platform: x86_64
        os_type: linux
        ip: 192.0.2.10
        host: node1
        multipath: false
        enforce_multipath: false
        initiator: iqn.1993-08.org.debian:01:abcdef123456
        nqn: nqn.2014-08.org.nvmexpress:uuid:4c4c4544-0042-4b10-8044-b4c04f4d3232
        do_local_attach: false
        uuid: 4c4c4544-0042-4b10-8044-b4c04f4d3232
'''

from ansible_collections.cinderlib.storage.plugins.module_utils.ansible_module import CinderlibModule
from ansible_collections.cinderlib.storage.plugins.module_utils.connection_state import (
    connector_argument_spec,
    connector_properties,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.volume_state import check_name


def check(params: dict) -> None:
    check_name(params.get('host'), 'host')


def run(module: CinderlibModule) -> dict:
    connector = connector_properties(module.library, module.params)
    return {'changed': False, 'ansible_facts': {'cinderlib_connector': connector}}


def main() -> None:
    module = CinderlibModule(
        argument_spec=connector_argument_spec(),
        needs_cinder=False, needs_backend=False,
    )
    module.run(run, check=check)


if __name__ == '__main__':
    main()
