# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""What the module layer adds to a library error's message: the advice the
library can't give without speaking Ansible (a module to run, a backend
option to set in a playbook). No Ansible import here, so that it is
unit-testable."""

from __future__ import annotations

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    CinderlibError,
    UnknownDriver,
)

DRIVERS_HINT = ('cinderlib.storage.cinderlib_drivers_info lists the volume drivers Cinder has on the managed node, '
                'by class name and class path.')

# Cinder's LVM driver clears a deleted volume (volume_clear, default zero)
# through its device node, which LVM without device-mapper never makes.
_LVM_NO_DEVICE = ('Volume device file path /dev/mapper/', 'does not exist')
VOLUME_CLEAR_HINT = ("The LVM driver wipes a deleted volume through its device under /dev/mapper, which a node "
                     "without device-mapper (LVM with activation disabled, metadata only) does not have: set "
                     "volume_clear: none in the backend's options there (deleted volumes are then not wiped).")


def hint(exc: CinderlibError) -> str:
    """A sentence to add to ``exc``'s message, or ''."""
    if isinstance(exc, UnknownDriver):
        return DRIVERS_HINT
    if all(part in exc.message for part in _LVM_NO_DEVICE):
        return VOLUME_CLEAR_HINT
    return ''


def with_hint(exc: CinderlibError) -> str:
    """``exc``'s message, with the hint when there is one."""
    extra = hint(exc)
    return '%s %s' % (exc.message, extra) if extra else exc.message
