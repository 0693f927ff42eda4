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

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import (  # noqa: F401
    Backend,
    setup,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.connections import (  # noqa: F401
    Connection,
)
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
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.objects import (  # noqa: F401
    Snapshot,
    Volume,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.serialization import (  # noqa: F401
    dump,
    dumps,
    json,
    jsons,
    load,
)

__version__ = '0.1.0'

list_supported_drivers = Backend.list_supported_drivers
