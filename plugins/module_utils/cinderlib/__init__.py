# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""cinderlib.storage's library: Cinder volume drivers without Cinder services.

Import it as ``from ansible_collections.cinderlib.storage.plugins.module_utils
import cinderlib`` and use it as cinderlib 5.x was used::

    lvm = cinderlib.Backend(volume_backend_name='lvm',
                            volume_driver='cinder.volume.drivers.lvm.LVMVolumeDriver',
                            volume_group='cinder-volumes')
    print(lvm.stats())

Importing this package does not import Cinder; the first Backend does.
"""

import importlib

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

# The rest is imported on first use (PEP 562): the modules' fast path imports
# submodules of this package and should not pay for the whole library.
_LAZY = {'Backend', 'setup', 'list_supported_drivers', 'Connection', 'Snapshot', 'Volume', 'dump', 'dumps', 'json',
         'jsons', 'load', 'KeyValue', 'PersistenceDriverBase', 'DEFAULT_PROJECT_ID', 'DEFAULT_USER_ID'}
# cinderlib's submodules that programs reach as attributes (cinderlib.exception.NotFound).
_SUBMODULES = {'exception', 'objects', 'persistence', 'serialization', 'utils'}
# os-brick's, as cinderlib gave them: imported only when asked for.
_BRICK = {'connector', 'get_connector_properties'}


def __getattr__(name: str):
    if name in _SUBMODULES:
        # By name: 'from <this package> import exception' would ask this function again.
        return importlib.import_module('%s.%s' % (__name__, name))
    if name in _BRICK:
        from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.loader import import_or_explain
        connector = import_or_explain('os_brick.initiator.connector', 'cinderlib.%s' % name)
        globals().update(connector=connector, get_connector_properties=connector.get_connector_properties)
        return globals()[name]
    if name not in _LAZY:
        raise AttributeError('module %r has no attribute %r' % (__name__, name))
    # Plain import statements, so that Ansible's module_utils finder sees
    # (and ships) these modules with every module that imports this package.
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import Backend, setup
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.connections import Connection
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.loader import DEFAULT_SETTINGS
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.objects import Snapshot, Volume
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import (
        KeyValue,
        PersistenceDriverBase,
    )
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.serialization import (
        dump,
        dumps,
        json,
        jsons,
        load,
    )
    exported = dict(Backend=Backend, setup=setup, list_supported_drivers=Backend.list_supported_drivers,
                    Connection=Connection, Snapshot=Snapshot, Volume=Volume, dump=dump, dumps=dumps, json=json,
                    jsons=jsons, load=load, KeyValue=KeyValue, PersistenceDriverBase=PersistenceDriverBase,
                    DEFAULT_PROJECT_ID=DEFAULT_SETTINGS['project_id'],
                    DEFAULT_USER_ID=DEFAULT_SETTINGS['user_id'])
    globals().update(exported)
    return exported[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY | _SUBMODULES | _BRICK)


__version__ = '0.1.0'
