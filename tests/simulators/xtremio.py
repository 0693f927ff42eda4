"""A simulated Dell EMC XtremIO XMS REST API (``/api/json/types`` and
``/api/json/v2/types``), in memory, for tests only.

Built from the calls of Cinder's XtremIO driver
(``cinder/volume/drivers/dell_emc/xtremio.py``, Cinder 29) and the shapes of
Cinder's own fake of the API (``cinder/tests/unit/volume/drivers/dell_emc/
test_xtremio.py``): objects are listed as ``{"<type>": [{"href", "name"}]}``
or, with ``full=1``, as whole objects; one object is ``{"content": {...}}``;
a POST answers ``201 {"links": [{"href", "rel": "self"}]}``; object ids are
``[guid, name, index]`` triples; ``filter=prop:eq:value`` narrows a listing
(conditions in one ``filter`` joined by commas match any, several ``filter``
parameters must all match); ``prop=`` limits the properties returned; a
missing object is ``400 {"message": "obj_not_found"}`` (the driver tests the
message's end). Sizes: ``vol-size`` is sent as "<n>g" and read back in KiB.

Choices of the simulator where the driver does not tell: a mapped volume or
initiator group can't be deleted, a volume can't shrink, names are unique per
object type, LUNs of an initiator group count from 1, the 401 body text.

CHAP: the cluster's ``chap-authentication-mode`` and ``chap-discovery-mode``
are ``disabled``, or ``initiator`` with ``chap=True`` (``--chap``); then the
driver gives each initiator it creates passwords, which the array keeps and
shows (the driver reads them back to build the connection info).

    python -m ansible_collections.cinderlib.storage.tests.simulators.xtremio --login admin --port-file PORTFILE [--chap]
    (password from the SIMULATOR_PASSWORD environment variable)
"""

from __future__ import annotations

import argparse
import re
import sys
import uuid
from typing import Any

from ansible_collections.cinderlib.storage.tests.simulators.base import ApiError, ArrayAPI, main

KIB_PER = {'k': 1, 'm': 1024, 'g': 1024 ** 2, 't': 1024 ** 3}
CLUSTER_SPACE_KIB = 10 * 1024 ** 3  # 10 TiB of SSD space
TYPES = ('clusters', 'xms', 'volumes', 'snapshot-sets', 'initiator-groups', 'initiators', 'lun-maps',
         'iscsi-portals', 'targets', 'target-groups')
ID_KEYS = {'volumes': 'vol-id', 'initiator-groups': 'ig-id', 'initiators': 'initiator-id',
           'lun-maps': 'mapping-id', 'snapshot-sets': 'snapset-id', 'clusters': 'sys-id', 'xms': 'xms-id',
           'iscsi-portals': 'portal-id', 'targets': 'tar-id', 'target-groups': 'tg-id'}
_PATH = re.compile(r'^/api/json/(?:(v2)/)?types/([a-z-]+)(?:/(\d+))?/?$')


def not_found() -> ApiError:
    return ApiError(400, {'message': 'obj_not_found', 'error_code': 400})


def bad_request(message: str) -> ApiError:
    return ApiError(400, {'message': message, 'error_code': 400})


def size_kib(text: Any) -> int:
    match = re.fullmatch(r'(\d+)([kmgt])', str(text).strip().lower())
    if not match or int(match.group(1)) <= 0:
        raise bad_request('invalid vol-size %r' % (text,))
    return int(match.group(1)) * KIB_PER[match.group(2)]


class XtremIOAPI(ArrayAPI):
    product = 'xtremio'

    def __init__(self, login: str, password: str, cluster_name: str = 'xtremio_cluster',
                 portal_ip: str = '127.0.0.1', chap: bool = False) -> None:
        super().__init__(login, password)
        self.objects: dict[str, dict[int, dict]] = {t: {} for t in TYPES}
        self.next_index = {t: 1 for t in TYPES}
        self.cluster_name = cluster_name
        self._add('clusters', cluster_name, {
            'sys-sw-version': '4.0.25-27', 'ud-ssd-space': str(CLUSTER_SPACE_KIB), 'ud-ssd-space-in-use': '0',
            'vol-size': '0', 'chap-authentication-mode': 'initiator' if chap else 'disabled',
            'chap-discovery-mode': 'initiator' if chap else 'disabled'})
        self._add('xms', 'xms', {'version': '4.2.4', 'sw-version': '4.2.4-4'})
        self._add('target-groups', 'Default', {})
        for number in (1, 2):
            self._add('iscsi-portals', '%s/8-%d' % (portal_ip, number), {
                'ip-addr': '%s/8' % portal_ip, 'ip-port': 3260,
                'port-address': 'iqn.2008-05.com.xtremio:simulator-%02d' % number})

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--chap', action='store_true',
                            help='require CHAP (login and discovery): the driver gives initiators passwords')

    @classmethod
    def options(cls, args: argparse.Namespace) -> dict:
        return {'chap': args.chap}

    # -- state ----------------------------------------------------------------------
    def _add(self, typ: str, name: str, fields: dict) -> dict:
        if name and self._by_name(typ, name) is not None:
            raise bad_request({'volumes': 'vol_obj_name_not_unique'}.get(typ, 'obj_name_not_unique'))
        index = self.next_index[typ]
        self.next_index[typ] += 1
        obj = dict(fields, name=name, index=index)
        obj[ID_KEYS[typ]] = [uuid.uuid4().hex, name, index]
        self.objects[typ][index] = obj
        return obj

    def _by_name(self, typ: str, name: str) -> dict | None:
        return next((o for o in self.objects[typ].values() if o['name'] == name), None)

    def _find(self, typ: str, name: str | None, index: int | None) -> dict:
        obj = self.objects[typ].get(index) if index is not None else self._by_name(typ, name or '')
        if obj is None:
            raise not_found()
        return obj

    def _ref(self, typ: str, key: Any) -> dict | None:
        """An object named by name or index (the API accepts both)."""
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit() and int(key) in self.objects[typ]):
            return self.objects[typ].get(int(key))
        return self._by_name(typ, str(key))

    def _cluster(self) -> dict:
        cluster = next(iter(self.objects['clusters'].values()))
        volumes = self.objects['volumes'].values()
        cluster['vol-size'] = str(sum(int(v['vol-size']) for v in volumes))
        cluster['num-of-vols'] = len(self.objects['volumes'])
        return cluster

    def _view(self, typ: str, obj: dict) -> dict:
        if typ == 'clusters':
            obj = self._cluster()
        elif typ == 'initiator-groups':
            obj['num-of-vols'] = sum(1 for m in self.objects['lun-maps'].values() if m['ig-index'] == obj['index'])
            obj['num-of-initiators'] = sum(1 for i in self.objects['initiators'].values()
                                           if i['ig-id'][2] == obj['index'])
        elif typ == 'volumes':
            maps = [m for m in self.objects['lun-maps'].values() if m['vol-index'] == obj['index']]
            obj['lun-mapping-list'] = [[self.objects['initiator-groups'][m['ig-index']]['ig-id'],
                                        m['tg-id'], m['lun']] for m in maps]
            obj['num-of-lun-mappings'] = len(maps)
            obj['num-of-dest-snaps'] = sum(1 for v in self.objects['volumes'].values()
                                           if v['ancestor-vol-id'] and v['ancestor-vol-id'][2] == obj['index'])
        return dict(obj)

    # -- requests -------------------------------------------------------------------
    def unauthorized(self) -> ApiError:
        return ApiError(401, {'message': 'authentication failed: wrong user name or password', 'error_code': 401})

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        match = _PATH.match(path)
        if not match or match.group(2) not in TYPES + ('snapshots',):
            raise ApiError(404, {'message': 'no such resource %s' % path, 'error_code': 404})
        version, typ, index = match.group(1) or 'v1', match.group(2), match.group(3)
        self._base = '/api/json/%stypes' % ('v2/' if version == 'v2' else '')
        body = body if isinstance(body, dict) else {}
        if version == 'v2':
            self._check_cluster(query.get('cluster-name', [None])[0] if method in ('GET', 'DELETE')
                                else body.pop('cluster-id', None))
        if typ == 'snapshots':
            if method == 'POST':
                return 201, self._create_snapshots(body, version)
            typ = 'volumes'  # XtremIO snapshots are volumes
        name = query.get('name', [None])[0]
        index = int(index) if index else None
        if method == 'GET':
            if name is None and index is None:
                return 200, self._list(typ, query)
            return 200, {'content': self._props(self._view(typ, self._find(typ, name, index)), query)}
        if method == 'POST':
            return 201, self._link(typ, self._create(typ, body))
        if method == 'PUT':
            self._update(typ, self._find(typ, name, index), body)
            return 200, None
        if method == 'DELETE':
            self._delete(typ, self._find(typ, name, index))
            return 200, None
        raise ApiError(405, {'message': 'method %s not allowed' % method, 'error_code': 405})

    def _check_cluster(self, cluster: str | None) -> None:
        if cluster is not None and cluster != self.cluster_name:
            raise not_found()

    def _link(self, typ: str, obj: dict) -> dict:
        return {'links': [{'href': 'https://xms%s/%s/%d' % (self._base, typ, obj['index']), 'rel': 'self'}]}

    @staticmethod
    def _props(obj: dict, query: dict[str, list[str]]) -> dict:
        props = [p for value in query.get('prop', []) for p in value.split(',') if p]
        return {k: v for k, v in obj.items() if k in props} if props else obj

    def _list(self, typ: str, query: dict[str, list[str]]) -> dict:
        found = [self._view(typ, o) for o in self.objects[typ].values()]
        for value in query.get('filter', []):
            conditions = []
            for condition in value.split(','):
                prop, op, wanted = (condition.split(':', 2) + ['', ''])[:3]
                if op not in ('eq', 'ne'):
                    raise bad_request('unsupported filter %r' % condition)
                conditions.append((prop, op, wanted))
            found = [o for o in found if any((str(o.get(p)) == w) == (op == 'eq') for p, op, w in conditions)]
        if query.get('full', ['0'])[0] == '1':
            return {typ: [self._props(o, query) for o in found]}
        return {typ: [{'href': 'https://xms%s/%s/%d' % (self._base, typ, o['index']), 'name': o['name']}
                      for o in found]}

    def _create(self, typ: str, body: dict) -> dict:
        if typ == 'volumes':
            if not body.get('vol-name'):
                raise bad_request('missing vol-name')
            return self._add('volumes', body['vol-name'], {
                'vol-size': str(size_kib(body.get('vol-size'))), 'ancestor-vol-id': '', 'snapshot-type': '',
                'small-io-alerts': 'disabled'})
        if typ == 'initiator-groups':
            if not body.get('ig-name'):
                raise bad_request('missing ig-name')
            return self._add('initiator-groups', body['ig-name'], {})
        if typ == 'initiators':
            return self._create_initiator(body)
        if typ == 'lun-maps':
            return self._create_lun_map(body)
        raise bad_request('objects of type %s cannot be created' % typ)

    def _create_initiator(self, body: dict) -> dict:
        group = self._ref('initiator-groups', body.get('ig-id'))
        if group is None:
            raise bad_request('ig_obj_not_found')
        port = body.get('port-address')
        if not port or any(i['port-address'] == port for i in self.objects['initiators'].values()):
            raise bad_request('invalid or duplicate port-address')
        return self._add('initiators', body.get('initiator-name') or port, {
            'port-address': port, 'ig-id': group['ig-id'],
            'chap-authentication-initiator-user-name': body.get('initiator-authentication-user-name'),
            'chap-authentication-initiator-password': body.get('initiator-authentication-password'),
            'chap-discovery-initiator-user-name': body.get('initiator-discovery-user-name'),
            'chap-discovery-initiator-password': body.get('initiator-discovery-password')})

    def _create_lun_map(self, body: dict) -> dict:
        volume = self._ref('volumes', body.get('vol-id'))
        if volume is None:
            raise bad_request('vol_obj_not_found')
        group = self._ref('initiator-groups', body.get('ig-id'))
        if group is None:
            raise bad_request('ig_obj_not_found')
        maps = [m for m in self.objects['lun-maps'].values() if m['ig-index'] == group['index']]
        if any(m['vol-index'] == volume['index'] for m in maps):
            raise bad_request('already_mapped')
        used = {m['lun'] for m in maps}
        lun = body.get('lun')
        if lun is not None and (not isinstance(lun, int) or lun in used):
            raise bad_request('lun_already_in_use')
        if lun is None:
            lun = next(n for n in range(1, len(used) + 2) if n not in used)
        target_group = self._by_name('target-groups', 'Default')
        name = '%d_%d_%d' % (volume['index'], group['index'], target_group['index'])
        return self._add('lun-maps', name, {
            'lun': lun, 'vol-name': volume['name'], 'ig-name': group['name'], 'tg-name': 'Default',
            'vol-index': volume['index'], 'ig-index': group['index'], 'tg-id': target_group['tg-id'],
            'vol-id': volume['vol-id'], 'ig-id': group['ig-id']})

    def _create_snapshots(self, body: dict, version: str) -> dict:
        if version == 'v1' or 'ancestor-vol-id' in body:
            # The 3.x form: one snapshot named by the caller.
            sources, names = [body.get('ancestor-vol-id')], [body.get('snap-vol-name')]
            snap_type = 'regular'
        else:
            sources = body.get('volume-list') or []
            suffix = body.get('snap-suffix') or 'snapshot'
            names = [None] * len(sources)
            snap_type = body.get('snapshot-type', 'regular')
        if not sources or snap_type not in ('regular', 'readonly'):
            raise bad_request('invalid snapshot request')
        created = []
        for number, source_key in enumerate(sources):
            name = names[number]
            source = self._ref('volumes', source_key)
            if source is None:
                raise bad_request('vol_obj_not_found')
            created.append(self._add('volumes', name or '%s.%s' % (source['name'], suffix), {
                'vol-size': source['vol-size'], 'ancestor-vol-id': source['vol-id'], 'snapshot-type': snap_type,
                'small-io-alerts': 'disabled'}))
        set_name = body.get('snapshot-set-name') or 'SnapshotSet.%d' % self.next_index['snapshot-sets']
        if self._by_name('snapshot-sets', set_name) is None:
            self._add('snapshot-sets', set_name, {'vol-list': [v['vol-id'] for v in created]})
        # The driver renames the snapshot it finds at links[0].
        return {'links': [{'href': 'https://xms%s/snapshots/%d' % (self._base, v['index']), 'rel': 'self'}
                          for v in created]}

    def _update(self, typ: str, obj: dict, body: dict) -> None:
        changes = dict(body)
        new_name = changes.pop('name', None) or changes.pop('vol-name', None)
        if typ == 'volumes' and 'vol-size' in changes:
            new_size = size_kib(changes.pop('vol-size'))
            if new_size < int(obj['vol-size']):
                raise bad_request('volume size cannot be reduced')
            obj['vol-size'] = str(new_size)
        if typ == 'initiators':
            for key in list(changes):
                if key.startswith('initiator-') and key.endswith(('-user-name', '-password')):
                    kind = 'authentication' if 'authentication' in key else 'discovery'
                    field = 'user-name' if key.endswith('user-name') else 'password'
                    obj['chap-%s-initiator-%s' % (kind, field)] = changes.pop(key)
        if changes:
            raise bad_request('cannot change %s of %s' % (', '.join(sorted(changes)), typ))
        if new_name and new_name != obj['name']:
            if self._by_name(typ, new_name) is not None:
                raise bad_request({'volumes': 'vol_obj_name_not_unique'}.get(typ, 'obj_name_not_unique'))
            obj['name'] = new_name
            obj[ID_KEYS[typ]][1] = new_name
            self._renamed(typ, obj)

    def _renamed(self, typ: str, obj: dict) -> None:
        for lun_map in self.objects['lun-maps'].values():
            if typ == 'volumes' and lun_map['vol-index'] == obj['index']:
                lun_map['vol-name'] = obj['name']
            if typ == 'initiator-groups' and lun_map['ig-index'] == obj['index']:
                lun_map['ig-name'] = obj['name']

    def _delete(self, typ: str, obj: dict) -> None:
        if typ == 'volumes':
            if any(m['vol-index'] == obj['index'] for m in self.objects['lun-maps'].values()):
                raise bad_request('vol_has_lun_mappings')
            for snapset in list(self.objects['snapshot-sets'].values()):
                snapset['vol-list'] = [v for v in snapset['vol-list'] if v[2] != obj['index']]
                if not snapset['vol-list']:
                    del self.objects['snapshot-sets'][snapset['index']]
        elif typ == 'initiator-groups':
            if any(m['ig-index'] == obj['index'] for m in self.objects['lun-maps'].values()):
                raise bad_request('ig_has_lun_mappings')
            for initiator in list(self.objects['initiators'].values()):
                if initiator['ig-id'][2] == obj['index']:
                    del self.objects['initiators'][initiator['index']]
        elif typ not in ('lun-maps', 'initiators', 'snapshot-sets'):
            raise bad_request('objects of type %s cannot be deleted' % typ)
        del self.objects[typ][obj['index']]

    # -- for tests ------------------------------------------------------------------
    def volume_names(self) -> list[str]:
        with self.lock:
            return sorted(v['name'] for v in self.objects['volumes'].values())

    def count(self, typ: str) -> int:
        with self.lock:
            return len(self.objects[typ])


if __name__ == '__main__':
    sys.exit(main(XtremIOAPI))
