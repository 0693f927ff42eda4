# load() of the JSON the real cinderlib 5.2.0 wrote (tests/fixtures/cinderlib5_*.json,
# made by tests/fixtures/make_cinderlib5_fixture.py).
from __future__ import annotations

import importlib.util
import json
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import serialization, views
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import Backend
from ansible_collections.cinderlib.storage.plugins.modules import cinderlib_backend_facts

FIXTURES = Path(__file__).resolve().parents[4] / 'fixtures'
PLAIN = '0b7c8a36-1b4e-4c54-9a57-0a3f1f1e0001'
TYPED = '0b7c8a36-1b4e-4c54-9a57-0a3f1f1e0002'
SNAP_A = '5a1d2c9e-7f7e-4c3b-8f0e-0a3f1f1e0101'
SNAP_B = '5a1d2c9e-7f7e-4c3b-8f0e-0a3f1f1e0102'
EXTRA_SPECS = {'volume_backend_name': 'lvm', 'thin': '<is> True'}
QOS_SPECS = {'maxIOPS': '1000', 'read_bytes_sec': '1048576'}


def fixture_text(name='cinderlib5_backend.json') -> str:
    return (FIXTURES / name).read_text(encoding='utf-8')


@pytest.fixture
def lvm(add_fake_backend):
    """Backend 'lvm' (the fixture's) over a fake driver."""
    return add_fake_backend('lvm', pools=('lvm',))


def check_volumes(volumes):
    by_id = {v.id: v for v in volumes}
    assert sorted(by_id) == [PLAIN, TYPED]
    plain, typed = by_id[PLAIN].to_dict(), by_id[TYPED].to_dict()
    assert (plain['name'], plain['size'], plain['status'], plain['description']) == ('plain', 1, 'available', 'no type')
    assert (typed['name'], typed['size'], typed['status'], typed['bootable']) == ('typed', 2, 'available', True)
    assert plain['pool_name'] == 'lvm' and plain['backend'] == 'lvm' and plain['created_at'].startswith('20')
    assert typed['extra_specs'] == EXTRA_SPECS and typed['qos_specs'] == QOS_SPECS
    assert plain['extra_specs'] == {} and plain['qos_specs'] == {} and typed['snapshots'] == []
    snaps = {s['id']: s for s in plain['snapshots']}
    assert sorted(snaps) == [SNAP_A, SNAP_B]
    assert (snaps[SNAP_A]['name'], snaps[SNAP_A]['description'], snaps[SNAP_A]['status']) == ('snap-a', 'first',
                                                                                              'available')
    assert snaps[SNAP_B]['name'] == 'snap-b' and snaps[SNAP_B]['volume_size'] == 1
    assert {s['volume_id'] for s in snaps.values()} == {PLAIN}


def test_records_from_cinderlib5_json_without_cinder():
    [item] = serialization.parse(fixture_text())
    assert item.cls == 'Backend' and item.backend == {'volume_backend_name': 'lvm'}
    typed = next(v for v in item.volumes if v.record['id'] == TYPED)
    vtype = typed.record['volume_type']
    assert vtype['extra_specs'] == EXTRA_SPECS and vtype['qos_specs']['specs'] == QOS_SPECS
    assert typed.record['volume_type_id'] == vtype['id'] and vtype['qos_specs_id'] == vtype['qos_specs']['id']
    assert typed.record['host'] == 'cl5host@lvm#lvm' and typed.snapshots == [] and typed.connections == []
    plain = next(v for v in item.volumes if v.record['id'] == PLAIN)
    # cinderlib kept the backend name in a snapshot's 'progress'.
    assert {s['progress'] for s in plain.snapshots} == {'100%'}
    # Cinder's field names, as cinderlib wrote them (display_name...); not its deletion marks.
    assert plain.record['display_name'] == 'plain' and not any(k.startswith('deleted') for k in plain.record)


def test_load_rebuilds_the_backend_volumes_and_snapshots(lvm):
    backend = cinderlib.load(fixture_text())
    assert backend is lvm
    check_volumes(backend.volumes)
    assert Backend.persistence.volume_records() == []


def test_load_and_save_shows_them_in_views_and_facts(lvm):
    backend = cinderlib.load(json.loads(fixture_text()), save=True)
    backend.refresh()
    check_volumes(backend.volumes)
    found = {v['id']: v for v in views.backend_volume_views(Backend.persistence, 'lvm')}
    assert found[TYPED]['qos_specs'] == QOS_SPECS and found[TYPED]['size'] == 2
    assert sorted(s['name'] for s in found[PLAIN]['snapshots']) == ['snap-a', 'snap-b']
    module = SimpleNamespace(backend=lvm, params=defaultdict(bool))
    facts = cinderlib_backend_facts.gather_facts(module)['ansible_facts']['cinderlib_backends']['lvm']
    assert sorted(v['name'] for v in facts['volumes']) == ['plain', 'typed']
    assert facts['serialized'] == lvm.dumps
    assert {v['record']['id'] for v in json.loads(facts['serialized'])['volumes']} == {PLAIN, TYPED}


def test_load_the_other_cinderlib5_forms(lvm):
    forms = json.loads(fixture_text('cinderlib5_objects.json'))
    volume = cinderlib.load(forms['volume'])
    assert volume.id == TYPED and volume.to_dict()['qos_specs'] == QOS_SPECS
    snapshot = cinderlib.load(json.dumps(forms['snapshot']), save=True)
    assert (snapshot.id, snapshot.display_name, snapshot.volume.id) == (SNAP_B, 'snap-b', PLAIN)
    # The volume a cinderlib snapshot carried lists only its other snapshots:
    # the store, not that list, says which the volume has.
    assert [s.id for s in snapshot.volume.snapshots] == [SNAP_B]
    [backend] = cinderlib.load(forms['all'])
    check_volumes(backend.volumes)


def test_missing_backend_is_bound_by_name(fake_backend):
    Backend.settings.fail_on_missing_backend = False
    backend = cinderlib.load(fixture_text(), save=True)
    assert isinstance(backend, serialization.DetachedBackend) and backend.id == 'lvm'
    check_volumes(backend.volumes)
    assert len(views.backend_volume_views(Backend.persistence, 'lvm')) == 2


@pytest.mark.skipif(importlib.util.find_spec('cinder') is None, reason='cinder is not installed for this interpreter')
def test_loaded_records_make_valid_cinder_objects(library):
    library.Backend.settings.fail_on_missing_backend = False
    backend = library.load(fixture_text(), save=True)
    by_id = {v.id: v for v in backend.volumes}
    typed = by_id[TYPED]._ovo
    assert (typed.display_name, typed.size, typed.host, typed.bootable) == ('typed', 2, 'cl5host@lvm#lvm', True)
    assert typed.volume_type.extra_specs == EXTRA_SPECS and typed.volume_type.qos_specs.specs == QOS_SPECS
    [snap_a] = [s for s in by_id[PLAIN].snapshots if s.id == SNAP_A]
    ovo = snap_a._ovo
    assert (ovo.display_name, ovo.volume_size, ovo.volume.id, ovo.status) == ('snap-a', 1, PLAIN, 'available')
