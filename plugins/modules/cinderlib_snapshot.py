#!/usr/bin/python
# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: cinderlib_snapshot
short_description: Create and delete snapshots of volumes on a Cinder-driver storage backend
version_added: 0.1.0
description:
  - Makes sure a snapshot of a volume exists or is gone, by calling the Cinder volume driver of
    the backend named by O(backend) directly on the managed node.
  - A snapshot is identified by its O(volume) and its O(name), or by its O(id). Names are
    labels in the library (as in cinderlib), so several snapshots of a volume may share one; then
    this module fails, listing their ids, unless O(id) says which.
  - A snapshot whose backend name the backend already has (an LVM C(_snapshot-<id>) or an RBD
    C(volume-<vid>@snapshot-<id>) made by hand, met when O(id) is given) is refused before
    anything is recorded, in check mode too, and left as it is.
  - A snapshot whose creation fails is removed again (the driver is asked to delete what it may
    have made), so that a failed task leaves nothing behind; the task fails with the driver's
    reason. Not when the task gave O(id) on a driver that can't tell whether the backend already
    had that name; its record then stays C(error), and O(state=absent) removes the record only,
    leaving what the backend has under that name, with a warning.
  - A snapshot whose record is not C(available) (left by an interrupted run) makes the task
    fail and say so; O(state=absent) removes it.
  - O(volume) and O(name) are checked before the state store or the backend is opened (not
    empty, at most 255 characters, no control characters), then O(backend) is validated against
    its driver's options; a bad value or a volume that does not exist fails with a message saying
    what to change, and nothing is created or changed.
  - To create a volume from a snapshot, use M(cinderlib.storage.cinderlib_volume) with
    O(cinderlib.storage.cinderlib_volume#module:source_snapshot).
author:
  - cinderlib.storage developers (@cinderlib)
extends_documentation_fragment:
  - cinderlib.storage.cinderlib
options:
  volume:
    description:
      - Name or id of the volume to snapshot.
      - With O(state=absent), a volume that does not exist means there is nothing to delete.
    type: str
    required: true
  name:
    description:
      - Name of the snapshot (its C(display_name)).
      - One of O(name) and O(id) is required.
    type: str
  id:
    description:
      - Id of the snapshot (a UUID). With O(state=present), the id a new snapshot gets, or the
        snapshot to keep; with O(state=absent), the snapshot to delete.
    type: str
  state:
    description:
      - V(present) creates the snapshot if needed; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  description:
    description:
      - Free text describing the snapshot; updated in the state store for an existing snapshot.
    type: str
attributes:
  check_mode:
    support: full
    description: Predicts the result (including the snapshot returned) and changes nothing.
  diff_mode:
    support: full
    description: Returns the snapshot before and after.
notes:
  - On LVM, snapshots need device-mapper in the managed node's kernel.
seealso:
  - module: cinderlib.storage.cinderlib_volume
'''

EXAMPLES = r'''
- name: Snapshot a volume
  cinderlib.storage.cinderlib_snapshot:
    backend: lvm
    volume: data01
    name: data01-nightly
    description: before the upgrade

- name: Delete the snapshot
  cinderlib.storage.cinderlib_snapshot:
    backend: lvm
    volume: data01
    name: data01-nightly
    state: absent
'''

RETURN = r'''
snapshot:
  description:
    - The snapshot, as the state store has it after the task (predicted in check mode).
  returned: when O(state=present)
  type: dict
  sample:
    id: 5d0f2d5e-9a3c-4f4c-8a53-2f0c2f3f1e11
    name: data01-nightly
    description: before the upgrade
    volume_id: 0b5e8c7a-6e1e-4f7c-9d4e-4f3bd2a9b0c1
    volume_size: 10
    status: available
    backend: lvm
    created_at: '2025-01-01T12:00:00.000000'
    updated_at: '2025-01-01T12:00:00.000000'
  contains:
    id:
      description: Id of the snapshot.
      type: str
    name:
      description: Name of the snapshot.
      type: str
    description:
      description: Description of the snapshot.
      type: str
    volume_id:
      description: Id of the snapshotted volume.
      type: str
    volume_size:
      description: Size in GiB of the volume when it was snapshotted.
      type: int
    status:
      description: C(available).
      type: str
    backend:
      description: Name of the backend.
      type: str
    created_at:
      description: When the record was created (UTC, ISO 8601); C(null) in check mode.
      type: str
    updated_at:
      description: When the record last changed (UTC, ISO 8601); C(null) in check mode.
      type: str
diff:
  description:
    - The snapshot before and after (C({}) when it does not exist), with C(--diff).
    - With O(state=absent), C(before.backend_objects) names the snapshot's object on the backend,
      and C(after.backend_objects) lists it when it is left because the collection did not make it.
  returned: when diff mode is on
  type: dict
'''

from ansible_collections.cinderlib.storage.plugins.module_utils.ansible_module import CinderlibModule
from ansible_collections.cinderlib.storage.plugins.module_utils.volume_state import (
    check_snapshot_params,
    ensure_snapshot_absent,
    ensure_snapshot_present,
    quick_snapshot_state,
)


def run(module: CinderlibModule) -> dict:
    return module.ensure_state(ensure_snapshot_present, ensure_snapshot_absent, 'snapshot',
                               quick=quick_snapshot_state)


def main() -> None:
    module = CinderlibModule(argument_spec=dict(
        volume=dict(type='str', required=True),
        name=dict(type='str'),
        id=dict(type='str'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        description=dict(type='str'),
    ), required_one_of=[('name', 'id')])
    module.run(run, check=check_snapshot_params)


if __name__ == '__main__':
    main()
