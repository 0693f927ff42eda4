#!/usr/bin/python
# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: cinderlib_reconcile
short_description: Settle what interrupted runs left in the state store, from what the backend has
version_added: 0.1.0
description:
  - Compares the state store (O(persistence)) with the backend and settles the records that a run
    which died (killed, host down) left in a transitional state, from what the backend has. It is
    what M(cinderlib.storage.cinderlib_volume), M(cinderlib.storage.cinderlib_snapshot) and
    M(cinderlib.storage.cinderlib_connection) ask for when they find such a record.
  - Volumes and snapshots left C(creating), C(deleting) or C(extending) - a record whose volume
    or snapshot the backend has is adopted (status C(available); for volumes, the size the
    backend reports); a record of a creation or deletion the backend does not have is removed;
    when the driver can't tell, the record is marked C(error) (C(error_deleting),
    C(error_extending)), which O(cinderlib.storage.cinderlib_volume#module:state=absent) removes.
  - Connections left C(connecting), C(disconnecting), C(error_connecting) or
    C(error_disconnecting) are ended whether or not their export exists (Cinder drivers have no
    call that tells, and ending is safe to repeat) - C(terminate_connection), then
    C(remove_export) when no other connection of the volume needs the export; the record is
    removed and the volume's status put right (C(in-use) while it has a C(connected) connection
    or one whose disconnect failed, else C(available)). They are never finished instead, because
    no host can be using them; the playbook that was connecting connects again when run again.
    When the driver fails, the record is marked C(error_disconnecting); a record that says a
    host attached through it is skipped.
  - A run still in progress holds its volume's lock; its records are skipped and reported as such.
  - Drift (volumes the backend has that the store does not know, records whose volume the
    backend no longer has) is reported in RV(drift), never resolved. It is checked for LVM-based
    drivers and Ceph RBD, others report it as C(unsupported).
  - M(cinderlib.storage.cinderlib_backend_facts) with
    O(cinderlib.storage.cinderlib_backend_facts#module:reconcile=report) shows the same without
    changing anything.
author:
  - cinderlib.storage developers (@cinderlib)
extends_documentation_fragment:
  - cinderlib.storage.cinderlib
attributes:
  check_mode:
    support: full
    description: Changes nothing; RV(actions) says what would be done.
  diff_mode:
    support: full
    description: The status of each settled record before and after (absent when it is removed).
seealso:
  - module: cinderlib.storage.cinderlib_backend_facts
'''

EXAMPLES = r'''
- name: Settle what interrupted runs left on the LVM backend
  cinderlib.storage.cinderlib_reconcile:
    backend: lvm
    config_file: /etc/cinderlib/backends.yml
  register: settled

- name: Fail on volumes the store does not know
  ansible.builtin.assert:
    that: settled.drift.unknown_on_backend | length == 0
'''

RETURN = r'''
transitional:
  description:
    - Records found in a transitional state (volumes C(creating), C(deleting), C(extending);
      snapshots C(creating), C(deleting)), with C(kind), C(id), C(name), C(status), C(size) (for
      snapshots C(volume_id) and their volume's size).
    - Connections C(connecting), C(disconnecting), C(error_connecting) or C(error_disconnecting),
      with C(kind) (C(connection)), C(id), C(volume_id), C(host) and C(status).
    - C(on_backend) says whether the backend has it (C(null) when the driver can't tell, or the
      run is still in progress; always C(null) for connections); C(in_progress) that a run holds
      its volume's lock.
  returned: success
  type: list
  elements: dict
  sample:
    - {kind: volume, id: 0b5e8c7a-6e1e-4f7c-9d4e-4f3bd2a9b0c1, name: data01, status: creating, size: 1,
       on_backend: true, in_progress: false}
actions:
  description:
    - What was done to each transitional record (in check mode, what would be done), with the
      fields of RV(transitional), C(action) (C(adopted), C(removed), C(marked_error) or
      C(skipped)), C(new_status) and C(reason).
    - An adopted volume's C(size) is the size the backend reports.
  returned: success
  type: list
  elements: dict
  sample:
    - {kind: volume, id: 0b5e8c7a-6e1e-4f7c-9d4e-4f3bd2a9b0c1, name: data01, status: creating, size: 1,
       action: adopted, new_status: available, reason: the backend has it}
drift:
  description: The difference between the store and the backend, after settling. Never changed by this module.
  returned: success
  type: dict
  contains:
    status:
      description: C(checked), or C(unsupported) for drivers that can't list their volumes.
      type: str
    reason:
      description: Why drift is C(unsupported); empty otherwise.
      type: str
    unknown_on_backend:
      description:
        - Volumes and snapshots the backend has, named as this collection names them
          (C(volume-<id>) on LVM), that the state store does not know; C(null) when unsupported.
        - Each with C(kind), C(id), C(backend_name) (the name on the backend) and C(size) in GiB.
      type: list
      elements: dict
    missing_on_backend:
      description:
        - Records (not in a transitional state) whose volume or snapshot the backend no longer has;
          C(null) when unsupported. Each with the fields of RV(transitional) and C(backend_name).
      type: list
      elements: dict
volumes:
  description:
    - The volumes the state store knows on the backend after settling, as
      M(cinderlib.storage.cinderlib_backend_facts) returns them.
  returned: success
  type: list
  elements: dict
'''

from ansible_collections.cinderlib.storage.plugins.module_utils.ansible_module import CinderlibModule
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.reconcile import actions_diff, reconcile


def settle(module: CinderlibModule) -> dict:
    backend = module.backend
    report = reconcile(backend, 'resolve', module.check_mode)
    acted = [a for a in report['actions'] if a['action'] != 'skipped']
    result = {
        'changed': bool(acted),
        'transitional': report['transitional'],
        'actions': report['actions'],
        'drift': report['drift'],
        'volumes': [volume.to_dict() for volume in backend.volumes],
    }
    if module.diff:
        result['diff'] = actions_diff(acted)
    return result


def main() -> None:
    CinderlibModule().run(settle)


if __name__ == '__main__':
    main()
