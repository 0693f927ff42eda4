# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""The part of Cinder's DB API that volume drivers call, over the state store.

Drivers get this object as their ``db``. Cinder's own DB (a full schema with
migrations) is not used: the state store is the only source of truth. A call
this subset lacks fails with a message that names it, so a driver needing
more is found out at once rather than silently misbehaving.
"""

from __future__ import annotations

from typing import Any


class Record(dict):
    """A stored record that reads like a DB row: ``r['x']`` and ``r.x``; a
    column the record lacks reads as NULL (None), as in a row
    (``r['provider_auth']`` of a volume never exported)."""

    def __missing__(self, key: str) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def backend_of_host(host: str) -> str:
    """'node@backend#pool' -> 'backend'."""
    return (host or '').split('@')[-1].split('#')[0]


class DriverDB:
    """Cinder DB API calls drivers make, answered from the state store."""

    def __init__(self, store, runtime=None) -> None:
        self.store = store
        self._runtime = runtime

    def _not_found(self, kind: str, **ids: Any) -> Exception:
        exceptions = getattr(self._runtime, 'cinder_exception', None)
        cls_name = {'volume': 'VolumeNotFound', 'snapshot': 'SnapshotNotFound',
                    'volume_type': 'VolumeTypeNotFound', 'qos_specs': 'QoSSpecsNotFound'}[kind]
        if exceptions is not None:
            return getattr(exceptions, cls_name)(**ids)
        return LookupError('%s not found: %s' % (kind, ids))

    def _one(self, kind: str, record_id: str) -> dict:
        found = self.store.get(kind, id=record_id)
        if not found:
            key = {'volume': 'volume_id', 'snapshot': 'snapshot_id'}[kind]
            raise self._not_found(kind, **{key: record_id})
        return found[0]

    # -- volumes ----------------------------------------------------------------------
    def volume_get(self, context, volume_id: str, *args, **kwargs) -> Record:
        return Record(self._one('volume', volume_id))

    def volume_update(self, context, volume_id: str, values: dict) -> Record:
        record = self._one('volume', volume_id)
        record.update({k: v for k, v in values.items() if k != 'id'})
        return Record(self.store.put('volume', record))

    def volume_get_all_by_host(self, context, host: str, filters: dict | None = None) -> list:
        volumes = self.store.get('volume', backend=backend_of_host(host))
        wanted = filters or {}
        return [Record(v) for v in volumes if all(v.get(k) == val for k, val in wanted.items())]

    def volume_get_all(self, context, *args, **kwargs) -> list:
        return [Record(v) for v in self.store.get('volume')]

    def _metadata(self, field: str, volume_id: str) -> dict:
        return dict(self._one('volume', volume_id).get(field) or {})

    def _update_metadata(self, field: str, volume_id: str, metadata: dict, delete: bool) -> dict:
        record = self._one('volume', volume_id)
        current = {} if delete else dict(record.get(field) or {})
        current.update(metadata)
        record[field] = current
        self.store.put('volume', record)
        return dict(current)

    def _delete_metadata_key(self, field: str, volume_id: str, key: str) -> None:
        record = self._one('volume', volume_id)
        (record.get(field) or {}).pop(key, None)
        self.store.put('volume', record)

    def volume_metadata_get(self, context, volume_id: str) -> dict:
        return self._metadata('metadata', volume_id)

    def volume_metadata_update(self, context, volume_id: str, metadata: dict, delete: bool,
                               *args, **kwargs) -> dict:
        return self._update_metadata('metadata', volume_id, metadata, delete)

    def volume_metadata_delete(self, context, volume_id: str, key: str, *args, **kwargs) -> None:
        self._delete_metadata_key('metadata', volume_id, key)

    def volume_admin_metadata_get(self, context, volume_id: str) -> dict:
        return self._metadata('admin_metadata', volume_id)

    def volume_admin_metadata_update(self, context, volume_id: str, metadata: dict, delete: bool,
                                     add: bool = True, update: bool = True) -> dict:
        return self._update_metadata('admin_metadata', volume_id, metadata, delete)

    def volume_admin_metadata_delete(self, context, volume_id: str, key: str) -> None:
        self._delete_metadata_key('admin_metadata', volume_id, key)

    # -- snapshots --------------------------------------------------------------------
    def snapshot_get(self, context, snapshot_id: str) -> Record:
        return Record(self._one('snapshot', snapshot_id))

    def snapshot_update(self, context, snapshot_id: str, values: dict) -> Record:
        record = self._one('snapshot', snapshot_id)
        record.update({k: v for k, v in values.items() if k != 'id'})
        return Record(self.store.put('snapshot', record))

    def snapshot_get_all_for_volume(self, context, volume_id: str) -> list:
        return [Record(s) for s in self.store.get('snapshot', volume_id=volume_id)]

    # -- volume types: each volume carries its own (see objects.Volume) -----------------
    def _volume_type(self, type_id: str) -> dict | None:
        for volume in self.store.get('volume'):
            vtype = volume.get('volume_type') or {}
            if vtype.get('id') == type_id:
                return vtype
        return None

    def volume_type_get(self, context, type_id: str, *args, **kwargs) -> Record:
        vtype = self._volume_type(type_id)
        if vtype is None:
            raise self._not_found('volume_type', volume_type_id=type_id)
        return Record(vtype)

    def volume_type_extra_specs_get(self, context, type_id: str) -> dict:
        return dict((self._volume_type(type_id) or {}).get('extra_specs') or {})

    def qos_specs_get(self, context, qos_specs_id: str, *args, **kwargs) -> Record:
        for volume in self.store.get('volume'):
            qos = (volume.get('volume_type') or {}).get('qos_specs')
            if qos and qos.get('id') == qos_specs_id:
                return Record(qos)
        raise self._not_found('qos_specs', specs_id=qos_specs_id)

    # -- image cache ------------------------------------------------------------------
    def image_volume_cache_get_by_volume_id(self, context, volume_id: str) -> None:
        """No volume is a Glance image cache entry: there is no Glance here."""
        return None

    def resource_exists(self, context, model, resource_id: str) -> bool:
        """Whether the store has a record of that id (``objects.Volume.exists``:
        drivers ask it before adopting an object named like a volume)."""
        kind = {'Volume': 'volume', 'Snapshot': 'snapshot'}.get(getattr(model, '__name__', ''))
        return bool(kind and self.store.get(kind, id=resource_id))

    # -- attachments --------------------------------------------------------------------
    def volume_attachment_get_all_by_volume_id(self, context, volume_id: str) -> list:
        return [Record(c) for c in self.store.get('connection', volume_id=volume_id)]

    def __getattr__(self, name: str):
        if name.startswith('_'):
            raise AttributeError(name)

        def unsupported(*args: Any, **kwargs: Any):
            raise NotImplementedError(
                'The driver called the Cinder DB API function %r, which the cinderlib.storage state '
                'store does not provide; please report it with the driver name.' % name)
        return unsupported
