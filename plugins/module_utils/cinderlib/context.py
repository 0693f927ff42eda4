# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""The library's process-wide state, in one place: the settings ``setup()``
made, the state store they name, and the backends initialised so far.

cinderlib's API shows these as class attributes of Backend
(``Backend.settings``, ``Backend.persistence``, ``Backend.backends``,
``Backend.global_initialization``); those read and write here. The rest of
the library looks them up here too, so that no module needs Backend (and an
import inside a function to dodge the cycle) to reach the store.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import loader
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import SetupError
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import open_store


class LibraryState:
    """What ``setup()`` made; a new process starts with nothing set up."""

    def __init__(self) -> None:
        self.settings: loader.Settings | None = None
        self.store = None  # persistence.StateStore
        self.initialized = False
        self.backends: dict[str, Any] = {}  # volume_backend_name -> Backend


STATE = LibraryState()


def setup(**options: Any) -> None:
    """The library's global setup (``Backend.global_setup``), once per process."""
    if STATE.initialized:
        raise SetupError('Already setup')
    settings = loader.make_settings(options)
    if settings.write_nothing:
        loader.keep_caches_unwritten()
    STATE.store = open_store(settings.persistence_config, settings.write_nothing)
    STATE.settings = settings
    STATE.initialized = True


def reopen_store() -> None:
    """Open the state store of ``setup()`` again: what a process forked from
    one that was set up does first. The parent's connections are not its own,
    and the store may have changed since (replaced, damaged, upgraded by a
    newer collection, or, in memory, it starts empty in each process)."""
    if not STATE.initialized:
        raise SetupError('The library is not set up: call setup() first')
    STATE.store = open_store(STATE.settings.persistence_config, STATE.settings.write_nothing)


def set_persistence(persistence_config: dict):
    """Open and use another state store (``Backend.set_persistence``); the
    previous one is closed. Returns the new store."""
    if not STATE.initialized:
        raise SetupError('set_persistence can only be called after the library is set up (setup())')
    store = open_store(persistence_config, STATE.settings.write_nothing)
    previous, STATE.store = STATE.store, store
    STATE.settings.persistence_config = persistence_config
    if previous is not None and previous is not store:
        previous.close()
    return store


def ensure_setup() -> None:
    """Set the library up with its defaults unless that was done."""
    if not STATE.initialized:
        setup()


def settings() -> loader.Settings | None:
    return STATE.settings


def setting(name: str, default: Any = None) -> Any:
    """One setting of ``setup()``; ``default`` before setup."""
    return getattr(STATE.settings, name, default) if STATE.settings is not None else default


def store():
    """The state store (``Backend.persistence``)."""
    return STATE.store


def cinder_runtime() -> loader.CinderRuntime:
    """Cinder configured from the settings (imported the first time)."""
    return loader.CinderRuntime.get(STATE.settings)
