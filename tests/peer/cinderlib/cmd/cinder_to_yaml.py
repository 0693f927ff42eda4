"""``cinderlib.cmd.cinder_to_yaml`` for the suite: a cinder.conf's backends as
the suite's config dict, read by our library's cinder.conf reader (Cinder-free;
cinderlib's own version loaded each driver to type the values)."""

import os

import yaml

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend_config import load_backends


def convert(cinder_source, yaml_dest=None):
    """``{'backends': [driver options, ...]}`` of a cinder.conf's enabled_backends."""
    if not os.path.exists(cinder_source):
        raise Exception("Cinder config file %s doesn't exist" % cinder_source)
    result = {'backends': list(load_backends(cinder_source).values())}
    if yaml_dest:
        with open(yaml_dest, 'w', encoding='utf-8') as handle:
            yaml.safe_dump(result, handle)
    return result
