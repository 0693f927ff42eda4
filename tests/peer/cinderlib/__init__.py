"""Test-only alias: ``import cinderlib`` gives cinderlib.storage's library.

cinderlib 5.2.0's functional suite imports ``cinderlib``; this package makes
that name resolve to our re-creation, so that the suite runs unchanged. It is
never shipped (galaxy.yml build_ignore) and is only put on sys.path by
tests/peer/run.sh (assembled under $CINDERLIB_BUILD/peer-suite/site with the
suite's files from the cinderlib 5.2.0 wheel as cinderlib.tests.functional).
"""

from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib as _library
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import exceptions as exception  # noqa: F401


def __getattr__(name):
    # cinderlib's top-level API (Backend, setup, Volume, load, the exceptions,
    # KeyValue...) is the library's: whatever it lacks fails in the suite as
    # a gap of the library, not of this alias.
    return getattr(_library, name)


def __dir__():
    return dir(_library)
