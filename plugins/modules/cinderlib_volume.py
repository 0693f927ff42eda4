#!/usr/bin/python
# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: cinderlib_volume
short_description: Create, extend and delete volumes on a Cinder-driver storage backend
version_added: 0.1.0
description:
  - Makes sure a volume exists (empty, cloned from another volume or created from a snapshot) or
    is gone, on the backend named by O(backend), by calling the Cinder volume driver directly on
    the managed node.
  - A volume is identified by O(name) (its C(display_name)), which this module keeps unique per
    backend, or by O(id). The library, like cinderlib, lets several volumes share a display name;
    a name that several volumes share fails the task, listing their ids, unless O(id) says which.
    What the collection knows
    about volumes lives in the state store (O(persistence)); every run also asks the driver, when
    it can tell (LVM-based drivers and RBD can), whether the volume is still on the array.
  - An existing volume is grown when O(size) is larger; it is never shrunk (a smaller O(size)
    fails, or with O(size_policy=at_least) leaves it as it is). Its O(description),
    O(bootable) and O(metadata) are updated in the state store (the driver is not involved).
    O(extra_specs), O(qos_specs) and O(pool_name) only apply on creation; a different value for
    an existing volume gives a warning and changes nothing.
  - The collection never removes, shrinks or overwrites a backend object it did not make. A
    create (empty, clone or from a snapshot) whose backend name (C(volume-<id>)) the backend
    already has, such as an LV or RBD image made by hand or by an old Cinder and met when O(id)
    is given, fails before anything is recorded, in check mode too, and leaves that object as it
    is.
  - A create the driver fails (or that runs past O(driver_timeout)) is undone before the task
    fails. The driver's delete removes whatever the array made, no record is kept, and running
    the task again creates the volume. When the undo fails too, or the task gave O(id) on a
    driver that can't tell whether the array already had that name (only LVM-based drivers and
    RBD can), the record stays (C(error_deleting) or C(error)).
  - O(state=absent) deletes on the backend only what the collection made; for a record whose
    object it did not make (the failed create with O(id) above, or a record of an earlier
    version whose create failed) it removes the record only, leaves the object and warns.
    With C(--diff), RV(diff) lists under C(backend_objects) the objects on the backend that
    the task removes (before) and those it leaves (after).
  - A volume whose record is not C(available) or C(in-use) (C(error), C(error_deleting),
    C(creating) after an interrupted run...) makes the task fail and say so; O(state=absent)
    removes it. A volume that is in the state store but no longer on the array is reported,
    never silently recreated.
  - A record that an interrupted run left in a transitional state (C(creating), C(extending),
    C(deleting), C(managing)) is settled by M(cinderlib.storage.cinderlib_reconcile), as the failure message
    says; while another run is still working on the volume, the task fails and says so.
  - Runs on the same volume take turns (a lock per volume name, see O(coordination_url)), so a
    second run sees what the first one did.
  - Several volumes can be handled in one task with O(volumes), which starts the driver once for
    all of them instead of once per task (a loop runs the module once per item).
  - An unchanged volume on an LVM or a Ceph RBD backend is answered from the state store and one
    look at the backend (one C(lvs); a read-only open of the RBD image through librados, connected
    as the driver connects, waiting at most 5 seconds), without starting Cinder or the driver, once
    a run has initialised the backend with the same configuration on this host; anything else, such
    as a volume found missing or a cluster that does not answer, takes the full path.
  - The module's options are checked before the state store or the backend is opened (O(name),
    O(id), O(size), the sources), then O(backend) is validated against its driver's options (see
    O(backend)); a bad value, a missing source or an unknown backend fails with a message saying
    what to change, and nothing is created or changed.
author:
  - cinderlib.storage developers (@cinderlib)
extends_documentation_fragment:
  - cinderlib.storage.cinderlib
options:
  name:
    description:
      - Name of the volume (its C(display_name)), unique per backend among the volumes this module
        made; the key that makes the module idempotent.
      - One of O(name), O(id) and O(volumes) is required.
      - Not empty, at most 255 characters, no control characters (newline, tab...).
    type: str
  id:
    description:
      - Id (a UUID) of the volume; other ids fail unless O(non_uuid_ids) is set.
      - Without O(name), the key that finds the volume. With O(name), the id given to the volume
        when it is created; an existing volume of that name with another id makes the task fail.
    type: str
  state:
    description:
      - V(present) creates the volume if needed (or adopts O(existing)) and grows it to O(size);
        V(absent) deletes it.
      - V(unmanaged) forgets the volume and leaves its data on the backend, through the driver's
        C(unmanage), under the name the driver gave it (C(volume-<id>) for LVM and RBD); a volume
        with connections or snapshots fails and is left as it is. The diff's C(backend_objects)
        name the object that stays.
    type: str
    choices: [present, absent, unmanaged]
    default: present
  existing:
    description:
      - Adopt a backend object that already exists (an LV or RBD image made by hand, by a retired
        tool or by an old Cinder) as the volume O(name), through the driver's C(manage_existing),
        when no volume of that name is known. The volume gets the object's size and data.
      - The driver's reference to the object, its name on the backend (an LV name on LVM, an image
        name on RBD).
      - What the driver does to the object is the driver's; Cinder's LVM driver renames the LV to
        C(volume-<id>) and RBD the image, as the task's warning and the diff's C(backend_objects)
        show (the reference before, the new name after). Once adopted, the volume is the
        collection's, and O(state=absent) deletes it.
      - A second run finds the volume by O(name) and changes nothing. A reference the driver can't
        find, or one that is already a volume of the state store, fails and changes nothing, in
        check mode too.
      - Mutually exclusive with O(size), O(source_volume), O(source_snapshot), O(extra_specs) and
        O(qos_specs).
    type: str
  size:
    description:
      - Size of the volume. Volumes are sized in whole GiB (2^30 bytes).
      - An integer is GiB. A string is a number (V(1.5) is allowed) with a unit, upper or lower case,
        a space between them allowed. Binary units are V(K), V(M), V(G), V(T), V(P), alone or with
        C(iB) (V(10G), V(10g), V(10GiB), V(512M), V(1.5T)); C(B) is bytes (V(1073741824B)).
      - Decimal units (V(KB), V(MB), V(GB), V(TB), V(PB), a unit letter and C(B) without C(i)) are
        powers of 10, as disk vendors count; V(10GB) is 10 * 10^9 bytes (9.31 GiB) and gives a 10 GiB
        volume, with a warning saying the size in GiB the volume gets.
      - A size that is not whole GiB is rounded up, with a warning. Zero, negative sizes and other
        units fail.
      - Required to create a volume, except from O(source_volume) or O(source_snapshot), whose size
        is the default.
      - Larger than an existing volume's size grows it; smaller fails and changes nothing, unless
        O(size_policy=at_least).
    type: raw
  size_policy:
    description:
      - What O(size) means for a volume that exists, or for a clone or a volume from a snapshot.
      - V(exact) - the volume must end up O(size); a smaller one is grown, a larger one makes the task
        fail and is left as it is (volumes can't be shrunk).
      - V(at_least) - the volume must be O(size) or larger; a smaller one is grown, a larger one is left
        as it is and the task reports no change. A play that creates a volume and a later one that
        grows it can then both be run again. A clone or a volume from a snapshot gets O(size) or its
        source's size, whichever is larger.
      - Cinder drivers can't shrink a volume, so there is no policy that shrinks (unlike the C(shrink)
        option of C(community.general.lvol)).
    type: str
    choices: [exact, at_least]
    default: exact
  source_volume:
    description:
      - Name or id of a volume on the same backend to clone the new volume from.
      - Only used when the volume is created; a volume that is not known on the backend fails.
      - Mutually exclusive with O(source_snapshot).
    type: str
  source_snapshot:
    description:
      - Name or id of a snapshot on the same backend to create the new volume from.
      - Only used when the volume is created; a snapshot that is not known on the backend fails.
      - Mutually exclusive with O(source_volume).
    type: str
  description:
    description:
      - Free text describing the volume.
    type: str
  bootable:
    description:
      - Whether the volume is marked bootable.
    type: bool
  metadata:
    description:
      - Key/value metadata of the volume, passed to the driver on creation.
      - Replaces the metadata of an existing volume in the state store.
    type: dict
  extra_specs:
    description:
      - Volume type extra specs handed to the driver on creation (thin provisioning,
        replication...; see the driver's documentation).
    type: dict
  qos_specs:
    description:
      - QoS specs handed to the driver on creation (for drivers that support back-end QoS).
    type: dict
  pool_name:
    description:
      - Pool of the backend to create the volume in; defaults to the backend's first pool.
    type: str
  cascade:
    description:
      - With O(state=absent), delete the volume's snapshots first.
      - Without it, deleting a volume that has snapshots fails, naming them.
    type: bool
    default: false
  volumes:
    description:
      - Several volumes in one task, each a dict of the per-volume options below; mutually exclusive
        with O(name) and O(id).
      - The task's own options (O(state), O(size), O(metadata), O(cascade)...) are defaults for every
        item; an item's options override them.
      - Every item is checked before any volume is touched (a bad item fails the task and changes
        nothing); a volume may be listed once.
      - Items run in order, with the driver started once. An item that fails is reported in
        RV(volumes) and the others still run, as in a loop; the task then fails, naming the items
        that failed.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the volume (see O(name)).
        type: str
      id:
        description: Id of the volume (see O(id)).
        type: str
      state:
        description: V(present), V(absent) or V(unmanaged); default O(state).
        type: str
        choices: [present, absent, unmanaged]
      existing:
        description: A backend object to adopt as this volume (see O(existing)).
        type: str
      size:
        description: Size of the volume (see O(size)).
        type: raw
      size_policy:
        description: V(exact) or V(at_least); default O(size_policy).
        type: str
        choices: [exact, at_least]
      source_volume:
        description: Volume to clone (see O(source_volume)).
        type: str
      source_snapshot:
        description: Snapshot to create the volume from (see O(source_snapshot)).
        type: str
      description:
        description: Free text describing the volume.
        type: str
      bootable:
        description: Whether the volume is marked bootable.
        type: bool
      metadata:
        description: Key/value metadata of the volume (see O(metadata)).
        type: dict
      extra_specs:
        description: Extra specs for the creation (see O(extra_specs)).
        type: dict
      qos_specs:
        description: QoS specs for the creation (see O(qos_specs)).
        type: dict
      pool_name:
        description: Pool to create the volume in (see O(pool_name)).
        type: str
      cascade:
        description: With V(absent), delete the volume's snapshots first (see O(cascade)).
        type: bool
attributes:
  check_mode:
    support: full
    description: Predicts the result (including the volume returned) and changes nothing.
  diff_mode:
    support: full
    description: Returns the volume before and after.
notes:
  - Cloning and creating from a snapshot need the driver's support for them; on LVM they need
    device-mapper in the managed node's kernel.
seealso:
  - module: cinderlib.storage.cinderlib_snapshot
  - module: cinderlib.storage.cinderlib_backend_facts
'''

EXAMPLES = r'''
- name: Volumes on an LVM backend defined once for the block
  module_defaults:
    group/cinderlib.storage.cinderlib:
      backend: lvm
      config_file: /etc/cinderlib/backends.yml
  block:
    - name: Create a 10 GiB volume
      cinderlib.storage.cinderlib_volume:
        name: data01
        size: 10G
        metadata:
          owner: db-team

    - name: Grow it to 20 GiB
      cinderlib.storage.cinderlib_volume:
        name: data01
        size: 20

    - name: Make sure it is at least 10 GiB (unchanged once it was grown to 20 GiB; size 10G alone would fail)
      cinderlib.storage.cinderlib_volume:
        name: data01
        size: 10G
        size_policy: at_least

    - name: Clone it
      cinderlib.storage.cinderlib_volume:
        name: data01-copy
        source_volume: data01

    - name: Create a volume from a snapshot, bigger than the snapshot
      cinderlib.storage.cinderlib_volume:
        name: data01-restored
        source_snapshot: data01-nightly
        size: 30

    - name: Adopt an LV made by hand (Cinder's LVM driver renames it to volume-<id>)
      cinderlib.storage.cinderlib_volume:
        name: legacy01
        existing: old-data-lv

    - name: Forget a volume, leaving its data on the backend
      cinderlib.storage.cinderlib_volume:
        name: legacy01
        state: unmanaged

    - name: Delete a volume and its snapshots
      cinderlib.storage.cinderlib_volume:
        name: data01
        state: absent
        cascade: true

- name: Three volumes in one task (one driver start), the task's size as the default
  cinderlib.storage.cinderlib_volume:
    backend: lvm
    config_file: /etc/cinderlib/backends.yml
    size: 10
    volumes:
      - name: web01
      - name: web02
      - name: db01
        size: 50
        metadata:
          owner: db-team

# Ad-hoc:
#   ansible HOST -b -m cinderlib.storage.cinderlib_volume -a 'backend=lvm name=data01 size=10G'
'''

RETURN = r'''
volume:
  description:
    - The volume, as the state store has it after the task (predicted in check mode).
    - Not returned with O(state=absent), nor with O(volumes) (see RV(volumes)).
  returned: when O(state=present) and O(volumes) is not given
  type: dict
  sample:
    id: 0b5e8c7a-6e1e-4f7c-9d4e-4f3bd2a9b0c1
    name: data01
    description: ''
    size: 10
    status: available
    backend: lvm
    pool_name: lvm
    bootable: false
    attach_status: detached
    source: null
    metadata: {owner: db-team}
    extra_specs: {}
    qos_specs: {}
    snapshots: []
    connections: []
    attached_hosts: []
    created_at: '2025-01-01T12:00:00.000000'
    updated_at: '2025-01-01T12:00:00.000000'
  contains:
    id:
      description:
        - Id of the volume (the driver names its storage after it, e.g. C(volume-<id>) on LVM).
        - In check mode, a volume to be created without O(id) gets a random id that the real run
          does not reuse.
      type: str
    name:
      description: Name of the volume.
      type: str
    description:
      description: Description of the volume.
      type: str
    size:
      description: Size in GiB.
      type: int
    status:
      description: C(available) or C(in-use) (C(error...) statuses make the task fail).
      type: str
    backend:
      description: Name of the backend.
      type: str
    pool_name:
      description: Pool the volume is in.
      type: str
    bootable:
      description: Whether the volume is marked bootable.
      type: bool
    attach_status:
      description: C(detached) or C(attached).
      type: str
    source:
      description: Where the volume was created from, C(null) for an empty volume.
      type: dict
      contains:
        type:
          description: C(volume) or C(snapshot).
          type: str
        id:
          description: Id of the source volume or snapshot.
          type: str
    metadata:
      description: Key/value metadata.
      type: dict
    extra_specs:
      description: Extra specs the volume was created with.
      type: dict
    qos_specs:
      description: QoS specs the volume was created with.
      type: dict
    snapshots:
      description: The volume's snapshots (see M(cinderlib.storage.cinderlib_snapshot)).
      type: list
      elements: dict
    connections:
      description: The volume's exports to hosts known to the state store (empty until it is connected).
      type: list
      elements: dict
    attached_hosts:
      description: Host names of those connections.
      type: list
      elements: str
    created_at:
      description: When the record was created (UTC, ISO 8601); C(null) in check mode.
      type: str
    updated_at:
      description: When the record last changed (UTC, ISO 8601); C(null) in check mode.
      type: str
volumes:
  description: With O(volumes), one entry per item, in the same order.
  returned: when O(volumes) is given
  type: list
  elements: dict
  contains:
    name:
      description: Name of the volume, as the item gave it (C(null) when the item gave only its id).
      type: str
    id:
      description: Id of the volume (C(null) for an item with no id that failed or was absent).
      type: str
    state:
      description: The item's state, V(present) or V(absent).
      type: str
    changed:
      description: Whether this item changed anything (would, in check mode).
      type: bool
    volume:
      description: The volume after the task, as RV(volume) is for a single volume.
      returned: for items with O(volumes[].state=present) that did not fail
      type: dict
    failed:
      description: The item failed; RV(volumes[].msg) says why.
      returned: for items that failed
      type: bool
    msg:
      description: Why the item failed.
      returned: for items that failed
      type: str
diff:
  description:
    - The volume before and after (C({}) when it does not exist), with C(--diff).
    - With O(state=absent), C(before.backend_objects) names the volume's objects on the backend
      (its snapshots' with O(cascade=true), then its own) and C(after.backend_objects) those that
      are left because the collection did not make them.
    - When O(existing) is adopted, C(before.backend_objects) is the reference and
      C(after.backend_objects) the object's name once the driver adopted it; with O(state=unmanaged),
      both name the object that stays on the backend.
    - With O(volumes), a list of those, one per item that did not fail.
  returned: when diff mode is on
  type: raw
'''

from ansible_collections.cinderlib.storage.plugins.module_utils.ansible_module import CinderlibModule
from ansible_collections.cinderlib.storage.plugins.module_utils.volume_state import (
    check_volume_params,
    ensure_volume_absent,
    ensure_volume_present,
    item_label,
    quick_volume_state,
    volume_items,
)


def _per_volume() -> dict:
    """Options of one volume: the task's, and each item's of ``volumes``."""
    return dict(
        name=dict(type='str'),
        id=dict(type='str'),
        size=dict(type='raw'),
        source_volume=dict(type='str'),
        source_snapshot=dict(type='str'),
        description=dict(type='str'),
        bootable=dict(type='bool'),
        metadata=dict(type='dict'),
        extra_specs=dict(type='dict'),
        qos_specs=dict(type='dict'),
        pool_name=dict(type='str'),
        existing=dict(type='str'),
    )


def run(module: CinderlibModule) -> dict:
    if module.params['volumes'] is not None:
        return module.ensure_each(volume_items(module.params), ensure_volume_present, ensure_volume_absent,
                                  'volume', label=item_label, quick=quick_volume_state)
    return module.ensure_state(ensure_volume_present, ensure_volume_absent, 'volume', quick=quick_volume_state)


def main() -> None:
    module = CinderlibModule(
        argument_spec=dict(
            _per_volume(),
            state=dict(type='str', default='present', choices=['present', 'absent', 'unmanaged']),
            cascade=dict(type='bool', default=False),
            size_policy=dict(type='str', default='exact', choices=['exact', 'at_least']),
            volumes=dict(type='list', elements='dict', options=dict(
                _per_volume(),
                state=dict(type='str', choices=['present', 'absent', 'unmanaged']),
                cascade=dict(type='bool'),
                size_policy=dict(type='str', choices=['exact', 'at_least']),
            )),
        ),
        required_one_of=[('name', 'id', 'volumes')],
        mutually_exclusive=[('source_volume', 'source_snapshot'), ('volumes', 'name'), ('volumes', 'id'),
                            ('volumes', 'existing')],
    )
    module.run(run, check=check_volume_params)


if __name__ == '__main__':
    main()
