# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""The state store against the backend: what interrupted runs and changes made
outside the collection left, reported and, on request, settled.

- Transitional records: volumes ``creating``/``deleting``/``extending`` and
  snapshots ``creating``/``deleting``. Every operation holds its volume's
  lock (``locks.py``) from that record to the final one, so a transitional
  record whose lock is free was left by a run that died; one whose lock is
  held belongs to a run in progress and is left alone.
- Drift: volumes (and snapshots) the backend has but the store does not know
  (``unknown_on_backend``), and records whose volume the backend no longer has
  (``missing_on_backend``). Drift is only reported, never deleted or recorded:
  a volume made by hand may hold someone's data.

- Connections left ``connecting``/``disconnecting`` by a run that died, or
  ``error_connecting``/``error_disconnecting`` by a driver call that failed:
  resolving finishes their disconnect path (``connections.end_leftover``
  says why that is the safe resolution), so that no ghost connection keeps
  its volume ``in-use`` or blocks its delete.

Only drivers that can list their volumes can tell what the backend has:
LVM-based drivers (a ``vg`` with ``get_volumes``/``get_volume``). For the
others drift is ``unsupported`` and transitional records can only be marked
as errors.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import connections, context, listing, locks
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import CinderlibError
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.objects import Snapshot, Volume
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.operations import TRANSITIONAL, driver_call

MODES = ('none', 'report', 'resolve')

# (kind, status) -> what resolve does when the backend has the resource / lacks
# it / can't tell: ('adopt', status) keeps it with that status, ('remove',) forgets
# the record, ('error', status) marks it.
_RESOLUTION = {
    ('volume', 'creating'): (('adopt', 'available'), ('remove',), ('error', 'error')),
    ('volume', 'extending'): (('adopt', 'available'), ('error', 'error'), ('error', 'error_extending')),
    ('volume', 'deleting'): (('adopt', 'available'), ('remove',), ('error', 'error_deleting')),
    ('snapshot', 'creating'): (('adopt', 'available'), ('remove',), ('error', 'error')),
    ('snapshot', 'deleting'): (('adopt', 'available'), ('remove',), ('error', 'error_deleting')),
    # An adopt (Backend.manage_volume...) that died: under its new name the
    # object is the record's; under its old one it was never adopted.
    ('volume', 'managing'): (('adopt', 'available'), ('remove',), ('error', 'error_managing')),
    ('snapshot', 'managing'): (('adopt', 'available'), ('remove',), ('error', 'error_managing')),
}
_ACTION_NAMES = {'adopt': 'adopted', 'remove': 'removed', 'error': 'marked_error'}
_WHY = {True: 'the backend has it', False: 'the backend does not have it',
        None: "the driver can't tell whether the backend has it"}


def _on_backend(backend, kind: str, resource) -> tuple[bool | None, int | None]:
    """Whether the backend has the resource, and its size in GiB when known."""
    found = listing.for_backend(backend)
    if found is None:
        return None, None
    return driver_call(resource, 'look up', found.find, listing.object_name(found, resource))


def _describe(kind: str, record: dict) -> dict:
    entry = {'kind': kind, 'id': record['id'], 'name': record.get('display_name') or '', 'status': record.get('status'),
             'size': record.get('size') if kind == 'volume' else record.get('volume_size')}
    if kind == 'snapshot':
        entry['volume_id'] = record.get('volume_id')
    return entry


def _resources(backend) -> list[tuple[str, Any]]:
    """Every volume of the backend and every snapshot of those, as objects."""
    found = []
    for record in context.store().volume_records(backend=backend.id):
        volume = Volume.from_record(backend, record)
        found.append(('volume', volume))
        found.extend(('snapshot', Snapshot.from_record(volume, s))
                     for s in context.store().snapshot_records(volume_id=volume.id))
    return found


def _drift(backend, resources: list) -> dict:
    found = listing.for_backend(backend)
    if found is None or not found.can_list:
        return {'status': 'unsupported', 'unknown_on_backend': None, 'missing_on_backend': None,
                'reason': "The driver %s can't list the volumes it has (only LVM-based drivers and RBD can); "
                          'drift is not checked.' % type(backend.driver).__name__}
    patterns = found.patterns(context.cinder_runtime().cfg.CONF)
    everything = found.everything()
    known = {(kind, resource.id) for kind, resource in resources}
    unknown = []
    for name, size in sorted(everything.items()):
        for kind, pattern in patterns.items():
            match = pattern.match(name)
            if match and (kind, match.group('id')) not in known:
                unknown.append({'kind': kind, 'id': match.group('id'), 'backend_name': name, 'size': size})
                break
    missing = []
    for kind, resource in resources:
        if resource.status in TRANSITIONAL[kind]:
            continue  # reported (and resolved) as transitional
        name = listing.object_name(found, resource)
        if name not in everything:
            missing.append(dict(_describe(kind, resource.record), backend_name=name))
    return {'status': 'checked', 'unknown_on_backend': unknown, 'missing_on_backend': missing, 'reason': ''}


def _settle(kind: str, resource, on_backend: bool | None, size: int | None, dry_run: bool) -> dict:
    """Resolve one transitional record (its volume's lock is held)."""
    before = resource.status
    outcome = _RESOLUTION[(kind, before)][{True: 0, False: 1, None: 2}[on_backend]]
    action = dict(_describe(kind, resource.record), action=_ACTION_NAMES[outcome[0]],
                  new_status=outcome[1] if len(outcome) > 1 else None, reason=_WHY[on_backend])
    if outcome[0] == 'adopt' and kind == 'volume' and size:
        action['size'] = size
    if dry_run:
        return action
    if outcome[0] == 'remove':
        context.store().remove(kind, resource.id)
    else:
        changes = {'status': outcome[1]}
        if outcome[0] == 'adopt' and before == 'managing':
            changes['owned'] = True  # the driver made it this resource
        if outcome[0] == 'adopt' and kind == 'volume' and size:
            changes['size'] = size
        if outcome[0] == 'adopt' and kind == 'snapshot':
            changes['progress'] = '100%'
        resource._save(**changes)
    return action


_CONNECTION_STATUSES = connections.LEFTOVER_STATUSES + connections.FAILED_STATUSES


def _connections(backend) -> list:
    """The backend's connections that resolving settles (also those of a
    volume whose record is gone: resolving removes them)."""
    found = []
    for record in context.store().get('connection', backend=backend.id):
        if record.get('status') not in _CONNECTION_STATUSES:
            continue
        volumes = context.store().volume_records(volume_id=record['volume_id'])
        volume = Volume.from_record(backend, volumes[0] if volumes else {'id': record['volume_id'], 'display_name': ''})
        found.append(connections.Connection.from_record(volume, record))
    return found


def _settle_connections(backend, mode: str, dry_run: bool) -> tuple[list, list]:
    """(connections found, actions): each settled under its volume's lock, or
    skipped when a run holds it."""
    found, actions = [], []
    for connection in _connections(backend):
        with locks.resource_locked(connection, wait=False) as free:
            entry = dict(connections.describe_record(connection.record), on_backend=None, in_progress=not free)
            if not free:
                found.append(entry)
                if mode == 'resolve':
                    actions.append(dict(entry, action='skipped', new_status=None,
                                        reason="another run holds its volume's lock: it is still in progress"))
                continue
            # The run may have finished since it was read.
            current = context.store().connection_records(connection_id=connection.id)
            if not current or current[0].get('status') not in _CONNECTION_STATUSES:
                continue
            connection._record = current[0]
            entry['status'] = connection.status
            found.append(entry)
            if mode == 'resolve':
                actions.append(dict(connections.end_leftover(connection, dry_run), on_backend=None,
                                    in_progress=False))
    return found, actions


def reconcile(backend, mode: str, dry_run: bool = False) -> dict | None:
    """Compare the store with the backend; with ``mode='resolve'`` settle the
    transitional records left by runs that died (not in a dry run).

    Returns None for ``mode='none'``, else ``{mode, transitional, actions,
    drift}`` (the ``reconcile`` result of the facts module).
    """
    if mode not in MODES:
        raise ValueError('reconcile mode must be one of %s, not %r' % (', '.join(MODES), mode))
    if mode == 'none':
        return None
    resources = _resources(backend)
    transitional, actions = [], []
    for kind, resource in resources:
        if resource.status not in TRANSITIONAL[kind]:
            continue
        with locks.resource_locked(resource, wait=False) as free:
            entry = _describe(kind, resource.record)
            entry['in_progress'] = not free
            if not free:
                entry['on_backend'] = None
                transitional.append(entry)
                if mode == 'resolve':
                    actions.append(dict(entry, action='skipped', new_status=None,
                                        reason='another run holds its lock: it is still in progress'))
                continue
            try:
                resource.refresh()  # the run may have finished since it was read
            except CinderlibError:
                continue
            if resource.status not in TRANSITIONAL[kind]:
                continue
            on_backend, size = _on_backend(backend, kind, resource)
            entry.update(status=resource.status, on_backend=on_backend)
            transitional.append(entry)
            if mode == 'resolve':
                actions.append(_settle(kind, resource, on_backend, size, dry_run))
    found, settled = _settle_connections(backend, mode, dry_run)
    transitional.extend(found)
    actions.extend(settled)
    # Drift after resolving, so that it describes what is left.
    remaining = _resources(backend) if actions and not dry_run else resources
    return {'mode': mode, 'transitional': transitional, 'actions': actions, 'drift': _drift(backend, remaining)}


def actions_diff(actions: list[dict]) -> dict:
    """Ansible's diff of what resolving did: each record's status before and
    after, keyed by kind, name (a connection's host) and id; a removed record
    has no after."""
    def label(action: dict) -> str:
        return '%s %s (%s)' % (action['kind'], action.get('name') or action.get('host') or '', action['id'])
    return {'before': {label(a): a['status'] for a in actions},
            'after': {label(a): a['new_status'] for a in actions if a['new_status']}}
