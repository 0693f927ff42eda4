# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""What a backend has, for the drivers that can tell: LVM-based drivers (the
logical volumes of their volume group) and Ceph's RBD driver (the images of
its pool and their snapshots). Cinder drivers have no common "list" or
"does it exist" call; ``reconcile`` (drift, leftovers) and
``Volume.exists_on_backend`` use this one, and take "can't tell" from any
other driver.

Names are the backend's own: an LV name (snapshots are LVs named with the
driver's escape, ``_snapshot-<id>``), or an RBD image name with
``image@snapshot`` for snapshots.
"""

from __future__ import annotations

import math
import re
from typing import Any

GIB = 1024 ** 3


def _gib(size: Any) -> int | None:
    try:
        return math.ceil(round(float(size), 2))
    except (TypeError, ValueError):
        return None


def _name_pattern(template: str, id_group: str) -> str:
    # template: a Cinder name template with '\0' where the id goes.
    head, tail = template.split('\0', 1)
    return '%s%s%s' % (re.escape(head), id_group, re.escape(tail))


def _id_pattern(template: str, prefix: str = '') -> re.Pattern:
    return re.compile('^%s%s$' % (prefix, _name_pattern(template, '(?P<id>[^@]+)')))


class LVMListing:
    """The logical volumes of an LVM driver's volume group (``driver.vg``)."""

    def __init__(self, driver) -> None:
        self._driver = driver
        self._vg = driver.vg
        # Some drivers' helpers can look a volume up but not list them all.
        self.can_list = callable(getattr(self._vg, 'get_volumes', None))

    def snapshot_name(self, snapshot) -> str:
        name = snapshot._ovo.name
        # LVM drivers name snapshot LVs with a leading '_' (their own
        # _escape_snapshot), so that a snapshot can't clash with a volume.
        escape = getattr(self._driver, '_escape_snapshot', None)
        return escape(name) if callable(escape) else name

    def find(self, name: str) -> tuple[bool, int | None]:
        found = self._vg.get_volume(name)
        return found is not None, _gib((found or {}).get('size'))

    def everything(self) -> dict[str, int | None]:
        return {lv['name']: _gib(lv['size']) for lv in self._vg.get_volumes()}

    def patterns(self, conf) -> dict[str, re.Pattern]:
        escape = getattr(self._driver, '_escape_snapshot', None)
        snapshot_template = conf.snapshot_name_template % '\0'
        return {'volume': _id_pattern(conf.volume_name_template % '\0'),
                'snapshot': _id_pattern(escape(snapshot_template) if callable(escape) else snapshot_template)}


class RBDListing:
    """The images of an RBD driver's pool and their snapshots. The images the
    driver keeps hidden (``<name>.deleted``: a deleted volume whose clones
    still need it) and its clone snapshots (``<clone>.clone_snap``) are its
    own business, not volumes or snapshots of the collection."""

    HIDDEN_IMAGE = '.deleted'
    CLONE_SNAPSHOT = '.clone_snap'
    can_list = True

    def __init__(self, driver) -> None:
        from cinder.volume.drivers import rbd as rbd_driver  # the driver is loaded, so is its module
        self._driver = driver
        # Cinder's driver module (RADOSClient, RBDVolumeProxy); driver.rbd is Ceph's binding.
        self._driver_module = rbd_driver

    def snapshot_name(self, snapshot) -> str:
        return '%s@%s' % (snapshot.volume.name, snapshot._ovo.name)

    def _image(self, client, name: str):
        return self._driver_module.RBDVolumeProxy(self._driver, name, read_only=True, client=client.cluster,
                                                  ioctx=client.ioctx)

    def find(self, name: str) -> tuple[bool, int | None]:
        image_name, snap = (name.split('@', 1) + [''])[:2]
        with self._driver_module.RADOSClient(self._driver) as client:
            try:
                with self._image(client, image_name) as image:
                    if snap:
                        return any(s['name'] == snap for s in image.list_snaps()), None
                    return True, _gib(image.size() / GIB)
            except self._driver.rbd.ImageNotFound:
                return False, None

    def everything(self) -> dict[str, int | None]:
        found: dict[str, int | None] = {}
        with self._driver_module.RADOSClient(self._driver) as client:
            for image_name in self._driver.RBDProxy().list(client.ioctx):
                if image_name.endswith(self.HIDDEN_IMAGE):
                    continue
                try:
                    with self._image(client, image_name) as image:
                        found[image_name] = _gib(image.size() / GIB)
                        for snap in image.list_snaps():
                            if not snap['name'].endswith(self.CLONE_SNAPSHOT):
                                found['%s@%s' % (image_name, snap['name'])] = None
                except self._driver.rbd.ImageNotFound:
                    continue  # removed while listing
        return found

    def patterns(self, conf) -> dict[str, re.Pattern]:
        volume_template = conf.volume_name_template % '\0'
        image = _name_pattern(volume_template, '[^@]+') + '@'
        return {'volume': _id_pattern(volume_template),
                'snapshot': _id_pattern(conf.snapshot_name_template % '\0', prefix=image)}


def object_name(found: LVMListing | RBDListing | None, resource) -> str:
    """The backend's name of a volume or snapshot: a listing's (``found``)
    for snapshots, else Cinder's ``volume-<id>``/``snapshot-<id>``."""
    if resource.kind == 'snapshot' and found is not None:
        return found.snapshot_name(resource)
    return resource.name


def export_name(driver, volume) -> str | None:
    """The name of the target that the driver's iSCSI target helper (LIO,
    tgt...: ``driver.target_driver``, as LVM drivers hold it) would export
    ``volume`` as, when that helper can look its targets up; None when it
    can't tell."""
    target = getattr(driver, 'target_driver', None)
    prefix = getattr(getattr(target, 'configuration', None), 'target_prefix', None)
    if not callable(getattr(target, '_get_target', None)) or not prefix:
        return None
    return prefix + volume.name


def export_exists(driver, name: str) -> bool:
    """Whether the target helper has a target ``name`` (``export_name``)."""
    return driver.target_driver._get_target(name) is not None


def for_backend(backend) -> LVMListing | RBDListing | None:
    """The listing of a backend's driver; None when the driver can't tell."""
    driver = backend.driver
    vg = getattr(driver, 'vg', None)
    if vg is not None and callable(getattr(vg, 'get_volume', None)):
        return LVMListing(driver)
    if any(cls.__name__ == 'RBDDriver' for cls in type(driver).__mro__):
        return RBDListing(driver)
    return None
