#!/usr/bin/python
# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: cinderlib_connector_facts
short_description: Gather a host's os-brick connector properties, and store them under a node id
version_added: 0.1.0
description:
  - Reads the managed node's os-brick connector properties (its iSCSI initiator name, NVMe host NQN,
    host name, IP address, multipath setting, Fibre Channel WWPNs...), which a storage backend needs
    to export a volume to that node, and returns them as the fact C(cinderlib_connector).
  - With O(node_id), also stores them in the state store (O(persistence)) under that id, so that a
    storage host sharing the store can export volumes to this node with
    O(cinderlib.storage.cinderlib_connection#module:connector=<node id>), without the properties
    passing through the playbook.
  - Needs os-brick on the managed node, not Cinder; the node's storage tools (C(open-iscsi),
    C(nvme-cli), C(multipath-tools)) decide which properties it has.
author:
  - cinderlib.storage developers (@cinderlib)
extends_documentation_fragment:
  - cinderlib.storage.cinderlib
options:
  node_id:
    description:
      - Store the properties in the state store under this id (a name, such as the inventory
        host name). Storing the same properties again changes nothing.
      - Without it nothing is stored and the module changes nothing.
    type: str
  multipath:
    description:
      - Whether this node attaches volumes through multipath; exporting backends see it as the
        connector's C(multipath).
    type: bool
    default: false
  enforce_multipath:
    description:
      - With O(multipath), fail when multipathd is not running, rather than falling back to a
        single path.
    type: bool
    default: false
  my_ip:
    description:
      - The IP address to give as the connector's C(ip). By default the address of the interface
        of the default route.
    type: str
  host:
    description:
      - The host name to give as the connector's C(host). By default the node's host name.
      - One connection per volume and host; exports to the same host name are one connection.
    type: str
  backend:
    description:
      - Ignored by this module (accepted so that C(module_defaults) of the action group apply).
    type: raw
    required: false
attributes:
  check_mode:
    support: full
    description: Gathers the properties; with O(node_id), says whether they would be stored and stores nothing.
  diff_mode:
    support: full
    description: With O(node_id), the stored properties before and after.
notes:
  - The properties hold no secrets.
seealso:
  - module: cinderlib.storage.cinderlib_connection
'''

EXAMPLES = r'''
- name: Gather this node's connector properties
  cinderlib.storage.cinderlib_connector_facts:

- name: Store them in the shared state store under the inventory name
  cinderlib.storage.cinderlib_connector_facts:
    node_id: "{{ inventory_hostname }}"
    persistence:
      connection: postgresql+psycopg2://cinderlib:secret@db.example.com/cinderlib
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
node_id:
  description: The node id the properties were stored under.
  returned: when O(node_id) is set
  type: str
  sample: node1
diff:
  description: The stored properties before and after, with C(--diff) and O(node_id).
  returned: when diff mode is on and O(node_id) is set
  type: dict
'''

from ansible_collections.cinderlib.storage.plugins.module_utils.ansible_module import CinderlibModule
from ansible_collections.cinderlib.storage.plugins.module_utils.connection_state import gather_connector
from ansible_collections.cinderlib.storage.plugins.module_utils.volume_state import check_name


def check(params: dict) -> None:
    check_name(params.get('node_id'), 'node_id')
    check_name(params.get('host'), 'host')


def run(module: CinderlibModule) -> dict:
    changed, connector, previous = gather_connector(module.library, module.params, module.module.check_mode)
    result = {'changed': changed, 'ansible_facts': {'cinderlib_connector': connector}}
    if module.params['node_id']:
        result['node_id'] = module.params['node_id']
        if module.module._diff:
            result['diff'] = {'before': (previous or {}).get('connector') or {}, 'after': connector}
    return result


def main() -> None:
    module = CinderlibModule(
        argument_spec=dict(
            node_id=dict(type='str'),
            multipath=dict(type='bool', default=False),
            enforce_multipath=dict(type='bool', default=False),
            my_ip=dict(type='str'),
            host=dict(type='str'),
        ),
        needs_cinder=False, needs_backend=False,
    )
    module.run(run, check=check)


if __name__ == '__main__':
    main()
