# Databases that the real cinderlib 5.2.0 wrote with its db persistence on Cinder
# 2023.2 (tests/fixtures/make_cinderlib5_db.py made them: a SQLite file and a
# PostgreSQL dump), opened in place by the library on the CI host's LVM, on SQLite
# and on a real PostgreSQL server: what cinderlib kept (volumes with their type,
# specs and driver data, a snapshot, a CHAP connection, key/values) is usable by a
# cinderlib program and by the modules, and Cinder's tables are left as they were.
# The metadata-only LVM here has no snapshots: deleting the fixture's snapshot
# runs the driver (its LV was never made here), a new snapshot runs in the VM.
from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import textwrap
from pathlib import Path

import pytest
from functional_helpers import lvm_command, run_adhoc, run_python

FIXTURES = Path(__file__).resolve().parent.parent / 'fixtures'
BACKEND = 'cl5_lvm'
VOLUME_DATA = '7c1e0a52-3d5b-4c1a-9d3e-c15000000001'  # 1 GiB 'cl5-data', connected with CHAP
VOLUME_TYPED = '7c1e0a52-3d5b-4c1a-9d3e-c15000000002'  # 2 GiB 'cl5-typed', extra specs
SNAPSHOT_DATA = '9e4f7d21-6a0b-4e8c-8b2f-c15000000101'
CONNECTION_DATA = 'b3a9c6e4-1f2d-4a7b-9c5e-c15000000201'
CHAP_PASSWORD = 'cl5-chap-secret-NOT-REAL'
EXTRA_SPECS = {'volume_backend_name': BACKEND, 'thin_provisioning_support': '<is> True'}
NODE = {'host': 'node-a', 'initiator': 'iqn.1993-08.org.debian:01:node-a', 'ip': '192.0.2.10',
        'platform': 'x86_64', 'os_type': 'linux', 'multipath': False}


def cinder_rows(url: str) -> dict:
    """What Cinder's tables hold (the rows cinderlib wrote), to show they stay as they were."""
    import sqlalchemy as sa
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {table: sorted(map(str, conn.execute(sa.text('SELECT * FROM %s' % table)).all()))
                    for table in ('volumes', 'snapshots', 'volume_attachment', 'volume_types',
                                  'volume_type_extra_specs', 'cinderlib_persistence_key_value')}
    finally:
        engine.dispose()


@pytest.fixture(params=['sqlite', 'postgresql'])
def cinderlib5_url(request, tmp_path) -> str:
    if request.param == 'sqlite':
        path = tmp_path / 'cinderlib.sqlite'
        shutil.copyfile(FIXTURES / 'cinderlib5_db.sqlite', path)
        return 'sqlite:///%s' % path
    server = request.getfixturevalue('postgresql_server')
    name = server.new_database()
    url = server.url(name)
    psql = [str(server.bindir / 'psql'), url.replace('postgresql+psycopg2', 'postgresql'), '-q',
            '-v', 'ON_ERROR_STOP=1', '-f', str(FIXTURES / 'cinderlib5_db.postgresql.sql')]
    proc = subprocess.run(psql, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return url


@pytest.fixture
def cl5_backend(lvm_backend_env, run_env):
    """The fixture's backend on the test VG, with its volumes' LVs made as cinderlib's driver had them."""
    vg = lvm_backend_env['vg']
    made = []
    for volume_id, size in ((VOLUME_DATA, '1g'), (VOLUME_TYPED, '2g')):
        lvm_command('lvcreate', '--yes', '-an', '-Zn', '-n', 'volume-%s' % volume_id, '-L', size, vg, env=run_env)
        made.append('volume-%s' % volume_id)
    yield {'volume_backend_name': BACKEND, 'volume_driver': 'cinder.volume.drivers.lvm.LVMVolumeDriver',
           'volume_group': vg, 'target_helper': 'fake', 'target_ip_address': '127.0.0.1', 'lvm_type': 'default',
           'volume_clear': 'none'}
    left = lv_sizes(vg, run_env)
    for lv in made:
        if lv in left:  # a test that failed half-way
            lvm_command('lvremove', '-f', '%s/%s' % (vg, lv), env=run_env)


def program(url: str, backend: dict, body: str) -> str:
    """A cinderlib 5.x program: only its import line is the collection's."""
    return ('import json\n'
            'from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib\n'
            'cinderlib.setup(persistence_config={"storage": "db", "connection": %r})\n'
            'lvm = cinderlib.Backend(**%r)\n' % (url, backend) + textwrap.dedent(body))


def last_json(proc) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def lv_sizes(vg: str, env: dict) -> dict:
    proc = subprocess.run(['lvs', '--noheadings', '--units', 'g', '--nosuffix', '-o', 'lv_name,lv_size', vg],
                          capture_output=True, text=True, env=env, timeout=60, check=True)
    return {name: float(size) for name, size in (line.split() for line in proc.stdout.splitlines())}


def test_a_cinderlib5_database_opens_in_place_and_is_usable(cinderlib5_url, cl5_backend, run_env, lvm_backend_env,
                                                            tmp_path):
    before = cinder_rows(cinderlib5_url)
    # 1. What cinderlib kept, read by a cinderlib program.
    seen = last_json(run_python(program(cinderlib5_url, cl5_backend, '''
        vols = {v.id: v for v in lvm.volumes}
        data, typed = vols[%r], vols[%r]
        conn = cinderlib.Connection.get_by_id(%r)
        print(json.dumps({
            'volumes': sorted((v.display_name, v.size, v.status) for v in vols.values()),
            'typed': typed.volume_type.extra_specs if typed.volume_type else None,
            'provider_auth': data.provider_auth, 'provider_location': data.provider_location,
            'snapshots': [(s.id, s.display_name, s.volume_id) for s in data.snapshots],
            'conn': conn.conn_info, 'device': conn.connection_info['device'], 'connected': conn.connected,
            'connector_host': conn.connector['host'],
            'key_values': sorted((kv.key, kv.value) for kv in lvm.persistence.get_key_values()),
        }))
        ''' % (VOLUME_DATA, VOLUME_TYPED, CONNECTION_DATA)), run_env))
    assert seen['volumes'] == [['cl5-data', 1, 'in-use'], ['cl5-typed', 2, 'available']]
    assert seen['typed'] == EXTRA_SPECS
    assert seen['provider_auth'] == 'CHAP cl5chapuser %s' % CHAP_PASSWORD
    assert seen['provider_location'].endswith('iqn.2010-10.org.openstack:volume-%s 0' % VOLUME_DATA)
    assert seen['snapshots'] == [[SNAPSHOT_DATA, 'cl5-snap', VOLUME_DATA]]
    assert seen['conn']['driver_volume_type'] == 'iscsi'
    assert seen['conn']['data']['auth_method'] == 'CHAP' and seen['conn']['data']['auth_password'] == CHAP_PASSWORD
    assert seen['device']['path'] == '/dev/sdc' and seen['connected'] is True and seen['connector_host'] == 'cl5-host'
    assert seen['key_values'] == [['cl5-key-1', 'cl5 value one'], ['cl5-key-2', '{"json": ["value", 2]}']]

    # 2. The modules see the same volumes, by name, and show no credential.
    opts = {'backend': cl5_backend, 'persistence': {'storage': 'db', 'connection': cinderlib5_url}}
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_volume', dict(opts, name='cl5-typed', size=2),
                                dict(run_env, ANSIBLE_VERBOSITY='3'))
    assert rc == 0 and result['changed'] is False and result['volume']['id'] == VOLUME_TYPED, out
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts', dict(opts, refresh_stats=False),
                                dict(run_env, ANSIBLE_VERBOSITY='3'))
    assert rc == 0, out
    assert CHAP_PASSWORD not in out and 'cl5chapuser %s' % CHAP_PASSWORD not in out

    # 3. Used by another process: delete the typed volume, extend, disconnect the
    # CHAP connection and connect again, delete the snapshot, key/values.
    changed = last_json(run_python(program(cinderlib5_url, cl5_backend, '''
        cinderlib.Volume.get_by_id(%r).delete()  # first: the test VG is small
        data = cinderlib.Volume.get_by_id(%r)
        data.extend(2)
        old = data.connections[0]
        old.disconnect()
        new = data.connect(%r)
        new_conn = new.conn_info['driver_volume_type']
        new.disconnect()
        data.snapshots[0].delete()
        lvm.persistence.set_key_value(cinderlib.KeyValue('cl5-key-1', 'changed'))
        lvm.persistence.delete_key_value(cinderlib.KeyValue('cl5-key-2'))
        again = cinderlib.Volume.get_by_id(%r)
        print(json.dumps({'size': again.size, 'status': again.status, 'connections': len(again.connections),
                          'snapshots': len(again.snapshots), 'new_conn': new_conn,
                          'volumes': [v.id for v in lvm.volumes],
                          'key_values': sorted((kv.key, kv.value) for kv in lvm.persistence.get_key_values())}))
        ''' % (VOLUME_TYPED, VOLUME_DATA, NODE, VOLUME_DATA)), run_env))
    assert changed == {'size': 2, 'status': 'available', 'connections': 0, 'snapshots': 0, 'new_conn': 'iscsi',
                       'volumes': [VOLUME_DATA], 'key_values': [['cl5-key-1', 'changed']]}
    sizes = lv_sizes(lvm_backend_env['vg'], run_env)
    assert sizes.get('volume-%s' % VOLUME_DATA) == 2.0 and 'volume-%s' % VOLUME_TYPED not in sizes

    # 4. Cinder's tables as cinderlib left them; nothing imported twice.
    assert cinder_rows(cinderlib5_url) == before
    final = last_json(run_python(program(cinderlib5_url, cl5_backend, '''
        found = [(v.id, v.size) for v in lvm.volumes]
        cinderlib.Volume.get_by_id(%r).delete()
        print(json.dumps({'volumes': found, 'left': len(lvm.volumes)}))
        ''' % VOLUME_DATA), run_env))
    assert final == {'volumes': [[VOLUME_DATA, 2]], 'left': 0}
    assert 'volume-%s' % VOLUME_DATA not in lv_sizes(lvm_backend_env['vg'], run_env)
    if cinderlib5_url.startswith('sqlite'):
        path = cinderlib5_url.split('///', 1)[1]
        backup = Path(path + '.cinderlib5-backup')
        assert backup.exists() and backup.stat().st_mode & 0o777 == 0o600
        with sqlite3.connect(backup) as db:
            assert db.execute('SELECT count(*) FROM volumes WHERE deleted = 0').fetchone() == (2,)
            assert db.execute("SELECT name FROM sqlite_master WHERE name = 'cinderlib_meta'").fetchone() is None
