#!/usr/bin/python
# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: cinderlib_connector
short_description: Store a host's os-brick connector properties in the state store under a node id
version_added: 0.1.0
description:
  - O(state=present) gathers the managed node's os-brick connector properties (as
    M(cinderlib.storage.cinderlib_connector_facts) returns them) and stores them in the state store
    (O(persistence)) under O(node_id), so that a storage host sharing the store can export volumes
    to this node with O(cinderlib.storage.cinderlib_connection#module:connector=<node id>), without
    the properties passing through the playbook. Storing the same properties again changes nothing.
  - O(state=absent) removes what is stored under O(node_id). Exports already made to that node keep
    their own copy of the properties and can still be ended; a warning lists them.
  - Needs os-brick on the managed node, not Cinder.
author:
  - cinderlib.storage developers (@cinderlib)
extends_documentation_fragment:
  # First: its backend option wins over the shared fragment's.
  - cinderlib.storage.cinderlib.no_backend
  - cinderlib.storage.cinderlib
  - cinderlib.storage.cinderlib.connector
options:
  node_id:
    description:
      - The id to store the properties under (a name, such as the inventory host name).
    type: str
    required: true
  state:
    description:
      - Whether properties are stored under O(node_id).
      - With V(absent), the connector options (O(multipath), O(host)...) are not used.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
    description: Says whether the properties would be stored or removed, and changes nothing.
  diff_mode:
    support: full
    description: The stored properties before and after.
notes:
  - The properties hold no secrets.
seealso:
  - module: cinderlib.storage.cinderlib_connector_facts
  - module: cinderlib.storage.cinderlib_connection
'''

EXAMPLES = r'''
- name: Store this node's connector properties in the shared state store under its inventory name
  cinderlib.storage.cinderlib_connector:
    node_id: "{{ inventory_hostname }}"
    persistence:
      connection: postgresql+psycopg2://cinderlib:secret@db.example.com/cinderlib

- name: Forget a node that left
  cinderlib.storage.cinderlib_connector:
    node_id: node7
    state: absent
    persistence:
      connection: postgresql+psycopg2://cinderlib:secret@db.example.com/cinderlib
'''

RETURN = r'''
node_id:
  description: The node id of the task.
  returned: always
  type: str
  sample: node1
connector:
  description:
    - The properties stored under RV(node_id) (in check mode, those that would be), as
      M(cinderlib.storage.cinderlib_connector_facts) returns them in C(cinderlib_connector).
  returned: when O(state=present)
  type: dict
  sample: {host: node1, initiator: 'iqn.1993-08.org.debian:01:abcdef123456', multipath: false}
'''

from ansible_collections.cinderlib.storage.plugins.module_utils.ansible_module import CinderlibModule
from ansible_collections.cinderlib.storage.plugins.module_utils.connection_state import (
    connector_argument_spec,
    ensure_connector_absent,
    ensure_connector_present,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.volume_state import check_name


def check(params: dict) -> None:
    check_name(params.get('node_id'), 'node_id')
    check_name(params.get('host'), 'host')


def run(module: CinderlibModule) -> dict:
    result = module.ensure_state(ensure_connector_present, ensure_connector_absent, 'connector',
                                 target=lambda: module.library)
    result['node_id'] = module.params['node_id']
    return result


def main() -> None:
    spec = connector_argument_spec()
    spec.update(node_id=dict(type='str', required=True),
                state=dict(type='str', default='present', choices=['present', 'absent']))
    CinderlibModule(argument_spec=spec, needs_cinder=False, needs_backend=False).run(run, check=check)


if __name__ == '__main__':
    main()
