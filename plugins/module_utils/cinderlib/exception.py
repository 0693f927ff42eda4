# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""``cinderlib.exception``: cinderlib's exception names, for programs written
for cinderlib (``except cinderlib.exception.VolumeNotFound``). They are the
library's own errors (``exceptions.py``), raised where cinderlib raised them:
a missing volume is ``VolumeNotFound``, which is also a ``NotFound``."""

from __future__ import annotations

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (  # noqa: F401
    ConnectionNotFound,
    InvalidPersistence,
    InvalidVolume,
    NotFound,
    NotLocal,
    SnapshotNotFound,
    VolumeNotFound,
)

__all__ = ['ConnectionNotFound', 'InvalidPersistence', 'InvalidVolume', 'NotFound', 'NotLocal', 'SnapshotNotFound',
           'VolumeNotFound']
