# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
name: cinderlib
short_description: The volumes cinderlib.storage knows, one host per volume, grouped by backend
version_added: 0.1.0
description:
  - Reads the collection's state store (the one the modules write) and lists the known volumes.
  - One group per backend, named after the backend; one host per volume, named by the volume's
    name (or its id when it has none). A name used on several backends becomes
    C(NAME@BACKEND) for each of them, so that no volume hides another.
  - Host variables are the volume's fields (see the C(volume) result of
    M(cinderlib.storage.cinderlib_volume)), such as C(id), C(size), C(status), C(backend),
    C(snapshots), C(connections) and C(attached_hosts). Fields whose names Ansible reserves get
    a C(volume_) prefix; the volume's name is C(volume_name).
  - Never imports Cinder, so it runs on a controller without Cinder; it needs the Python
    package SQLAlchemy (and the database's driver, such as psycopg2 for PostgreSQL).
  - The configuration file's name must end with C(cinderlib.yml) or C(cinderlib.yaml).
author:
  - cinderlib.storage developers (@cinderlib)
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin.
    required: true
    choices: [cinderlib.storage.cinderlib]
    type: str
  persistence:
    description:
      - The state store to read, as given to the modules' O(persistence) option.
    type: dict
    required: true
    suboptions:
      storage:
        description: Only V(db) can be read from another process.
        type: str
        choices: [db]
        default: db
      connection:
        description:
          - A SQLAlchemy URL, such as C(sqlite:////var/lib/cinderlib/state.db) or
            C(postgresql+psycopg2://user:password@host/db).
        type: str
        required: true
      retry_window:
        description:
          - Seconds to keep trying a database server store that can't be reached (the modules'
            O(persistence.retry_window)); when not set, V(12). V(0) tries once.
        type: float
  backends:
    description: Only list the volumes of these backends (all when empty).
    type: list
    elements: str
    default: []
  statuses:
    description: Only list volumes in these statuses (all when empty), such as C(available) or C(error).
    type: list
    elements: str
    default: []
  volume_connection:
    description:
      - The C(ansible_connection) set on every volume host.
      - Operations on a volume run where its backend is, not on the volume, hence V(local).
    type: str
    default: local
'''

EXAMPLES = r'''
# my.cinderlib.yml
plugin: cinderlib.storage.cinderlib
persistence:
  connection: sqlite:////var/lib/cinderlib/state.db

# Only healthy LVM volumes, with a group per size and one for the big ones:
# plugin: cinderlib.storage.cinderlib
# persistence:
#   connection: postgresql+psycopg2://cinderlib:secret@db.example.com/cinderlib
# backends: [lvm]
# statuses: [available, in-use]
# keyed_groups:
#   - key: size
#     prefix: size
# groups:
#   big: size >= 100
'''

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.vars.reserved import is_reserved_name

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import CinderlibError
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import open_store
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.views import backend_volume_views


def host_var_name(field: str) -> str:
    """The host variable for a volume field; Ansible reserves some names
    (``name`` is a play keyword), which become ``volume_<field>``."""
    return 'volume_' + field if is_reserved_name(field) else field


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = 'cinderlib.storage.cinderlib'

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(('cinderlib.yml', 'cinderlib.yaml'))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option('cache') and cache
        volumes = None
        if use_cache:
            try:
                volumes = self._cache[cache_key]
            except KeyError:
                pass
        if volumes is None:
            volumes = self._read_volumes()
            if self.get_option('cache'):
                self._cache[cache_key] = volumes
        self._populate(self._select(volumes))

    def _read_volumes(self) -> list[dict]:
        persistence = dict(self.get_option('persistence') or {})
        try:
            store = open_store(persistence)
            try:
                return backend_volume_views(store)
            finally:
                store.close()
        except CinderlibError as exc:
            raise AnsibleParserError('cinderlib inventory: %s' % exc.message) from exc

    def _select(self, volumes: list[dict]) -> list[dict]:
        backends = set(self.get_option('backends') or [])
        statuses = set(self.get_option('statuses') or [])
        return [v for v in volumes
                if (not backends or v['backend'] in backends) and (not statuses or v['status'] in statuses)]

    @staticmethod
    def host_names(volumes: list[dict]) -> list[str]:
        """Host name per volume: its name, its id when unnamed or when the
        backend has other volumes of that name (the library allows it),
        NAME@BACKEND when the name is used on more than one backend."""
        backends_by_name: dict[str, set] = {}
        per_backend: dict[tuple, int] = {}
        for volume in volumes:
            if volume['name']:
                backends_by_name.setdefault(volume['name'], set()).add(volume['backend'])
                key = (volume['name'], volume['backend'])
                per_backend[key] = per_backend.get(key, 0) + 1
        names = []
        for volume in volumes:
            if not volume['name'] or per_backend[(volume['name'], volume['backend'])] > 1:
                names.append(volume['id'])
            elif len(backends_by_name[volume['name']]) > 1:
                names.append('%s@%s' % (volume['name'], volume['backend']))
            else:
                names.append(volume['name'])
        return names

    def _populate(self, volumes: list[dict]) -> None:
        strict = self.get_option('strict')
        connection = self.get_option('volume_connection')
        for host, volume in zip(self.host_names(volumes), volumes, strict=True):
            group = self.inventory.add_group(self._sanitize_group_name(volume['backend']))
            self.inventory.add_host(host, group=group)
            for key, value in volume.items():
                self.inventory.set_variable(host, host_var_name(key), value)
            self.inventory.set_variable(host, 'ansible_connection', connection)
            self._set_composite_vars(self.get_option('compose'), volume, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option('groups'), volume, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option('keyed_groups'), volume, host, strict=strict)
