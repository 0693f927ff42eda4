#!/usr/bin/python
# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: cinderlib_connection
short_description: Export volumes to hosts and attach them, through Cinder drivers and os-brick
version_added: 0.1.0
description:
  - Connects a volume of O(backend) to a host, in one of three ways.
  - B(Attach on the managed node) (O(volume), no O(connector)) exports the volume to the managed
    node and attaches it there with os-brick; returns the device in RV(path).
  - B(Export to another host) (O(volume) and O(connector)) exports the volume to the host that
    O(connector) describes and returns the connection info that host attaches with in RV(conn_info)
    (and the connection's id in RV(connection.id)). The host then attaches it with this module's
    third way.
  - B(Attach an export on the managed node) (O(connection_id) or O(conn_info), no backend) attaches
    with os-brick alone what another host exported; Cinder is not needed, nor imported, on the node.
  - One connection per volume and host, kept in the state store (O(persistence)). A volume already
    connected (attached) to that host is left as it is and the task reports no change.
  - O(state=absent) undoes it the same three ways, detaching the device (attach ways) and ending
    the export (the first two ways). A volume with connections can't be deleted.
  - With O(backend), a run first settles the connections of the volume that a run which died
    (killed, host down) left C(connecting) or C(disconnecting); it ends their export and removes
    their record, as M(cinderlib.storage.cinderlib_reconcile) does, and
    says so in a warning; then it does what it was asked. A run still in progress holds the
    volume's lock, and this run waits for it.
  - A volume recorded as attached on the managed node in an earlier boot (the node restarted), or
    whose device is gone, is not taken for attached (its old device path may now be another
    volume's). It is recovered by running the task again, once the backend's storage is back. Its export is restored
    first, by the driver's C(ensure_export), which Cinder's volume service runs for each volume when
    it starts. Then the volume is attached again, or with O(state=absent) detached and its export
    ended. A warning says so.
  - Connection info may hold CHAP credentials. The connection's record keeps them as the driver
    returned them (as cinderlib did; the state store is readable by its owner only), and they are
    never returned (unless O(output_all_backend_info)); the returned RV(conn_info) lacks
    C(auth_password). A host given O(connection_id) and the shared store gets the connection info,
    password included, from the store; O(conn_info) is for exports without CHAP, or results of
    O(output_all_backend_info).
author:
  - cinderlib.storage developers (@cinderlib)
extends_documentation_fragment:
  - cinderlib.storage.cinderlib
options:
  volume:
    description:
      - Name or id of the volume on O(backend).
      - Required unless O(connection_id) or O(conn_info) is given.
    type: str
  state:
    description:
      - V(present) connects (and attaches); V(absent) detaches and disconnects.
    type: str
    choices: [present, absent]
    default: present
  connector:
    description:
      - The host to export the volume to, as its os-brick connector properties (a dict, the fact
        C(cinderlib_connector) of M(cinderlib.storage.cinderlib_connector_facts)) or as the node id
        those properties were stored under with the same O(persistence).
      - The connector's C(host) names the connection; the backend checks that it has what it needs
        (C(initiator) for iSCSI exports).
      - Without it, the volume is attached on the managed node.
    type: raw
  connection_id:
    description:
      - Attach on the managed node the connection with this id (RV(connection.id) of the exporting
        task), read from the shared state store (O(persistence)); the attach is recorded there.
      - Mutually exclusive with O(conn_info); O(backend), O(volume) and O(connector) are not used.
    type: str
  conn_info:
    description:
      - Attach on the managed node with this connection info (RV(conn_info) of the exporting task);
        nothing is read from or written to the state store.
      - Connection info asking for CHAP without C(auth_password) fails; use O(connection_id).
    type: dict
  multipath:
    description:
      - Attach through multipath (local attach and O(connection_id)/O(conn_info)); for a local
        attach, also what the export is told.
    type: bool
    default: false
  enforce_multipath:
    description:
      - With O(multipath), fail when multipathd is not running rather than use a single path.
    type: bool
    default: false
  device_scan_attempts:
    description:
      - How many times os-brick rescans while waiting for the device to appear.
    type: int
    default: 3
  attach_mode:
    description:
      - V(rw) or V(ro), given to the driver and to the attaching host (C(access_mode)).
    type: str
    choices: [rw, ro]
    default: rw
  backend:
    description:
      - The backend of O(volume), as for the other modules (see
        O(cinderlib.storage.cinderlib_volume#module:backend)); either a dict of Cinder driver
        options, which must include C(volume_backend_name) and C(volume_driver), or the name of a
        backend defined in O(config_file).
      - Required unless O(connection_id) or O(conn_info) is given (then it is not used).
    type: raw
    required: false
  force:
    description:
      - With O(state=absent), detach even when flushing the device fails, and end an export that
        is still recorded as attached on its host.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Predicts the result (RV(path) and RV(conn_info) are not known) and changes nothing.
  diff_mode:
    support: full
    description: Returns the connection before and after.
notes:
  - Attaching needs the initiator tools of the protocol on the managed node (C(open-iscsi) for
    iSCSI; the C(cinderlib.storage.runtime) role installs them with C(cinderlib_runtime_attach)),
    and runs as root (or through O(cinderlib.storage.cinderlib_backend_facts#module:backend)'s
    root helper).
  - The playbook C(cinderlib.storage.connect_volumes) runs the multi-host flow.
seealso:
  - module: cinderlib.storage.cinderlib_connector_facts
  - module: cinderlib.storage.cinderlib_volume
'''

EXAMPLES = r'''
- name: Attach a volume on the storage host itself
  cinderlib.storage.cinderlib_connection:
    backend: lvm
    volume: data01
  register: attached
# attached.path is the device, such as /dev/sdb

- name: Detach it
  cinderlib.storage.cinderlib_connection:
    backend: lvm
    volume: data01
    state: absent

# Multi-host: the consumer stores its connector, the storage host exports, the consumer attaches.
- name: On the consumer (consumer1), store its connector properties under its inventory name
  cinderlib.storage.cinderlib_connector:
    node_id: "{{ inventory_hostname }}"
    persistence: "{{ shared_store }}"

- name: On the storage host, export the volume to that node
  cinderlib.storage.cinderlib_connection:
    backend: lvm
    volume: data01
    connector: consumer1  # the node_id above
    persistence: "{{ shared_store }}"
  register: export

- name: On the consumer, attach it
  cinderlib.storage.cinderlib_connection:
    connection_id: "{{ export.connection.id }}"
    persistence: "{{ shared_store }}"
'''

RETURN = r'''
connection:
  description:
    - The connection, as the state store has it after the task (predicted in check mode).
  returned: when O(state=present)
  type: dict
  sample:
    id: 6c1d2a47-13b5-4f4e-9f0a-3f8f2b1c9d10
    volume_id: 0b5e8c7a-6e1e-4f7c-9d4e-4f3bd2a9b0c1
    status: connected
    host: node1
    node_id: node1
    protocol: iscsi
    attach_mode: rw
    attached: true
    attached_host: node1
    path: /dev/sdb
    conn_info: {driver_volume_type: iscsi, data: {target_iqn: 'iqn.2010-10.org.openstack:volume-0b5e...'}}
    connector: {host: node1, initiator: 'iqn.1993-08.org.debian:01:abcdef123456'}
    device: {type: block, path: /dev/sdb}
    created_at: '2025-01-01T12:00:00.000000'
    updated_at: '2025-01-01T12:00:00.000000'
  contains:
    id:
      description: Id of the connection (C(null) in check mode, and for O(conn_info)).
      type: str
    volume_id:
      description: Id of the volume.
      type: str
    status:
      description: C(connected).
      type: str
    host:
      description: The host the volume is exported to (the connector's C(host)).
      type: str
    node_id:
      description: The node id the connector was given as, or C(null).
      type: str
    protocol:
      description: The export's protocol (C(iscsi), C(rbd)...).
      type: str
    attach_mode:
      description: C(rw) or C(ro).
      type: str
    attached:
      description: Whether the volume is attached on a host through this connection.
      type: bool
    attached_host:
      description: The host it is attached on, or C(null).
      type: str
    path:
      description: The device on the attaching host, or C(null).
      type: str
    conn_info:
      description: The connection info, without secrets (see the description).
      type: dict
    connector:
      description: The connector properties the volume was exported with.
      type: dict
    device:
      description: What os-brick returned when attaching (C(path) and more), or C(null).
      type: dict
    created_at:
      description: When the record was created (UTC, ISO 8601).
      type: str
    updated_at:
      description: When the record last changed (UTC, ISO 8601).
      type: str
path:
  description: The attached device on the managed node (C(null) in check mode).
  returned: when O(state=present) and the volume is attached on the managed node
  type: str
  sample: /dev/sdb
conn_info:
  description:
    - The connection info the host attaches with, without C(auth_password) unless
      O(output_all_backend_info) (C(null) in check mode).
  returned: when O(state=present) and O(connector) is given
  type: dict
  sample:
    driver_volume_type: iscsi
    data:
      target_discovered: false
      target_iqn: iqn.2010-10.org.openstack:volume-0b5e8c7a-6e1e-4f7c-9d4e-4f3bd2a9b0c1
      target_portal: 192.0.2.5:3260
      target_lun: 0
      volume_id: 0b5e8c7a-6e1e-4f7c-9d4e-4f3bd2a9b0c1
      auth_method: CHAP
      auth_username: sE4mRqLy8hzRdGqUa7X2
      access_mode: rw
      discard: false
diff:
  description: The connection before and after (C({}) when there is none), with C(--diff).
  returned: when diff mode is on
  type: dict
'''

from ansible_collections.cinderlib.storage.plugins.module_utils.ansible_module import CinderlibModule
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.secrets import values as secret_values
from ansible_collections.cinderlib.storage.plugins.module_utils.connection_state import (
    check_connection_params,
    consumer_mode,
    ensure_consumer_absent,
    ensure_consumer_present,
    ensure_export_absent,
    ensure_export_present,
    ensure_local_absent,
    ensure_local_present,
)


def run(module: CinderlibModule) -> dict:
    params = module.params
    if consumer_mode(params):
        # Attach with a conn_info or a stored connection: os-brick only, no backend.
        return module.ensure_state(ensure_consumer_present, ensure_consumer_absent, 'connection',
                                   target=lambda: module.library, extra=_attached_path)
    module.require_cinder('to export volumes')
    if params['connector'] is None:
        return module.ensure_state(ensure_local_present, ensure_local_absent, 'connection', extra=_attached_path)
    return module.ensure_state(ensure_export_present, ensure_export_absent, 'connection',
                               extra=lambda after: {'conn_info': after.get('conn_info')})


def _attached_path(connection: dict) -> dict:
    return {'path': connection.get('path')} if connection.get('attached') else {}


def main() -> None:
    module = CinderlibModule(
        argument_spec=dict(
            volume=dict(type='str'),
            state=dict(type='str', default='present', choices=['present', 'absent']),
            connector=dict(type='raw'),
            connection_id=dict(type='str'),
            # May carry CHAP credentials: their values are registered as no_log below.
            conn_info=dict(type='dict', no_log=False),
            multipath=dict(type='bool', default=False),
            enforce_multipath=dict(type='bool', default=False),
            device_scan_attempts=dict(type='int', default=3),
            attach_mode=dict(type='str', default='rw', choices=['rw', 'ro']),
            force=dict(type='bool', default=False),
        ),
        needs_cinder=False, needs_backend=False,
        mutually_exclusive=[('conn_info', 'connection_id'), ('conn_info', 'connector'),
                            ('connection_id', 'connector')],
    )
    # CHAP passwords in a conn_info given with output_all_backend_info.
    module.hide(secret_values(module.params.get('conn_info')))
    module.run(run, check=check_connection_params)


if __name__ == '__main__':
    main()
