# Serialization in this collection's format: json/jsons/dump/dumps and load,
# over a fake driver and both in-memory stores (fake_backend, tests/unit/conftest.py).
from __future__ import annotations

import json

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import serialization, views
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import Backend
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    InvalidRequest,
    NotFound,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import open_store

FORMAT = 'cinderlib.storage/2'


@pytest.fixture
def populated(fake_backend):
    """Backend 'fake' with 'data' (2 snapshots, typed) and 'plain'."""
    data = fake_backend.create_volume(1, name='data', metadata={'k': 'v'}, extra_specs={'thin': 'True'},
                                      qos_specs={'maxIOPS': '100'})
    data.create_snapshot(name='s1')
    data.create_snapshot(name='s2')
    fake_backend.create_volume(2, name='plain')
    return fake_backend


def new_empty_store(kind='memory_db'):
    Backend.persistence = open_store({'storage': kind})
    return Backend.persistence


def without_updated_at(value):
    """Views and to_dict of the same volumes in two stores: only updated_at
    (the time of the store's last write) differs."""
    if isinstance(value, dict):
        return {k: without_updated_at(v) for k, v in value.items() if k != 'updated_at'}
    if isinstance(value, list):
        return [without_updated_at(v) for v in value]
    return value


def test_volume_json_and_dump(populated):
    [volume] = populated.volumes_filtered(volume_name='data')
    data = volume.json
    assert data['format'] == FORMAT and data['class'] == 'Volume'
    assert data['backend'] == {'volume_backend_name': 'fake'}
    assert data['record']['id'] == volume.id and data['record']['size'] == 1
    assert 'snapshots' not in data
    dumped = volume.dump
    assert sorted(s['display_name'] for s in dumped['snapshots']) == ['s1', 's2']
    assert dumped['connections'] == []
    assert json.loads(volume.dumps) == dumped and json.loads(volume.jsons) == data


def test_snapshot_json_carries_its_volume(populated):
    [volume] = populated.volumes_filtered(volume_name='data')
    snapshot = volume.snapshots[0]
    data = snapshot.json
    assert data['class'] == 'Snapshot' and data['record']['id'] == snapshot.id
    assert data['volume']['id'] == volume.id and snapshot.dump == data


def test_backend_json_dump_and_module_level(populated, other_backend):
    other_backend.create_volume(1, name='elsewhere')
    data = populated.json
    assert data['format'] == FORMAT and data['class'] == 'Backend'
    assert data['backend'] == {'volume_backend_name': 'fake'}
    assert sorted(v['record']['display_name'] for v in data['volumes']) == ['data', 'plain']
    assert all('snapshots' not in v for v in data['volumes'])
    assert all('snapshots' in v for v in populated.dump['volumes'])
    everything = json.loads(cinderlib.dumps())
    assert [b['backend']['volume_backend_name'] for b in everything] == ['fake', 'other']
    assert everything == cinderlib.dump() and json.loads(cinderlib.jsons()) == cinderlib.json()


def test_credentials_only_with_output_all_backend_info(populated):
    [volume] = populated.volumes_filtered(volume_name='plain')
    volume._save(provider_auth='CHAP user s3cr3t')
    populated._driver_cfg['san_password'] = 'b4ck3nd'
    assert 's3cr3t' not in populated.dumps and 'b4ck3nd' not in populated.dumps
    Backend.settings.output_all_backend_info = True
    data = populated.dump
    assert data['backend']['san_password'] == 'b4ck3nd'
    # The whole configuration once: its volumes name the backend only.
    assert {json.dumps(v['backend']) for v in data['volumes']} == {'{"volume_backend_name": "fake"}'}
    assert 's3cr3t' in json.dumps(data)
    assert volume.json['backend']['san_password'] == 'b4ck3nd'


def test_round_trip_into_an_empty_store(populated):
    serialized = populated.dumps
    views_before = views.backend_volume_views(Backend.persistence, 'fake')
    dicts_before = sorted((v.to_dict() for v in populated.volumes), key=lambda v: v['name'])
    store = new_empty_store()
    loaded = cinderlib.load(serialized, save=True)
    assert loaded is populated
    assert without_updated_at(views.backend_volume_views(store, 'fake')) == without_updated_at(views_before)
    populated.refresh()
    dicts_after = sorted((v.to_dict() for v in populated.volumes), key=lambda v: v['name'])
    assert without_updated_at(dicts_after) == without_updated_at(dicts_before)


def test_load_without_save_writes_nothing_and_keeps_the_snapshots(populated):
    serialized = populated.dumps
    store = new_empty_store('memory')
    backend = cinderlib.load(serialized)
    assert store.volume_records() == [] and store.snapshot_records() == []
    [data] = [v for v in backend.volumes if v.display_name == 'data']
    assert sorted(s.display_name for s in data.snapshots) == ['s1', 's2']
    assert data.to_dict()['qos_specs'] == {'maxIOPS': '100'}
    with pytest.raises(InvalidRequest, match='it has snapshots'):
        data.delete()


def test_load_each_form(populated):
    [volume] = populated.volumes_filtered(volume_name='data')
    snapshot = volume.snapshots[0]
    assert cinderlib.load(volume.jsons).id == volume.id
    assert cinderlib.Volume.load(volume.dump).display_name == 'data'
    loaded = cinderlib.load(snapshot.json)
    assert isinstance(loaded, cinderlib.Snapshot) and loaded.volume.id == volume.id
    both = cinderlib.load([volume.json, snapshot.json])
    assert [type(o).__name__ for o in both] == ['Volume', 'Snapshot']
    assert [type(b).__name__ for b in cinderlib.load(cinderlib.dump())] == ['Backend']


def test_load_snapshot_alone_into_an_empty_store_brings_its_volume(populated):
    [volume] = populated.volumes_filtered(volume_name='data')
    serialized = volume.snapshots[0].jsons
    store = new_empty_store()
    snapshot = cinderlib.load(serialized, save=True)
    assert [v['id'] for v in store.volume_records()] == [volume.id]
    assert [s['id'] for s in store.snapshot_records()] == [snapshot.id]


def test_missing_backend_fails_clearly_and_saves_nothing(populated):
    data = json.loads(populated.jsons.replace('"fake"', '"gone"'))
    store = new_empty_store()
    with pytest.raises(NotFound, match=r"backend 'gone', which is not initialised in this process.*"
                                       r"fail_on_missing_backend=False"):
        cinderlib.load(data, save=True)
    assert store.volume_records() == []


def test_missing_backend_binds_to_the_name(populated):
    serialized = populated.dumps.replace('"fake"', '"gone"')
    Backend.settings.fail_on_missing_backend = False
    store = new_empty_store()
    backend = cinderlib.load(serialized, save=True)
    assert isinstance(backend, serialization.DetachedBackend) and backend.id == 'gone'
    assert sorted(v.display_name for v in backend.volumes) == ['data', 'plain']
    assert {v.backend_name for v in backend.volumes} == {'gone'}
    assert sorted(v['name'] for v in views.backend_volume_views(store, 'gone')) == ['data', 'plain']
    assert json.loads(backend.dumps)['backend'] == {'volume_backend_name': 'gone'}


def test_full_backend_config_initialises_the_backend(populated, monkeypatch):
    made = {}

    def fake_init(self, volume_backend_name, **cfg):
        made[volume_backend_name] = cfg
        self._driver_cfg = dict(cfg, volume_backend_name=volume_backend_name)
        self._volumes = None
        Backend.backends[volume_backend_name] = self

    monkeypatch.setattr(Backend, '__init__', fake_init)
    data = populated.json
    data['backend'] = {'volume_backend_name': 'new', 'volume_driver': 'x.Driver', 'san_password': 'pw'}
    for volume in data['volumes']:
        volume['backend'] = {'volume_backend_name': 'new'}
    store = new_empty_store()
    backend = cinderlib.load(data, save=True)
    assert made == {'new': {'volume_driver': 'x.Driver', 'san_password': 'pw'}}
    assert backend is Backend.backends['new'] and len(backend.volumes) == 2
    stored = json.dumps(store.volume_records() + store.snapshot_records())
    assert 'pw' not in stored and 'x.Driver' not in stored
    assert {v['backend'] for v in store.volume_records()} == {'new'}


def test_records_never_keep_a_backend_config(populated):
    data = populated.dump
    for volume in data['volumes']:
        volume['record']['backend'] = {'volume_backend_name': 'fake', 'san_password': 'pw'}
        for snap in volume['snapshots']:
            snap['backend'] = {'san_password': 'pw'}
    store = new_empty_store()
    cinderlib.load(data, save=True)
    assert 'pw' not in json.dumps(store.volume_records() + store.snapshot_records())


def test_stored_credentials_survive_loading_output_without_them(populated):
    [volume] = populated.volumes_filtered(volume_name='plain')
    volume._save(provider_auth='CHAP user s3cr3t')
    cinderlib.load(populated.dumps, save=True)
    assert Backend.persistence.volume_records(volume_id=volume.id)[0]['provider_auth'] == 'CHAP user s3cr3t'


def test_volumes_with_the_same_display_name_load_side_by_side(populated):
    # Display names are labels (as in cinderlib): other volumes named alike load beside them.
    data = populated.dump
    for volume in data['volumes']:
        volume['record']['id'] = volume['record']['id'][:-4] + 'beef'
        for snap in volume['snapshots']:
            snap['volume_id'] = volume['record']['id']
    before = Backend.persistence.volume_records()
    cinderlib.load(data, save=True)
    after = Backend.persistence.volume_records()
    assert len(after) == 2 * len(before)
    assert sorted(v['display_name'] for v in after) == sorted(2 * [v['display_name'] for v in before])


def test_format_1_records_load_with_cinders_field_names(populated):
    # What this collection wrote before format 2: records with name/description.
    data = populated.json
    for volume in data['volumes']:
        record = volume['record']
        record['name'], record['description'] = record.pop('display_name'), record.pop('display_description')
    data['format'] = 'cinderlib.storage/1'
    for volume in data['volumes']:
        volume['format'] = data['format']
    backend = cinderlib.load(data)
    assert sorted(v.display_name for v in backend.volumes) == ['data', 'plain']
    assert all('name' not in v.record and 'description' not in v.record for v in backend.volumes)


@pytest.mark.parametrize('data, message', [
    ('{not json', 'not valid JSON'),
    ({'volumes': []}, "needs a 'class'"),
    ({'class': 'Backend', 'format': 'cinderlib.storage/3', 'backend': {'volume_backend_name': 'x'}},
     r"format 'cinderlib.storage/3', from a newer cinderlib.storage.*upgrade"),
    ({'class': 'Backend', 'format': 'other/1', 'backend': {'volume_backend_name': 'x'}}, 'reads cinderlib.storage/2'),
    ({'class': 'Volume', 'record': {'id': 'v'}}, 'names no backend'),
    ({'class': 'Volume', 'backend': 'x', 'record': {'size': 1}}, r'\(at record\) is not a volume record'),
    ({'class': 'Volume', 'backend': 'x', 'record': {'id': 'v', 'size': 0}}, 'no valid size'),
    ({'class': 'Backend', 'backend': 'x', 'volumes': [{'class': 'Snapshot', 'backend': 'x'}]},
     r'\(at volumes\[0\]\) is a Snapshot where a Volume belongs'),
    ({'class': 'Volume', 'backend': 'x', 'record': {'id': 'v', 'size': 1},
      'snapshots': [{'id': 's', 'volume_id': 'w'}]},
     'listed under volume v but belongs to volume w'),
])
def test_bad_data_is_refused_with_where_and_why(fake_backend, data, message):
    with pytest.raises(InvalidRequest, match=message):
        cinderlib.load(data)
