# Fixtures for the library's unit tests.
from __future__ import annotations

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import Backend


@pytest.fixture
def library(tmp_path):
    """The library with a clean registry and an in-memory SQLite store.

    Cinder's own configuration is process-wide and stays configured between
    tests, as it would in a long-lived process.
    """
    from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib

    def reset():
        Backend.backends = {}
        Backend.global_initialization = False
        Backend.settings = None
        Backend.persistence = None

    reset()
    cinderlib.setup(persistence_config={'storage': 'memory_db'}, file_locks_path=str(tmp_path / 'locks'))
    yield cinderlib
    reset()
