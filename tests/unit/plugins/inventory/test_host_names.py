# Host names the inventory plugin gives volumes (display names are not unique in the library).
from __future__ import annotations

from ansible_collections.cinderlib.storage.plugins.inventory.cinderlib import InventoryModule


def test_host_names_keep_every_volume_apart():
    volumes = [
        {'id': 'a1', 'name': 'data', 'backend': 'lvm'},
        {'id': 'a2', 'name': 'data', 'backend': 'ceph'},
        {'id': 'a3', 'name': 'dup', 'backend': 'lvm'},
        {'id': 'a4', 'name': 'dup', 'backend': 'lvm'},
        {'id': 'a5', 'name': '', 'backend': 'lvm'},
        {'id': 'a6', 'name': 'solo', 'backend': 'lvm'},
    ]
    names = InventoryModule.host_names(volumes)
    assert names == ['data@lvm', 'data@ceph', 'a3', 'a4', 'a5', 'solo']
    assert len(set(names)) == len(volumes)
