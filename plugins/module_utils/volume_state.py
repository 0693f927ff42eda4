# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""Desired state of volumes and snapshots, as pure functions over the library.

``ensure_*(backend, params, check_mode)`` return ``(changed, before, after,
messages)``: ``before``/``after`` are ``to_dict()`` results (``None`` when
the resource does not exist) and ``messages`` are warnings for the user. In
check mode nothing is written to the store or asked of the driver beyond
reads, and ``after`` is the predicted result. Errors are the library's
exceptions. No Ansible here, so that this is unit-testable.
"""

from __future__ import annotations

import copy
import decimal
import functools
import re
import uuid
from typing import TYPE_CHECKING, Any, NamedTuple

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import context, locks, views
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    BackendObjectExists,
    CinderlibError,
    InvalidRequest,
    NotFound,
    PersistenceError,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.operations import TRANSITIONAL

if TYPE_CHECKING:  # imported where used: the fast path (quick_volume_state) needs neither
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.objects import Snapshot, Volume

GIB = 1024 ** 3
_UNITS = {'': GIB, 'B': 1, 'K': 1024, 'M': 1024 ** 2, 'G': GIB, 'T': 1024 ** 4, 'P': 1024 ** 5}
# KB, MB, GB... (a unit letter and B, without i) are decimal, as in SI and in disk vendors' sizes.
_DECIMAL_UNITS = {'KB': 10 ** 3, 'MB': 10 ** 6, 'GB': 10 ** 9, 'TB': 10 ** 12, 'PB': 10 ** 15}
_SIZE_RE = re.compile(r'^\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMGTP]?)(I?B)?\s*$', re.IGNORECASE)
_USABLE = ('available', 'in-use')
_SIZE_HELP = ('use a whole number of GiB (10) or a number with a unit, such as 10G, 10GiB, 512M, 1.5T, '
              '1073741824B or the decimal 10GB')


class Outcome(NamedTuple):
    """What an ensure_* function did (in check mode: would do): whether it
    changes anything, the resource's view before and after (None where there
    is none), and messages for the user (the module warns with them)."""
    changed: bool
    before: dict | None
    after: dict | None
    messages: list[str]


def parse_size(value: Any) -> tuple[int, str | None]:
    """A size option as whole GiB, rounded up, and a note when it was rounded
    or given in a decimal unit.

    Integers are GiB; strings may carry a binary unit (K, M, G, T, P, alone
    or with iB: ``10G`` = ``10GiB``), a decimal unit (KB, MB, GB, TB, PB:
    ``10GB`` is 10 * 10^9 bytes, 10 GiB once rounded up) or be bytes (``B``).
    Units are case-insensitive.
    """
    if isinstance(value, bool) or value is None:
        raise InvalidRequest('Invalid size %r: %s.' % (value, _SIZE_HELP))
    if isinstance(value, int):
        number, unit = decimal.Decimal(value), ''
    elif isinstance(value, float):
        number, unit = decimal.Decimal(str(value)), ''
    elif isinstance(value, str):
        match = _SIZE_RE.match(value)
        if not match:
            raise InvalidRequest('Invalid size %r: %s.' % (value, _SIZE_HELP))
        number = decimal.Decimal(match.group(1))
        unit = match.group(2).upper()
        suffix = (match.group(3) or '').upper()
        if not unit and suffix:
            if suffix != 'B':
                raise InvalidRequest('Invalid size %r: %s.' % (value, _SIZE_HELP))
            unit = 'B'
        elif unit and suffix == 'B':
            return _decimal_size(value, number, unit + suffix)
    else:
        raise InvalidRequest('Invalid size %r: %s.' % (value, _SIZE_HELP))
    size_bytes = number * _UNITS[unit]
    if size_bytes <= 0:
        raise InvalidRequest('Invalid size %r: a volume needs at least 1 GiB.' % (value,))
    gib = int((size_bytes / GIB).to_integral_value(rounding=decimal.ROUND_CEILING))
    if gib * GIB != size_bytes:
        return gib, 'size %r rounded up to %d GiB: volumes are sized in whole GiB.' % (value, gib)
    return gib, None


def _decimal_size(value: str, number: decimal.Decimal, unit: str) -> tuple[int, str]:
    """A size in a decimal unit (``10GB``): whole GiB, rounded up, and a note
    saying which size the volume gets."""
    size_bytes = number * _DECIMAL_UNITS[unit]
    if size_bytes <= 0:
        raise InvalidRequest('Invalid size %r: a volume needs at least 1 GiB.' % (value,))
    gib = int((size_bytes / GIB).to_integral_value(rounding=decimal.ROUND_CEILING))
    exact = (size_bytes / GIB).quantize(decimal.Decimal('0.01'), rounding=decimal.ROUND_HALF_UP)
    binary = format(number.normalize(), 'f') + unit[0]
    return gib, ('size %r is in decimal units (%s = 10^%d bytes): %s bytes, %s GiB, so the volume gets %d GiB '
                 '(volumes are sized in whole GiB, rounded up). Write %s or %siB for binary units.'
                 % (value, unit, 3 * ('KMGTP'.index(unit[0]) + 1), format(size_bytes.normalize(), 'f'),
                    format(exact, 'f'), gib, binary, binary))


# -- the modules' own options ----------------------------------------------------------
MAX_NAME_LENGTH = 255
_CONTROL_RE = re.compile(r'[\x00-\x1f\x7f-\x9f]')


def check_name(value: Any, option: str) -> None:
    """A name (or a name-or-id reference): non-empty, at most 255
    characters, no control characters. None is an unset option."""
    if value is None:
        return
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest('%s is empty; give a name such as data01, or leave %s out.' % (option, option))
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidRequest('%s is %d characters long; use at most %d.' % (option, len(value), MAX_NAME_LENGTH))
    control = _CONTROL_RE.search(value)
    if control:
        raise InvalidRequest('%s %r contains the control character %r (a newline, tab...); remove it.'
                             % (option, value, control.group()))


def check_id(value: Any, option: str, non_uuid_ids: bool = False) -> None:
    """An id: a UUID, or with non_uuid_ids any valid name."""
    if value is None:
        return
    check_name(value, option)
    if non_uuid_ids:
        return
    try:
        uuid.UUID(value)
    except ValueError:
        raise InvalidRequest('%s %r is not a UUID (such as 0b5e8c7a-6e1e-4f7c-9d4e-4f3bd2a9b0c1); give a UUID, '
                             'or set non_uuid_ids=true to allow other ids.' % (option, value)) from None


def check_volume_params(params: dict) -> None:
    """cinderlib_volume's options, checked before anything is opened."""
    if params.get('volumes') is not None:
        volume_items(params)
        return
    check_name(params.get('name'), 'name')
    check_id(params.get('id'), 'id', bool(params.get('non_uuid_ids')))
    for option in ('source_volume', 'source_snapshot', 'pool_name'):
        check_name(params.get(option), option)
    if params.get('source_volume') is not None and params.get('source_snapshot') is not None:
        raise InvalidRequest('source_volume and source_snapshot are mutually exclusive; give only one.')
    check_existing(params)
    if params.get('size') is not None:
        parse_size(params['size'])


_NOT_WITH_EXISTING = ('size', 'source_volume', 'source_snapshot', 'extra_specs', 'qos_specs')


def check_existing(params: dict) -> None:
    """``existing`` (adopt a backend object) names one object, and takes its
    size and content from it: no size, no source, no specs."""
    if params.get('existing') is None:
        return
    check_name(params['existing'], 'existing')
    given = [option for option in _NOT_WITH_EXISTING if params.get(option) not in (None, '', {})]
    if given:
        raise InvalidRequest('existing adopts an object as it is on the backend (its size and data): %s cannot '
                             'go with it.' % ', '.join(given))


def _at_least(params: dict) -> bool:
    """Whether size is a minimum (size_policy=at_least): a volume as large or
    larger is left as it is, a smaller one is grown."""
    return params.get('size_policy') == 'at_least'


def _size_differs(size: int | None, current: Any, params: dict) -> bool:
    """Whether a volume of ``current`` GiB is not the size asked for."""
    if size is None:
        return False
    if _at_least(params):
        return not isinstance(current, int) or size > current
    return size != current


def _requested_size(params: dict) -> tuple[int | None, list[str]]:
    """The size asked for in whole GiB (None when not given), and the note
    saying it was rounded up, if it was."""
    if params.get('size') is None:
        return None, []
    size, note = parse_size(params['size'])
    return size, [note] if note else []


def volume_items(params: dict) -> list[dict]:
    """cinderlib_volume's ``volumes`` list as one set of options per volume:
    the item's options over the task's, which are defaults for every item.
    Every item is checked first, so a bad one fails the task before any
    volume is touched; messages name the item (``volumes[2] 'data03'``)."""
    items: list[dict] = []
    seen: dict[str, int] = {}
    task = {k: v for k, v in params.items() if k != 'volumes'}
    for index, item in enumerate(params['volumes']):
        if not isinstance(item, dict):
            raise InvalidRequest('volumes[%d] is %r, not a dict of volume options (name, size, state...).'
                                 % (index, item))
        merged = dict(task, **{k: v for k, v in item.items() if v is not None})
        label = item_label(index, merged)
        if not merged.get('name') and not merged.get('id'):
            raise InvalidRequest('%s: give the name or the id of the volume.' % label)
        try:
            check_volume_params(merged)
        except InvalidRequest as exc:
            raise InvalidRequest('%s: %s' % (label, exc.message)) from None
        for key in (merged.get('name'), merged.get('id')):
            if key and key in seen:
                raise InvalidRequest("%s: volume '%s' is already volumes[%d]; list each volume once."
                                     % (label, key, seen[key]))
        seen.update({key: index for key in (merged.get('name'), merged.get('id')) if key})
        items.append(merged)
    return items


def item_label(index: int, item: dict) -> str:
    key = item.get('name') or item.get('id')
    return 'volumes[%d]' % index + (" '%s'" % key if key else '')


def check_snapshot_params(params: dict) -> None:
    """cinderlib_snapshot's options, checked before anything is opened."""
    check_name(params.get('volume'), 'volume')
    check_name(params.get('name'), 'name')
    check_id(params.get('id'), 'id', bool(params.get('non_uuid_ids')))


# -- look-ups ---------------------------------------------------------------------------
def _ids(resources: list) -> str:
    return ', '.join(sorted(r.id for r in resources))


def _find_volume(backend, name: str | None, volume_id: str | None) -> Volume | None:
    """The volume keyed by name (its display name) and/or id, or None.

    Display names are labels in the library (several volumes may share one);
    the modules key volumes by them, so a name that several volumes carry is
    refused unless the id says which.
    """
    if name:
        found = backend.volumes_filtered(volume_name=name)
        if len(found) > 1:
            chosen = [v for v in found if v.id == volume_id]
            if not chosen:
                raise InvalidRequest("Several volumes are named '%s' on backend '%s' (ids %s); give id to choose "
                                     "one." % (name, backend.id, _ids(found)))
            found = chosen
        if found and volume_id and found[0].id != volume_id:
            raise InvalidRequest("Volume '%s' on backend '%s' has id %s, not %s; remove id or fix it."
                                 % (name, backend.id, found[0].id, volume_id))
        if found or not volume_id:
            return found[0] if found else None
    records = context.store().volume_records(volume_id=volume_id)
    if not records:
        return None
    record = records[0]
    if record.get('backend') != backend.id:
        raise InvalidRequest("Volume id %s belongs to a volume on backend '%s', not '%s'; use another id."
                             % (volume_id, record.get('backend'), backend.id))
    if name and record.get('display_name') != name:
        raise InvalidRequest("Volume id %s already belongs to volume '%s' on backend '%s'; use another id "
                             "for '%s'." % (volume_id, record.get('display_name') or '', backend.id, name))
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.objects import Volume
    return Volume.from_record(backend, record)


def find_source_volume(backend, ref: str, option: str) -> Volume:
    found = backend.volumes_filtered(volume_id=ref) or backend.volumes_filtered(volume_name=ref)
    if not found:
        raise NotFound("%s: volume '%s' is not known on backend '%s'; give the name or id of an existing "
                       "volume." % (option, ref, backend.id))
    if len(found) > 1:
        raise InvalidRequest("%s: several volumes are named '%s' on backend '%s' (ids %s); give the id of one."
                             % (option, ref, backend.id, _ids(found)))
    return found[0]


def _find_source_snapshot(backend, ref: str) -> Snapshot:
    store = context.store()
    records = store.snapshot_records(snapshot_id=ref) or store.snapshot_records(display_name=ref)
    records = [r for r in records if r.get('backend') == backend.id]
    if not records:
        raise NotFound("source_snapshot: snapshot '%s' is not known on backend '%s'; give the name or id "
                       "of an existing snapshot." % (ref, backend.id))
    if len(records) > 1:
        raise InvalidRequest("source_snapshot: several snapshots are named '%s' on backend '%s' (ids %s); give "
                             "the id of one." % (ref, backend.id, ', '.join(sorted(r['id'] for r in records))))
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.objects import Snapshot
    return Snapshot.known_on(backend, records[0]['id'])


def check_usable(resource, what: str = '') -> None:
    """Refuse a record that a failed or interrupted operation left behind."""
    usable = _USABLE if resource.kind == 'volume' else ('available',)
    if resource.status in usable:
        return
    described = what + resource.describe() if what else resource.describe().capitalize()
    if resource.status in TRANSITIONAL[resource.kind]:
        with locks.resource_locked(resource, wait=False) as free:
            if not free:
                raise InvalidRequest(
                    "%s on backend '%s' is being %s by another run right now (status '%s'); nothing was "
                    "changed. Run again when that run is over." % (
                        described, resource.backend_name, resource.status[:-3] + 'ed', resource.status))
        raise InvalidRequest(
            "%s on backend '%s' has status '%s' in the state store: the run that was %s it ended before "
            "it finished (killed, or the host went down). Run cinderlib.storage.cinderlib_reconcile "
            "to settle it from what the backend has (in check mode it shows what it would do), then run again."
            % (described, resource.backend_name, resource.status, resource.status))
    raise InvalidRequest(
        "%s on backend '%s' has status '%s' in the state store (a failed or interrupted operation "
        "left it so), not %s. Remove it with state=absent%s, then run again."
        % (what + resource.describe() if what else resource.describe().capitalize(), resource.backend_name,
           resource.status, ' or '.join(repr(s) for s in usable),
           ' (and cascade=true if it has snapshots)' if resource.kind == 'volume' else ''))


def _check_on_backend(volume: Volume) -> None:
    if volume.exists_on_backend() is False:
        raise InvalidRequest(
            "%s (id %s) is in the state store but not on backend '%s': it was removed outside this "
            "collection. Nothing was recreated. Remove the record with state=absent (the driver is asked "
            "to delete a volume that is already gone), then create it again."
            % (volume.describe().capitalize(), volume.id, volume.backend_name))


def _add_hint(exc: CinderlibError, hint: str) -> None:
    """Say what a failure left behind, in the error's own message."""
    message = exc.message.rstrip()
    exc.message = '%s%s %s' % (message, '' if message.endswith(('.', '!', '?')) else '.', hint)
    exc.args = (exc.message,)


def _roll_back_create(resource) -> str:
    """Undo a create the driver failed (a volume or a snapshot); a sentence
    saying what was left.

    The driver's delete removes whatever the backend made of it (an answer
    lost on the way back leaves a whole volume), so running the task again
    creates it afresh. Only when the record is owned: else the backend may
    hold an object of that name that this create did not make, and only the
    record is there to remove.
    """
    store = context.store()
    recorded = (store.volume_records(volume_id=resource.id) if resource.kind == 'volume'
                else store.snapshot_records(snapshot_id=resource.id))
    if not recorded:
        return 'Nothing was created.'  # the store write itself failed: nothing reached the driver
    if not resource.owned:
        return ("%s is recorded with status '%s'; state=absent removes the record and leaves what the backend "
                "has under the name '%s' (this collection can't tell whether it made it)." % (
                    resource.describe().capitalize(), resource.status, resource.backend_object_name()))
    try:
        resource.delete()
    except CinderlibError as exc:
        return ("Cleaning up failed too (%s); %s is recorded with status '%s' and state=absent removes it."
                % (exc.message, resource.describe(), resource.status))
    return 'Nothing was left behind.'


# -- volumes ------------------------------------------------------------------------------
# Record fields of the modules' options whose names differ (Cinder's names).
_FIELD_OF = {'name': 'display_name', 'description': 'display_description'}


def _record_updates(current: dict, params: dict, keys: tuple) -> dict:
    """The options among ``keys`` whose value differs from the record's, by option name."""
    return {k: copy.deepcopy(params[k]) for k in keys
            if params.get(k) is not None and params[k] != current.get(_FIELD_OF.get(k, k))}


def _spec_messages(current: dict, described: str, params: dict) -> list[str]:
    """Warnings for creation-only options that differ on an existing volume
    (``current``: its view)."""
    messages = []
    for key in ('extra_specs', 'qos_specs', 'pool_name'):
        wanted = params.get(key)
        if wanted is not None and wanted != current[key] and (wanted or current[key]):
            messages.append("%s %s is %r, not the requested %r; it is kept: changing it needs a retype or "
                            "migration, which this module does not do." % (described.capitalize(), key,
                                                                           current[key], wanted))
    return messages


def _create_kwargs(params: dict) -> dict:
    kwargs = {}
    for key in ('name', 'id', 'description', 'bootable', 'metadata', 'extra_specs', 'qos_specs', 'pool_name'):
        if params.get(key) not in (None, ''):
            kwargs[key] = copy.deepcopy(params[key])
    return kwargs


# -- one run at a time per volume ----------------------------------------------------------
def _lock_key(backend, ref: str | None, volume_id: str | None = None) -> str:
    """What a run locks for a volume: its name, or its id when it has none.

    ``ref`` is a name (or, for snapshots, a name or an id); ``volume_id`` an id.
    """
    for candidate in (volume_id, ref):
        if candidate:
            records = [r for r in context.store().volume_records(volume_id=candidate) if r.get('backend') == backend.id]
            if records:
                display_name = records[0].get('display_name')
                return ref if ref and ref == display_name else (display_name or candidate)
    return ref or volume_id or ''


def _one_run_per_volume(key_of):
    """Run an ``ensure_*(backend, params, check_mode)`` holding the lock of the
    volume it is about (locks.py), from the first look-up to the last change,
    so that concurrent runs on one volume take turns and each sees what the
    other did. Check mode changes nothing and takes no lock."""
    def decorate(func):
        @functools.wraps(func)
        def wrapper(backend, params: dict, check_mode: bool):
            if check_mode:
                return func(backend, params, check_mode)
            key = key_of(backend, params)
            with locks.locked(locks.name_lock_name(backend.id, key), "Volume '%s' on backend '%s'" % (key, backend.id)):
                return func(backend, params, check_mode)
        return wrapper
    return decorate


def _volume_key(backend, params: dict) -> str:
    return _lock_key(backend, params.get('name'), params.get('id'))


def _snapshot_key(backend, params: dict) -> str:
    return _lock_key(backend, params.get('volume'))


@_one_run_per_volume(_volume_key)
def ensure_volume_present(backend, params: dict, check_mode: bool) -> Outcome:
    size, messages = _requested_size(params)
    volume = _find_volume(backend, params.get('name'), params.get('id'))
    if volume is not None:
        return _update_volume(volume, params, size, check_mode, messages)
    if params.get('existing'):
        return _adopt_volume(backend, params, check_mode, messages)
    return _create_volume(backend, params, size, check_mode, messages)


def _adopt_volume(backend, params: dict, check_mode: bool, messages: list[str]) -> Outcome:
    """Adopt the backend object ``existing`` names as the volume (the
    driver's manage_existing). The diff's ``backend_objects`` show the
    driver's rename: the reference before, the volume's name after."""
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.objects import Volume
    reference = params['existing']
    volume = Volume(backend, size=1, **_create_kwargs(params))  # its size is the object's
    before = {'backend_objects': [reference]}
    if check_mode:
        size = volume.adoptable_size(reference)
        after = dict(volume.to_dict(), size=size, status='available', snapshots=[])
    else:
        volume.manage(reference)
        after = volume.to_dict()
    after['backend_objects'] = [volume.backend_object_name()]
    if after['backend_objects'] != [reference]:
        messages.append("The driver %s '%s' to '%s' to adopt it as %s." % (
            'would rename' if check_mode else 'renamed', reference, after['backend_objects'][0],
            volume.describe()))
    return Outcome(True, before, after, messages)


def _update_volume(volume: Volume, params: dict, size: int | None, check_mode: bool, messages: list[str]):
    check_usable(volume)
    _check_on_backend(volume)
    before = volume.to_dict()
    if size is not None and size < volume.size:
        if _at_least(params):
            size = None  # as large as asked, or larger: left as it is
        else:
            raise InvalidRequest(
                "%s on backend '%s' is %d GiB; size=%s would shrink it, which Cinder drivers can't do. Set size "
                "to %d GiB or more, or size_policy=at_least to only grow volumes smaller than size; nothing was "
                "changed." % (volume.describe().capitalize(), volume.backend_name, volume.size, params['size'],
                              volume.size))
    messages.extend(_spec_messages(before, volume.describe(), params))
    updates = _record_updates(volume.record, params, ('description', 'bootable', 'metadata'))
    grow = size is not None and size > volume.size
    if not updates and not grow:
        return Outcome(False, before, before, messages)
    if check_mode:
        after = copy.deepcopy(before)
        after.update(copy.deepcopy(updates))
        if grow:
            after['size'] = size
        return Outcome(True, before, after, messages)
    if grow:
        volume.extend(size)
    if updates:
        volume.update(**updates)
    return Outcome(True, before, volume.to_dict(), messages)


def _create_volume(backend, params: dict, size: int | None, check_mode: bool, messages: list[str]):
    kwargs = _create_kwargs(params)
    source = snapshot = None
    if params.get('source_volume'):
        source = find_source_volume(backend, params['source_volume'], 'source_volume')
        check_usable(source, 'Source ')
        if size is not None and size < source.size and not _at_least(params):
            raise InvalidRequest("A clone of %s can't be smaller than its %d GiB; set size to %d or more, or "
                                 "size_policy=at_least." % (source.describe(), source.size, source.size))
        kwargs['size'] = max(size or 0, source.size)
    elif params.get('source_snapshot'):
        snapshot = _find_source_snapshot(backend, params['source_snapshot'])
        check_usable(snapshot, 'Source ')
        snap_size = snapshot.record.get('volume_size') or snapshot.volume.size
        if size is not None and size < snap_size and not _at_least(params):
            raise InvalidRequest("A volume from %s can't be smaller than its %d GiB; set size to %d or more, or "
                                 "size_policy=at_least." % (snapshot.describe(), snap_size, snap_size))
        kwargs['size'] = max(size or 0, snap_size)
    elif size is None:
        raise InvalidRequest("Volume '%s' does not exist on backend '%s': size is required to create it "
                             "(or source_volume / source_snapshot)."
                             % (params.get('name') or params.get('id'), backend.id))
    else:
        kwargs['size'] = size

    # Built first, created only for real: building validates id, size and pool.
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.objects import Volume
    if source is not None:
        volume = Volume(source, source_volid=source.id, **kwargs)
    elif snapshot is not None:
        volume = Volume(snapshot.volume, snapshot_id=snapshot.id, **kwargs)
    else:
        volume = Volume(backend, **kwargs)
    if check_mode:
        volume.check_name_free()  # fails here as the real run would
        after = volume.to_dict()
        after.update(status='available', snapshots=[])
        return Outcome(True, None, after, messages)
    try:
        volume.create()
    except (PersistenceError, BackendObjectExists):
        raise  # each says what was left; asking the store again would only fail again
    except CinderlibError as exc:
        _add_hint(exc, _roll_back_create(volume))
        raise
    return Outcome(True, None, volume.to_dict(), messages)


@_one_run_per_volume(_volume_key)
def ensure_volume_absent(backend, params: dict, check_mode: bool) -> Outcome:
    """state=absent, and state=unmanaged (``_release_volume``)."""
    volume = _find_volume(backend, params.get('name'), params.get('id'))
    if volume is None:
        return Outcome(False, None, None, [])
    if params.get('state') == 'unmanaged':
        return _release_volume(volume, check_mode)
    before = volume.to_dict()
    # Before cascade deletes any snapshot: Volume.delete refuses only after that.
    volume.refuse_delete_if_connected()
    snapshots = volume.snapshots
    if snapshots and not params.get('cascade'):
        raise InvalidRequest(
            "Can't delete %s on backend '%s': it has snapshots (%s). Delete them first or set cascade=true."
            % (volume.describe(), volume.backend_name, ', '.join(s.display_name or s.id for s in snapshots)))
    before, after, messages = _removal_diff(before, [*snapshots, volume])
    if not check_mode:
        for snapshot in snapshots:
            snapshot.delete()
        volume.delete()
    return Outcome(True, before, after, messages)


def _release_volume(volume, check_mode: bool) -> Outcome:
    """Forget the volume and leave its data on the backend (the driver's unmanage)."""
    check_usable(volume)
    volume.refuse_unmanage()
    name = volume.backend_object_name()
    before = dict(volume.to_dict(), backend_objects=[name])
    if not check_mode:
        volume.unmanage()
    message = ("%s on backend '%s' %s forgotten; its data stays on the backend as '%s'."
               % (volume.describe().capitalize(), volume.backend_name, 'would be' if check_mode else 'was', name))
    return Outcome(True, before, {'backend_objects': [name]}, [message])


def _removal_diff(before: dict, resources: list) -> tuple[dict, dict | None, list[str]]:
    """What deleting ``resources`` (a volume's snapshots, then the volume)
    does on the backend, for the diff and the user: ``before`` with
    ``backend_objects``, the names of their objects on the backend; ``after``
    with those that are left (those of records the collection does not own,
    ``Resource.owned``: only their records go), or None; a warning for each
    of those."""
    named = [(r, r.backend_object_name()) for r in resources]
    left = [(r, name) for r, name in named if not r.owned]
    messages = ["%s on backend '%s': only its record is removed; the backend's object named '%s', if there is "
                'one, is left as it is: this collection did not make it.'
                % (r.describe().capitalize(), r.backend_name, name) for r, name in left]
    before = dict(before, backend_objects=[name for _r, name in named])
    after = {'backend_objects': [name for _r, name in left]} if left else None
    return before, after, messages


# -- the fast path: nothing to change, decided without the driver ---------------------------
def quick_volume_state(store, backend_id: str, params: dict, on_backend) -> Outcome | None:
    """What ``ensure_volume_present``/``ensure_volume_absent`` would return
    when the state store and ``on_backend(record)`` (a cheap look at the
    backend, see quickcheck.backend_probe) show there is nothing to change;
    None when something is, or might be, to change or to report: then the
    full path decides. ``store`` needs only the store's read methods.

    Takes no lock and writes nothing: it only confirms what is. A run that
    is changing the volume meanwhile has written a transitional status first
    (objects.py), which sends this run to the full path and its locks.
    """
    if params.get('state', 'present') != 'present':  # absent, unmanaged: both unchanged when unknown
        return _quick_absent(store, backend_id, params)
    return _quick_present(store, backend_id, params, on_backend)


def _quick_present(store, backend_id: str, params: dict, on_backend) -> Outcome | None:
    size, messages = _requested_size(params)
    name, volume_id = params.get('name'), params.get('id')
    records = (store.volume_records(backend=backend_id, display_name=name) if name
               else store.volume_records(volume_id=volume_id))
    if len(records) != 1:
        return None
    record = records[0]
    if (record.get('backend') != backend_id or (volume_id and record['id'] != volume_id)
            or record.get('status') not in _USABLE or _size_differs(size, record.get('size'), params)
            or _record_updates(record, params, ('description', 'bootable', 'metadata'))):
        return None
    if not on_backend(record):
        # Gone from the backend (or smaller than recorded): the full path reports it.
        return None
    view = views.volume_view(record, store.snapshot_records(volume_id=record['id']),
                             store.connection_records(volume_id=record['id']))
    messages.extend(_spec_messages(view, "volume '%s'" % (record.get('display_name') or record['id']), params))
    return Outcome(False, view, view, messages)


def _quick_absent(store, backend_id: str, params: dict) -> Outcome | None:
    name, volume_id = params.get('name'), params.get('id')
    if name and store.volume_records(backend=backend_id, display_name=name):
        return None
    if volume_id and store.volume_records(volume_id=volume_id):
        return None
    return Outcome(False, None, None, [])


def quick_snapshot_state(store, backend_id: str, params: dict, on_backend) -> Outcome | None:
    """``quick_volume_state`` for ``ensure_snapshot_present``/``_absent``: a
    snapshot that is recorded as requested (its volume looked at on the
    backend, which also shows the backend answers), or a snapshot that is not
    there to delete; None for anything else."""
    ref = params['volume']
    volumes = [r for r in store.volume_records(volume_id=ref) if r.get('backend') == backend_id] or \
        store.volume_records(backend=backend_id, display_name=ref)
    if len(volumes) > 1:
        return None
    snapshots = [s for s in (store.snapshot_records(volume_id=volumes[0]['id']) if volumes else [])
                 if _is_snapshot(s, params)]
    if params.get('state', 'present') == 'absent':
        return (False, None, None, []) if not snapshots else None
    if (len(volumes) != 1 or len(snapshots) != 1 or snapshots[0].get('status') != 'available'
            or _record_updates(snapshots[0], params, ('description',)) or not on_backend(volumes[0])):
        return None
    view = views.snapshot_view(snapshots[0])
    return Outcome(False, view, view, [])


# -- snapshots -----------------------------------------------------------------------------
def _snapshot_volume(backend, params: dict, must_exist: bool) -> Volume | None:
    ref = params['volume']
    found = backend.volumes_filtered(volume_id=ref) or backend.volumes_filtered(volume_name=ref)
    if len(found) > 1:
        raise InvalidRequest("Several volumes are named '%s' on backend '%s' (ids %s); give the volume's id."
                             % (ref, backend.id, _ids(found)))
    if not found and must_exist:
        raise NotFound("Can't snapshot volume '%s': it is not known on backend '%s'; give the name or id of "
                       "an existing volume." % (ref, backend.id))
    return found[0] if found else None


def _is_snapshot(record: dict, params: dict) -> bool:
    """Whether a snapshot record is the one the options name (id, else name)."""
    if params.get('id'):
        return record['id'] == params['id']
    return (record.get('display_name') or '') == params['name']


def _find_snapshot(volume: Volume, params: dict) -> Snapshot | None:
    """The snapshot of ``volume`` the options name, or None; refuses a name
    several snapshots share (unless the id says which) and an id of another
    snapshot or volume."""
    name, snapshot_id = params.get('name'), params.get('id')
    found = [s for s in volume.snapshots if _is_snapshot(s.record, params)]
    if len(found) > 1:
        raise InvalidRequest("%s has several snapshots named '%s' (ids %s); give id to choose one."
                             % (volume.describe().capitalize(), name, _ids(found)))
    if found and name and snapshot_id and found[0].display_name != name:
        raise InvalidRequest("Snapshot id %s of %s is named '%s', not '%s'; fix name or id."
                             % (snapshot_id, volume.describe(), found[0].display_name, name))
    if not found and snapshot_id:
        other = context.store().snapshot_records(snapshot_id=snapshot_id)
        if other:
            raise InvalidRequest("Snapshot id %s belongs to a snapshot of volume %s, not of %s; use another id."
                                 % (snapshot_id, other[0].get('volume_id'), volume.describe()))
    return found[0] if found else None


@_one_run_per_volume(_snapshot_key)
def ensure_snapshot_present(backend, params: dict, check_mode: bool) -> Outcome:
    volume = _snapshot_volume(backend, params, must_exist=True)
    snapshot = _find_snapshot(volume, params)
    if snapshot is not None:
        check_usable(snapshot)
        before = snapshot.to_dict()
        updates = _record_updates(snapshot.record, params, ('description',))
        if not updates:
            return Outcome(False, before, before, [])
        if check_mode:
            after = copy.deepcopy(before)
            after.update(updates)
            return Outcome(True, before, after, [])
        snapshot.update(**updates)
        return Outcome(True, before, snapshot.to_dict(), [])

    check_usable(volume, "Can't snapshot: ")
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.objects import Snapshot
    snapshot = Snapshot(volume, name=params.get('name') or '', description=params.get('description') or '',
                        **({'id': params['id']} if params.get('id') else {}))
    if check_mode:
        snapshot.check_name_free()  # fails here as the real run would
        after = snapshot.to_dict()
        after['status'] = 'available'
        return Outcome(True, None, after, [])
    try:
        snapshot.create()
    except (PersistenceError, BackendObjectExists):
        # The store failed (the message says what it holds; reconcile settles
        # it), or the name was taken and nothing was recorded.
        raise
    except CinderlibError as exc:
        _add_hint(exc, _roll_back_create(snapshot))
        raise
    return Outcome(True, None, snapshot.to_dict(), [])


@_one_run_per_volume(_snapshot_key)
def ensure_snapshot_absent(backend, params: dict, check_mode: bool) -> Outcome:
    volume = _snapshot_volume(backend, params, must_exist=False)
    snapshot = _find_snapshot(volume, params) if volume is not None else None
    if snapshot is None:
        return Outcome(False, None, None, [])
    before, after, messages = _removal_diff(snapshot.to_dict(), [snapshot])
    if not check_mode:
        snapshot.delete()
    return Outcome(True, before, after, messages)
