"""A simulated Kaminario K2 REST API (``/api/v2``), in memory, for tests only.

Built from what the ``krest`` client (1.3.8) and Cinder's Kaminario driver
(``cinder/volume/drivers/kaminario/``, Cinder 29) send and read: ``GET
/api/v2`` lists the resources and their URLs (krest's discovery); a search
answers ``{"hits", "total", "limit", "offset"}``; objects refer to each other
as ``{"ref": "/volume_groups/3"}`` and are searched by ``field=value``,
``field.ref=/type/id`` and ``field__m_eq=a,b``; POST creates (answering the
object with its ``id``), PATCH changes, DELETE removes; errors are JSON with
``error_code`` and ``error_msg`` (what krest shows). Sizes are in KiB.

The K2 model the driver relies on: each volume lives in its own volume group;
snapshots are of volume groups (``source``) and carry a ``short_name``; a
snapshot taken of a snapshot with ``is_exposable`` is a view, whose volumes
(``volsnaps``) can be mapped to hosts; hosts hold initiator IQNs
(``host_iqns``); a mapping joins a volume (or a view) to a host with a LUN.

Choices of the simulator where the driver does not tell: names are unique per
type; a volume can't shrink; a mapped volume or view, a host with mappings and
a volume group with volumes or snapshots can't be deleted; deleting a host
removes its IQNs; LUNs of a host count from 1; replication objects exist but
stay empty (replication is not simulated); the 401 body text.

With a data path (``--data-dir``, tests/simulators/datapath.py) each volume
has a sparse file, a snapshot copies its volume group's volumes and a view
its snapshot's; with ``--lio`` as well, mappings become LUNs of a real LIO
iSCSI target (the ``iscsi_qualified_target_name``, at ``system/net_ips``
port 3260) for the host's IQNs: what the K2 driver needs for clones and
volumes from snapshots, which it copies through an iSCSI attach.

    python -m ansible_collections.cinderlib.storage.tests.simulators.kaminario --login admin --port-file PORTFILE \
        [--data-dir DIR [--lio] [--portal-ip IP]]
    (password from the SIMULATOR_PASSWORD environment variable)
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any

from ansible_collections.cinderlib.storage.tests.simulators.base import ApiError, ArrayAPI, main
from ansible_collections.cinderlib.storage.tests.simulators.datapath import FileData, LioExports

PREFIX = '/api/v2'
CAPACITY_KIB = 10 * 1024 ** 3  # 10 TiB
TARGET_IQN = 'iqn.2009-01.com.kaminario:storage.k2.simulator'
# Resource name -> what POST may create (None: read-only in this simulator).
RESOURCES = {
    'volumes': ('name', 'size', 'volume_group'),
    'volume_groups': ('name',),
    'snapshots': ('short_name', 'source', 'retention_policy'),
    'hosts': ('name', 'type'),
    'host_iqns': ('iqn', 'host'),
    'mappings': ('volume', 'host'),
    'volsnaps': None,
    'retention_policies': None,
    'system/state': None,
    'system/capacity': None,
    'system/net_ips': None,
    'replication/sessions': None,
    'replication/peer_k2arrays': None,
    'replication/peer_volumes': None,
}
_ITEM = re.compile(r'^(.+)/(\d+)$')


def error(status: int, code: str, message: str) -> ApiError:
    return ApiError(status, {'error_code': code, 'error_msg': message})


def ref(typ: str, obj_id: int) -> dict:
    return {'ref': '/%s/%d' % (typ, obj_id)}


# Names of the data path's files: a volume's blocks, and what a snapshot (or view) holds of each
# volume of its group.
def volume_data(volume_id: int | str) -> str:
    return 'volume-%s' % volume_id


def snapshot_data(snapshot_id: int | str, volume_id: int | str = '') -> str:
    """With no volume id: the prefix of all the snapshot's files."""
    return 'snapshot-%s-volume-%s' % (snapshot_id, volume_id)


class KaminarioAPI(ArrayAPI):
    product = 'kaminario'

    def __init__(self, login: str, password: str, portal_ip: str = '127.0.0.1',
                 data_dir: str | None = None, lio: bool = False) -> None:
        super().__init__(login, password)
        self.data = FileData(data_dir) if data_dir else None
        self.exports = LioExports(self.data, TARGET_IQN, portal_ip, prefix='k2') if self.data and lio else None
        self.objects: dict[str, dict[int, dict]] = {t: {} for t in RESOURCES}
        self.next_id = {t: 1 for t in RESOURCES}
        self._add('retention_policies', {'name': 'Best_Effort_Retention', 'num_snapshots': 0})
        self._add('system/state', {'rest_api_version': '2.2.0', 'system_version': '6.0.0.0',
                                   'iscsi_qualified_target_name': TARGET_IQN,
                                   'state': 'online'})
        self._add('system/capacity', {'total': CAPACITY_KIB, 'free': CAPACITY_KIB, 'provisioned': 0,
                                      'provisioned_volumes': 0, 'provisioned_snapshots': 0})
        self._add('system/net_ips', {'ip_address': portal_ip, 'wan_port': '', 'type': 'iSCSI'})

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--portal-ip', default='127.0.0.1', help='the iSCSI portal the API reports')
        parser.add_argument('--data-dir', help='keep volumes, snapshots and views as sparse files here')
        parser.add_argument('--lio', action='store_true',
                            help='export mappings through the kernel\'s LIO target (root; needs --data-dir)')

    @classmethod
    def options(cls, args: argparse.Namespace) -> dict:
        if args.lio and not args.data_dir:
            raise ValueError('--lio needs --data-dir')
        return {'portal_ip': args.portal_ip, 'data_dir': args.data_dir, 'lio': args.lio}

    def close(self) -> None:
        if self.exports:
            self.exports.close()

    # -- state ----------------------------------------------------------------------
    def _add(self, typ: str, fields: dict) -> dict:
        obj_id = self.next_id[typ]
        self.next_id[typ] += 1
        obj = dict(fields, id=obj_id)
        self.objects[typ][obj_id] = obj
        return obj

    def _resolve(self, value: Any, *types: str) -> dict:
        """The object a ``{"ref": "/type/id"}`` names, which must be of one of ``types``."""
        path = value.get('ref') if isinstance(value, dict) else None
        match = _ITEM.match(path or '')
        typ = match.group(1).lstrip('/') if match else None
        obj = self.objects.get(typ, {}).get(int(match.group(2))) if match else None
        if obj is None or typ not in types:
            raise error(400, 'MC_ERR_INVALID_REF', 'expected a reference to one of %s, got %r' % (types, value))
        return obj

    def _name_taken(self, typ: str, field: str, name: Any) -> bool:
        return any(o.get(field) == name for o in self.objects[typ].values())

    def _refresh_capacity(self) -> None:
        provisioned = sum(v['size'] for v in self.objects['volumes'].values())
        capacity = self.objects['system/capacity'][1]
        capacity.update(provisioned=provisioned, provisioned_volumes=provisioned)

    # -- requests -------------------------------------------------------------------
    def unauthorized(self) -> ApiError:
        return error(401, 'MC_ERR_AUTH', 'authentication failed: wrong user name or password')

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if not path.startswith(PREFIX):
            raise error(404, 'MC_ERR_NOT_FOUND', 'no such resource %s' % path)
        path = path[len(PREFIX):].rstrip('/')
        if path == '':
            if method != 'GET':
                raise error(405, 'MC_ERR_METHOD', 'method %s not allowed' % method)
            return 200, {'resources': {t: {'url': '/' + t} for t in RESOURCES}}
        item = _ITEM.match(path)
        typ, obj_id = (item.group(1).lstrip('/'), int(item.group(2))) if item else (path.lstrip('/'), None)
        if typ not in RESOURCES:
            raise error(404, 'MC_ERR_NOT_FOUND', 'no such resource %s' % path)
        if obj_id is None:
            if method == 'GET':
                return 200, self._search(typ, query)
            if method == 'POST':
                return 201, self._create(typ, body if isinstance(body, dict) else {})
            raise error(405, 'MC_ERR_METHOD', 'method %s not allowed on %s' % (method, path))
        obj = self.objects[typ].get(obj_id)
        if obj is None:
            raise error(404, 'MC_ERR_OBJECT_NOT_FOUND', '%s %d does not exist' % (typ, obj_id))
        if method == 'GET':
            return 200, obj
        if method == 'PATCH':
            return 200, self._patch(typ, obj, body if isinstance(body, dict) else {})
        if method == 'DELETE':
            self._delete(typ, obj)
            return 204, None
        raise error(405, 'MC_ERR_METHOD', 'method %s not allowed on %s' % (method, path))

    def _search(self, typ: str, query: dict[str, list[str]]) -> dict:
        hits = list(self.objects[typ].values())
        for key, values in query.items():
            value = values[0]
            if key in ('__limit', '__offset', '__fields', '__sort'):
                continue
            if key.endswith('.ref') or key.endswith('.ref__m_eq'):
                field = key.split('.ref')[0]
                wanted = set(value.split(',')) if key.endswith('__m_eq') else {value}
                hits = [h for h in hits if self._ref_matches(typ, field, h.get(field), wanted)]
            elif key.endswith('__m_eq'):
                field = key[:-len('__m_eq')]
                hits = [h for h in hits if str(h.get(field)) in set(value.split(','))]
            else:
                hits = [h for h in hits if _plain(h.get(key)) == value]
        offset = int(query.get('__offset', ['0'])[0])
        limit = int(query.get('__limit', [str(len(hits))])[0])
        return {'hits': hits[offset:offset + limit], 'total': len(hits), 'limit': limit, 'offset': offset}

    def _ref_matches(self, typ: str, field: str, value: Any, wanted: set[str]) -> bool:
        if not isinstance(value, dict):
            return False
        if value['ref'] in wanted:
            return True
        # A mapping of a view maps its volsnaps: searching by a volsnap finds it.
        if typ == 'mappings' and field == 'volume':
            for path in wanted:
                match = _ITEM.match(path)
                volsnap = self.objects['volsnaps'].get(int(match.group(2))) if match and \
                    match.group(1) == '/volsnaps' else None
                if volsnap and volsnap['snapshot']['ref'] == value['ref']:
                    return True
        return False

    def _create(self, typ: str, body: dict) -> dict:
        allowed = RESOURCES[typ]
        if allowed is None:
            raise error(400, 'MC_ERR_READ_ONLY', '%s cannot be created through this API' % typ)
        return getattr(self, '_create_' + typ)(body)

    def _create_volume_groups(self, body: dict) -> dict:
        name = body.get('name')
        if not name or self._name_taken('volume_groups', 'name', name):
            raise error(400, 'MC_ERR_NAME_EXISTS', 'volume group name %r is missing or taken' % (name,))
        return self._add('volume_groups', {'name': name, 'quota': int(body.get('quota') or 0),
                                           'is_dedup': bool(body.get('is_dedup', True)), 'is_compressed': True})

    def _create_volumes(self, body: dict) -> dict:
        name, size = body.get('name'), body.get('size')
        group = self._resolve(body.get('volume_group'), 'volume_groups')
        if not name or self._name_taken('volumes', 'name', name):
            raise error(400, 'MC_ERR_NAME_EXISTS', 'volume name %r is missing or taken' % (name,))
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise error(400, 'MC_ERR_INVALID_SIZE', 'size must be a positive number of KiB, got %r' % (size,))
        volume = self._add('volumes', {'name': name, 'size': size, 'volume_group': ref('volume_groups', group['id']),
                                       'is_dedup': group['is_dedup'], 'creation_time': int(time.time())})
        if self.data:
            self.data.create(volume_data(volume['id']), size * 1024)
        self._refresh_capacity()
        return volume

    def _create_snapshots(self, body: dict) -> dict:
        short_name = body.get('short_name')
        if not short_name or self._name_taken('snapshots', 'short_name', short_name):
            raise error(400, 'MC_ERR_NAME_EXISTS', 'snapshot short_name %r is missing or taken' % (short_name,))
        source = body.get('source')
        source_obj = self._resolve(source, 'volume_groups', 'snapshots')
        policy = self._resolve(body.get('retention_policy'), 'retention_policies')
        is_view = 'snapshots' in source['ref']
        group_ref = source_obj['volume_group'] if is_view else ref('volume_groups', source_obj['id'])
        group = self._resolve(group_ref, 'volume_groups')
        snapshot = self._add('snapshots', {
            'short_name': short_name, 'name': '%s:%s' % (group['name'], short_name), 'source': source,
            'volume_group': group_ref, 'retention_policy': ref('retention_policies', policy['id']),
            'is_auto_deleteable': bool(body.get('is_auto_deleteable', True)),
            'is_exposable': bool(body.get('is_exposable', False)), 'creation_time': int(time.time())})
        for volume in self.objects['volumes'].values():
            if volume['volume_group'] != group_ref:
                continue
            if self.data:
                # What the snapshot holds: its volumes now, or (a view) what its source snapshot held.
                source_key = (snapshot_data(source_obj['id'], volume['id']) if is_view
                              else volume_data(volume['id']))
                self.data.copy(source_key, snapshot_data(snapshot['id'], volume['id']))
            if snapshot['is_exposable']:
                self._add('volsnaps', {'snapshot': ref('snapshots', snapshot['id']),
                                       'volume': ref('volumes', volume['id'])})
        return snapshot

    def _create_hosts(self, body: dict) -> dict:
        name = body.get('name')
        if not name or self._name_taken('hosts', 'name', name):
            raise error(400, 'MC_ERR_NAME_EXISTS', 'host name %r is missing or taken' % (name,))
        return self._add('hosts', {'name': name, 'type': body.get('type', 'Linux')})

    def _create_host_iqns(self, body: dict) -> dict:
        host = self._resolve(body.get('host'), 'hosts')
        iqn = body.get('iqn')
        if not iqn or self._name_taken('host_iqns', 'iqn', iqn):
            raise error(400, 'MC_ERR_IQN_EXISTS', 'iqn %r is missing or already belongs to a host' % (iqn,))
        return self._add('host_iqns', {'iqn': iqn, 'host': ref('hosts', host['id'])})

    def _create_mappings(self, body: dict) -> dict:
        volume_ref = body.get('volume')
        volume = self._resolve(volume_ref, 'volumes', 'snapshots')
        if 'snapshots' in volume_ref['ref'] and not volume['is_exposable']:
            raise error(400, 'MC_ERR_NOT_EXPOSABLE', 'snapshot %d is not a view' % volume['id'])
        host = self._resolve(body.get('host'), 'hosts')
        host_ref = ref('hosts', host['id'])
        mapped = [m for m in self.objects['mappings'].values() if m['host'] == host_ref]
        if any(m['volume']['ref'] == volume_ref['ref'] for m in mapped):
            raise error(400, 'MC_ERR_ALREADY_MAPPED', '%s is already mapped to host %s'
                        % (volume_ref['ref'], host['name']))
        used = {m['lun'] for m in mapped}
        lun = next(n for n in range(1, len(used) + 2) if n not in used)
        mapping = {'volume': {'ref': volume_ref['ref']}, 'host': host_ref, 'lun': lun}
        if self.exports:
            self.exports.map(self._data_key(volume_ref), lun, self._host_iqns(host_ref))
        return self._add('mappings', mapping)

    def _data_key(self, volume_ref: dict) -> str:
        """The data a mapping of a volume or a view shows (a view of one volume's group)."""
        typ, obj_id = _ITEM.match(volume_ref['ref']).groups()
        if typ == '/volumes':
            return volume_data(obj_id)
        volsnap = next((v for v in self.objects['volsnaps'].values() if v['snapshot']['ref'] == volume_ref['ref']),
                       None)
        if volsnap is None:
            raise error(400, 'MC_ERR_EMPTY_VIEW', 'view %s has no volumes to map' % volume_ref['ref'])
        return snapshot_data(obj_id, _ITEM.match(volsnap['volume']['ref']).group(2))

    def _host_iqns(self, host_ref: dict) -> list[str]:
        return [i['iqn'] for i in self.objects['host_iqns'].values() if i['host'] == host_ref]

    def _patch(self, typ: str, obj: dict, body: dict) -> dict:
        changes = {k: v for k, v in body.items() if k != 'id'}
        if typ == 'volumes' and 'size' in changes:
            size = changes.pop('size')
            if not isinstance(size, int) or isinstance(size, bool) or size < obj['size']:
                raise error(400, 'MC_ERR_INVALID_SIZE', 'volume size can only grow (%s KiB now, %r asked)'
                            % (obj['size'], size))
            obj['size'] = size
            if self.data:
                self.data.grow(volume_data(obj['id']), size * 1024)
            self._refresh_capacity()
        if 'name' in changes and typ in ('volumes', 'volume_groups', 'hosts'):
            name = changes.pop('name')
            if name != obj['name'] and self._name_taken(typ, 'name', name):
                raise error(400, 'MC_ERR_NAME_EXISTS', '%s name %r is taken' % (typ, name))
            obj['name'] = name
        if changes:
            raise error(400, 'MC_ERR_READ_ONLY', 'cannot change %s of %s' % (', '.join(sorted(changes)), typ))
        return obj

    def _delete(self, typ: str, obj: dict) -> None:
        this = '/%s/%d' % (typ, obj['id'])
        if typ in ('volumes', 'snapshots') and any(m['volume']['ref'] == this
                                                   for m in self.objects['mappings'].values()):
            raise error(400, 'MC_ERR_MAPPED', '%s is mapped to a host; unmap it first' % this)
        if typ == 'volume_groups' and any(o['volume_group']['ref'] == this for t in ('volumes', 'snapshots')
                                          for o in self.objects[t].values()):
            raise error(400, 'MC_ERR_NOT_EMPTY', 'volume group %s still has volumes or snapshots' % obj['name'])
        if typ == 'hosts':
            if any(m['host']['ref'] == this for m in self.objects['mappings'].values()):
                raise error(400, 'MC_ERR_MAPPED', 'host %s still has mappings' % obj['name'])
            for iqn in list(self.objects['host_iqns'].values()):
                if iqn['host']['ref'] == this:
                    del self.objects['host_iqns'][iqn['id']]
        if typ == 'snapshots':
            for volsnap in list(self.objects['volsnaps'].values()):
                if volsnap['snapshot']['ref'] == this:
                    del self.objects['volsnaps'][volsnap['id']]
        if RESOURCES[typ] is None:
            raise error(400, 'MC_ERR_READ_ONLY', '%s cannot be deleted through this API' % typ)
        if typ == 'mappings' and self.exports:
            self.exports.unmap(self._data_key(obj['volume']), obj['lun'], self._host_iqns(obj['host']))
        if self.data and typ == 'volumes':
            self.data.delete(volume_data(obj['id']))
        if self.data and typ == 'snapshots':
            for key in self.data.keys():
                if key.startswith(snapshot_data(obj['id'])):
                    self.data.delete(key)
        del self.objects[typ][obj['id']]
        self._refresh_capacity()

    # -- for tests ------------------------------------------------------------------
    def names(self, typ: str, field: str = 'name') -> list[str]:
        with self.lock:
            return sorted(str(o[field]) for o in self.objects[typ].values())

    def count(self, typ: str) -> int:
        with self.lock:
            return len(self.objects[typ])


def _plain(value: Any) -> str:
    """A field as a query string compares it."""
    if isinstance(value, bool):
        return str(value)
    return '' if value is None else str(value)


if __name__ == '__main__':
    sys.exit(main(KaminarioAPI))
