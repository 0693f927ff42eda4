"""Test-only alias: ``import cinderlib`` gives cinderlib.storage's library.

cinderlib 5.2.0's functional suite imports ``cinderlib``; this package makes
that name resolve to our re-creation, so that the suite runs unchanged. It is
never shipped (galaxy.yml build_ignore) and is only put on sys.path by
tests/peer/run.sh (assembled under $CINDERLIB_BUILD/peer-suite/site with the
suite's files from the cinderlib 5.2.0 wheel as cinderlib.tests.functional).
"""

from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib as _library
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import exceptions as exception  # noqa: F401
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (  # noqa: F401
    BackendConfigError,
    BackendInitError,
    CinderlibError,
    DriverOperationError,
    InvalidRequest,
    MissingDependencyError,
    NotFound,
    PersistenceError,
    SetupError,
)

# cinderlib's top-level API (cinderlib/__init__.py of 5.2.0), from our library.
Backend = _library.Backend
setup = _library.setup
list_supported_drivers = _library.list_supported_drivers
Volume = _library.Volume
Snapshot = _library.Snapshot
Connection = _library.Connection
load = _library.load
json = _library.json
jsons = _library.jsons
dump = _library.dump
dumps = _library.dumps
__version__ = _library.__version__


def __getattr__(name):
    # Anything else cinderlib had (KeyValue, DEFAULT_PROJECT_ID, ...) comes
    # from the library when it has it, so the suite fails on the library's
    # gaps, not on this alias.
    return getattr(_library, name)
