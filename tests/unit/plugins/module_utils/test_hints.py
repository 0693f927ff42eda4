# What the module layer adds to library errors (module_utils/hints.py): the
# advice that names a module or a playbook option, which the library's own
# messages leave out.
from __future__ import annotations

import contextlib
import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.cinderlib.storage.plugins.module_utils import hints
from ansible_collections.cinderlib.storage.plugins.module_utils.ansible_module import CinderlibModule
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    BackendConfigError,
    CinderlibError,
    DriverOperationError,
    UnknownDriver,
)

NO_DEVICE = ("Failed to delete volume 'data01' on backend 'lvm': Volume device file path "
             "/dev/mapper/cinder--volumes-volume--0b5e8c7a does not exist.")


@pytest.mark.parametrize('exc, expected', [
    (UnknownDriver("Backend 'lvm': volume_driver: Cinder has no volume driver class named 'lvm'."),
     hints.DRIVERS_HINT),
    (DriverOperationError(NO_DEVICE), hints.VOLUME_CLEAR_HINT),
    (BackendConfigError("Invalid configuration for backend 'lvm': unknown option 'x'"), ''),
    (CinderlibError('Volume device file path /dev/sdb does not exist.'), ''),
    (CinderlibError('anything else'), ''),
])
def test_hint(exc, expected):
    assert hints.hint(exc) == expected
    assert hints.with_hint(exc) == (exc.message + ' ' + expected if expected else exc.message)


def test_hints_name_the_module_and_the_option():
    assert 'cinderlib.storage.cinderlib_drivers_info' in hints.DRIVERS_HINT
    assert 'volume_clear: none' in hints.VOLUME_CLEAR_HINT


@pytest.mark.parametrize('exc, ending', [
    (UnknownDriver("Backend 'lvm': volume_driver: Cinder has no volume driver class named 'LVMDriver'."),
     hints.DRIVERS_HINT),
    (DriverOperationError(NO_DEVICE), hints.VOLUME_CLEAR_HINT),
])
def test_a_failed_task_carries_the_hint(capsys, exc, ending):
    with contextlib.ExitStack() as stack:
        stack.enter_context(patch_module_args({}))
        module = CinderlibModule(argument_spec={}, needs_cinder=False, needs_backend=False)

        def run(_module):
            raise exc

        with pytest.raises(SystemExit):
            module.run(run)
    out = json.loads(capsys.readouterr().out)
    assert out['failed'] and out['msg'] == exc.message + ' ' + ending
