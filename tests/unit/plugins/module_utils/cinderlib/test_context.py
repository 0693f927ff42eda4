# The library's process-wide state lives in context.py; cinderlib's API shows it
# as Backend's class attributes, on the class and on its instances.
from __future__ import annotations

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import context
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import Backend
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import SetupError


@pytest.fixture
def fresh_state(monkeypatch):
    monkeypatch.setattr(context, 'STATE', context.LibraryState())


def test_setup_once_and_the_backend_attributes_read_the_context(fresh_state):
    assert Backend.global_initialization is False and Backend.persistence is None and Backend.settings is None
    Backend.global_setup(persistence_config={'storage': 'memory'}, non_uuid_ids=True)
    assert Backend.global_initialization is True
    assert Backend.persistence is context.store() and Backend.settings is context.settings()
    assert context.setting('non_uuid_ids') is True and context.setting('no_such_setting', 'x') == 'x'
    # cinderlib's tests read them on an instance too: self.backend.persistence.get_volumes(...)
    instance = object.__new__(Backend)
    assert instance.persistence is context.store() and instance.backends is context.STATE.backends
    with pytest.raises(SetupError):
        Backend.global_setup()


def test_writing_the_class_attributes_writes_the_context(fresh_state):
    # What tests and cinderlib users do to start over.
    Backend.global_setup(persistence_config={'storage': 'memory'})
    Backend.backends, Backend.global_initialization, Backend.persistence = {}, False, None
    assert (context.STATE.backends, context.STATE.initialized, context.store()) == ({}, False, None)
    context.ensure_setup()
    assert Backend.global_initialization is True and Backend.persistence is not None
