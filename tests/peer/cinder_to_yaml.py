"""``cinderlib.cmd.cinder_to_yaml`` for cinderlib 5.2.0's suite (its
base_tests imports it): a cinder.conf's backends as the suite's config dict,
read by the library's cinder.conf reader (Cinder-free; cinderlib's own version
loaded each driver to type the values).

Not part of the drop-in wheel (cinderlib's command-line converters are left
out): tests/peer/prepare.py puts it at cinderlib/cmd/ of the assembled suite,
which tests/peer/conftest.py adds to the installed cinderlib's ``__path__``.
"""

import os

import yaml
from cinderlib.backend_config import load_backends


def convert(cinder_source, yaml_dest=None):
    """``{'backends': [driver options, ...]}`` of a cinder.conf's enabled_backends."""
    if not os.path.exists(cinder_source):
        raise Exception("Cinder config file %s doesn't exist" % cinder_source)
    result = {'backends': list(load_backends(cinder_source).values())}
    if yaml_dest:
        with open(yaml_dest, 'w', encoding='utf-8') as handle:
            yaml.safe_dump(result, handle)
    return result
