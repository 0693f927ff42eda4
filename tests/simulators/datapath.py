"""A data path for the array simulators: the blocks behind their volumes.

``FileData`` keeps each volume, snapshot or view of a simulated array as a
sparse file in a directory, so a snapshot really holds the data its volume
had when it was taken. ``LioExports`` hands those files out over iSCSI
through the kernel's LIO target (``rtslib_fb``): one target for the array, a
LUN per mapped object and an ACL per initiator, so a mapping made through the
array's API becomes a LUN an initiator can log in to. That needs root and a
kernel with LIO, which the molecule ``vm`` scenario has; without it a
simulator serves its API only (what the functional tests use).

Choices of the simulator: files are created at full size but sparse; a copy
(snapshot, view) is a full sparse copy, not copy-on-write; growing a volume
grows its file, and a LUN exported before then keeps its old size until it is
unmapped and mapped again.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ISCSI_PORT = 3260
_KEY = re.compile(r'^(volume|snapshot)-[0-9][a-z0-9-]*$')


class FileData:
    """Sparse files named after the array's objects (``volume-3``, ...)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        # The array's objects live in memory: files an earlier run left are nobody's.
        for key in self.keys():
            self.delete(key)

    def path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError('bad data key %r' % key)
        return self.directory / key

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def create(self, key: str, size: int) -> None:
        with open(self.path(key), 'xb') as handle:
            handle.truncate(size)

    def grow(self, key: str, size: int) -> None:
        with open(self.path(key), 'r+b') as handle:
            handle.truncate(max(size, os.fstat(handle.fileno()).st_size))

    def copy(self, source: str, target: str) -> None:
        destination = self.path(target)
        if shutil.which('cp'):
            # GNU cp keeps the holes; shutil.copyfile would write them out.
            subprocess.run(['cp', '--sparse=always', str(self.path(source)), str(destination)], check=True)
        else:
            shutil.copyfile(self.path(source), destination)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def keys(self) -> list[str]:
        return sorted(p.name for p in self.directory.iterdir() if _KEY.match(p.name))


class LioExports:
    """Export ``FileData`` objects through one LIO iSCSI target and portal."""

    def __init__(self, data: FileData, target_iqn: str, portal_ip: str, prefix: str = 'sim') -> None:
        # Imported here: only the VM scenario has LIO (python3-rtslib-fb or the rtslib-fb wheel).
        import rtslib_fb

        self.rtslib = rtslib_fb
        self.data = data
        self.prefix = prefix
        try:
            self.target = rtslib_fb.Target(rtslib_fb.FabricModule('iscsi'), target_iqn, mode='create')
        except Exception as error:  # pylint: disable=broad-except  # rtslib raises several kinds
            raise RuntimeError("can't create the LIO iSCSI target %s (is this a kernel with LIO, and are we root?): %s"
                               % (target_iqn, error)) from error
        self.tpg = rtslib_fb.TPG(self.target, 1, mode='create')
        # ACLs name who may log in (the array's host IQNs); no CHAP.
        for name, value in (('authentication', '0'), ('generate_node_acls', '0'),
                            ('demo_mode_write_protect', '0')):
            self.tpg.set_attribute(name, value)
        rtslib_fb.NetworkPortal(self.tpg, portal_ip, ISCSI_PORT, mode='any')
        self.tpg.enable = True
        self.luns: dict[str, object] = {}  # data key -> the TPG LUN exporting it

    def _backstore_name(self, key: str) -> str:
        return '%s-%s' % (self.prefix, key)

    def _lun(self, key: str):
        lun = self.luns.get(key)
        if lun is None:
            storage = self.rtslib.FileIOStorageObject(self._backstore_name(key), str(self.data.path(key)),
                                                      size=self.data.size(key), write_back=False)
            used = {existing.lun for existing in self.tpg.luns}
            index = next(n for n in range(len(used) + 1) if n not in used)
            lun = self.luns[key] = self.rtslib.LUN(self.tpg, index, storage_object=storage)
        return lun

    def _acl(self, initiator: str, create: bool):
        for acl in self.tpg.node_acls:
            if acl.node_wwn == initiator:
                return acl
        return self.rtslib.NodeACL(self.tpg, initiator, mode='create') if create else None

    def map(self, key: str, lun_number: int, initiators: list[str]) -> None:
        """Show ``key`` as LUN ``lun_number`` to each initiator."""
        tpg_lun = self._lun(key)
        for initiator in initiators:
            self.rtslib.MappedLUN(self._acl(initiator, create=True), lun_number, tpg_lun=tpg_lun,
                                  write_protect=False)

    def unmap(self, key: str, lun_number: int, initiators: list[str]) -> None:
        """Hide it from them again; drop the LUN and backstore once nobody sees it."""
        for initiator in initiators:
            acl = self._acl(initiator, create=False)
            if acl is None:
                continue
            for mapped in list(acl.mapped_luns):
                if mapped.mapped_lun == lun_number:
                    mapped.delete()
            if not list(acl.mapped_luns):
                acl.delete()
        tpg_lun = self.luns.get(key)
        if tpg_lun is not None and not list(tpg_lun.mapped_luns):
            storage = tpg_lun.storage_object
            tpg_lun.delete()
            storage.delete()
            del self.luns[key]

    def close(self) -> None:
        """Remove the target and every backstore this object made."""
        storages = [lun.storage_object for lun in self.luns.values()]
        self.target.delete()
        for storage in storages:
            storage.delete()
        self.luns.clear()
