# The one secret policy (secrets.py): the policy itself, then proof that every
# path that hides credentials asks it: with a made-up secret word ('zebra') and
# mask patched in, messages, facts, the state store, serialized output, the
# inventory and log records all hide a zebra_option value.
from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest
from ansible.errors import AnsibleParserError

from ansible_collections.cinderlib.storage.plugins.inventory.cinderlib import InventoryModule
from ansible_collections.cinderlib.storage.plugins.module_utils import connection_state
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import (
    brick,
    context,
    loader,
    schema,
    secrets,
    serialization,
    views,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import Backend
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import BackendInitError


class Boolean:
    """oslo.config's type, as the policy sees it: by its class name."""


class Integer:
    """oslo.config's type, as schema sees it: by its class name."""


def opt(dest: str, oslo_type=None, secret: bool = False, multi: bool = False):
    """An oslo option, duck-typed."""
    return SimpleNamespace(dest=dest, type=oslo_type, secret=secret, multi=multi, default=None, help='')


# -- the policy ---------------------------------------------------------------------------
@pytest.mark.parametrize('name', ['san_password', 'API_TOKEN', 'vmware_host_passwd', 'chap_secret', 'my_credentials',
                                  'san_private_key', 'rbd_keyring_conf', 'keyring', 'auth_password',
                                  'storage_vnx_authentication_type'])
def test_names_that_may_hold_a_credential(name):
    assert secrets.is_secret_name(name)


@pytest.mark.parametrize('name', ['volume_group', 'target_helper', 'san_login', 'backend_id',
                                  # connection info a host needs to attach; the password beside them is the secret
                                  'auth_method', 'auth_username', 'AUTH_ENABLED', 'discovery_auth_method'])
def test_names_that_hold_no_credential(name):
    assert not secrets.is_secret_name(name)


def test_oslo_options_are_secret_when_oslo_says_so_or_by_name_but_never_as_booleans():
    assert secrets.is_secret_option(opt('replication_device', secret=True))
    assert secrets.is_secret_option(opt('san_password'))
    assert not secrets.is_secret_option(opt('use_chap_auth', Boolean()))
    assert secrets.is_secret_option(opt('chap_auth_list', Boolean(), multi=True))
    assert not secrets.is_secret_option(opt('volume_group'))


def test_secret_keys_of_a_configuration():
    config = {'san_password': 'pw', 'replication_device': 'x', 'volume_group': 'vg', 'use_chap_auth': 'maybe'}
    assert secrets.secret_keys(config) == {'san_password', 'use_chap_auth'}
    options = {'replication_device': opt('replication_device', secret=True), 'use_chap_auth': opt('use_chap_auth',
                                                                                                  Boolean())}
    assert secrets.secret_keys(config, options) == {'san_password', 'replication_device'}


def test_values_skip_booleans_and_empty_values_and_dig_into_mappings():
    config = {
        'san_password': 'pw1', 'use_chap_auth': True, 'chap_password': '', 'api_token': 'true',
        'replication_device': [{'backend_id': 'b1', 'san_password': 'pw2'}, 'backend_id:b2,password:pw3'],
        'san_login': 'admin', 'secret_port': 1234, 'other': {'data': {'auth_password': 'pw4', 'auth_username': 'u'}},
    }
    assert secrets.values(config, ['replication_device']) == [
        'pw1', 'pw2', 'backend_id:b2,password:pw3', 'pw3', '1234', 'pw4']
    assert secrets.values(None) == [] and secrets.values({'san_password': '1'}) == []


def test_scrub_masks_the_longest_value_first():
    assert secrets.scrub('login pw and pw-long failed', ['pw', 'pw-long', '']) == (
        'login ******** and ******** failed')


def test_masked_hides_credential_values_at_any_depth_and_keeps_the_rest():
    config = {'volume_group': 'vg', 'san_password': 'pw', 'use_chap_auth': True,
              'replication_device': [{'backend_id': 'b1', 'san_password': 'pw2'}]}
    assert secrets.masked(config) == {'volume_group': 'vg', 'san_password': '********', 'use_chap_auth': True,
                                      'replication_device': [{'backend_id': 'b1', 'san_password': '********'}]}
    assert config['san_password'] == 'pw'


def test_records_lose_their_credential_fields():
    conn_info = {'driver_volume_type': 'iscsi',
                 'data': {'auth_method': 'CHAP', 'auth_username': 'u', 'auth_password': 'pw', 'keyring': 'k'}}
    assert secrets.without_secrets(conn_info) == {'driver_volume_type': 'iscsi',
                                                  'data': {'auth_method': 'CHAP', 'auth_username': 'u'}}
    volume = {'id': 'v1', 'provider_auth': 'CHAP u pw', 'metadata': {'provider_auth': 'kept: not the field'}}
    assert secrets.record_without_secrets(volume, 'volume') == {
        'id': 'v1', 'metadata': {'provider_auth': 'kept: not the field'}}
    connection = {'id': 'c1', 'conn_info': conn_info}
    assert secrets.record_without_secrets(connection, 'connection')['conn_info'] == secrets.without_secrets(conn_info)
    assert secrets.is_secret_field('volume', 'provider_auth') and not secrets.is_secret_field('volume', 'keyring')
    assert secrets.is_secret_field('connection', 'keyring', top=False)


@pytest.mark.parametrize('url, shown, found', [
    ('postgresql+psycopg2://admin:pw@db:5432/cinder', 'postgresql+psycopg2://admin:********@db:5432/cinder', ['pw']),
    ('redis://:p%40ss@127.0.0.1:6379', 'redis://:********@127.0.0.1:6379', ['p%40ss', 'p@ss']),
    ('redis://127.0.0.1:6379?db=0&password=pw&sentinel=s', 'redis://127.0.0.1:6379?db=0&password=********&sentinel=s',
     ['pw']),
    ('zookeeper://user:pw@h:2181?auth_token=t', 'zookeeper://user:********@h:2181?auth_token=********', ['pw', 't']),
    ('sqlite:////var/lib/cinderlib/state.db', 'sqlite:////var/lib/cinderlib/state.db', []),
    ('postgresql://user@db/cinder', 'postgresql://user@db/cinder', []),
])
def test_urls_show_no_password(url, shown, found):
    assert secrets.mask_url(url) == shown
    assert secrets.url_values(url) == found


def test_the_log_scrubber_masks_messages_their_arguments_and_tracebacks():
    scrubber = secrets.LogScrubber()
    scrubber.add(['s3cr3t', ''])
    try:
        raise ValueError('bad password s3cr3t')
    except ValueError:
        record = logging.LogRecord('cinder', logging.ERROR, __file__, 1, 'login %s failed', ('s3cr3t',), None)
        record.exc_info = __import__('sys').exc_info()
    assert scrubber.filter(record)
    assert record.getMessage() == 'login ******** failed'
    assert 's3cr3t' not in record.exc_text and 'bad password ********' in record.exc_text


# -- every path asks the policy ---------------------------------------------------------
ZEBRA_VALUE = 'z3br4-v4lue'
ZEBRA_MASK = '<zebra-masked>'


@pytest.fixture
def zebra(monkeypatch):
    """The policy with one more secret word and another mask: a path that kept
    its own list or mask shows the zebra_option value, or the old mask."""
    monkeypatch.setattr(secrets, 'WORDS', secrets.WORDS + ('zebra',))
    monkeypatch.setattr(secrets, 'MASK', ZEBRA_MASK)


def test_validation_messages_mask_a_zebra_option(zebra):
    options = [opt('zebra_option', Integer()), opt('volume_backend_name'), opt('volume_driver')]
    [problem] = schema.validate_config({'volume_backend_name': 'b', 'volume_driver': 'x.D',
                                        'zebra_option': ZEBRA_VALUE}, options)
    assert problem.message == 'zebra_option=%s: must be an integer' % ZEBRA_MASK
    assert schema.option_schema(opt('zebra_option'))['x-secret'] is True


@pytest.fixture
def failing_runtime(monkeypatch):
    """A library whose Cinder runtime fails to start any backend, quoting its option."""
    Backend.backends, Backend.global_initialization = {}, False
    Backend.global_setup(persistence_config={'storage': 'memory'})

    def refuse(name, cfg, unknown_options):
        raise BackendInitError("Backend %r can't log in to the array with %s" % (name, cfg['zebra_option']))

    runtime = SimpleNamespace(log_scrubber=secrets.LogScrubber(), backend_configuration=refuse)
    monkeypatch.setattr(loader.CinderRuntime, 'get', classmethod(lambda cls, settings: runtime))
    monkeypatch.setattr(loader, 'driver_options', lambda driver_path, who: [])
    yield runtime
    Backend.persistence.close()
    Backend.backends, Backend.global_initialization, Backend.settings, Backend.persistence = {}, False, None, None


def test_a_failing_backend_init_and_its_log_records_mask_a_zebra_option(zebra, failing_runtime):
    with pytest.raises(BackendInitError) as error:
        Backend('zb', volume_driver='x.Driver', zebra_option=ZEBRA_VALUE)
    assert str(error.value) == "Backend 'zb' can't log in to the array with %s" % ZEBRA_MASK
    # The runtime's handlers filter what drivers log with the backend's secrets.
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    handler.addFilter(failing_runtime.log_scrubber)
    # Not under 'cinder': other tests leave that logger quiet (loader.quiet_logging).
    logger = logging.getLogger('test_secrets.driver')
    logger.addHandler(handler)
    try:
        logger.error('array refused %s', ZEBRA_VALUE)
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == ['array refused %s' % ZEBRA_MASK]


class ZebraExport:
    """A driver's export half whose connection info carries a zebra_option."""

    def validate_connector(self, connector):
        pass

    def create_export(self, context, volume, connector):
        return {'provider_location': 'somewhere', 'provider_auth': 'CHAP u %s' % ZEBRA_VALUE}

    def initialize_connection(self, volume, connector):
        return {'driver_volume_type': 'iscsi',
                'data': {'target_lun': 0, 'auth_method': 'CHAP', 'zebra_option': ZEBRA_VALUE}}


@pytest.fixture
def zebra_connection(zebra, fake_backend, monkeypatch):
    """A volume of the fake backend connected to host node-a through ZebraExport."""
    export = ZebraExport()
    for name in ('validate_connector', 'create_export', 'initialize_connection'):
        setattr(fake_backend.driver, name, getattr(export, name))
    monkeypatch.setattr(Backend, 'validate_connector', lambda self, c: self.driver.validate_connector(c))
    monkeypatch.setattr(context, 'cinder_runtime', lambda: SimpleNamespace(context=None))
    monkeypatch.setattr(brick, 'get', lambda settings=None: SimpleNamespace(settings=Backend.settings))
    volume = fake_backend.create_volume(1, name='data')
    return volume.connect({'host': 'node-a', 'initiator': 'iqn.1993-08.org.debian:01:node-a'})


def test_the_state_store_keeps_the_zebra_option_as_the_driver_returned_it(zebra_connection):
    # As cinderlib did: the host gets the same connection info in every process.
    [record] = Backend.persistence.get('connection')
    assert record['conn_info']['data']['zebra_option'] == ZEBRA_VALUE
    assert zebra_connection.conn_info['data']['zebra_option'] == ZEBRA_VALUE
    # Serialized output and views hide it.
    for shown in (zebra_connection.jsons, zebra_connection.dumps, json.dumps(zebra_connection.to_dict())):
        assert ZEBRA_VALUE not in shown


def test_serialized_output_shows_no_zebra_option(zebra_connection):
    # A record loaded from output_all_backend_info data may hold the credential.
    Backend.persistence.put('connection', dict(zebra_connection.record, conn_info=dict(
        zebra_connection.full_conn_info())))
    zebra_connection.volume.refresh()
    for text in (zebra_connection.volume.dumps, zebra_connection.jsons, serialization.dumps()):
        assert ZEBRA_VALUE not in text and 'zebra_option' not in text


def test_facts_show_no_zebra_option(zebra):
    conn_info = {'driver_volume_type': 'iscsi', 'data': {'target_lun': 0, 'zebra_option': ZEBRA_VALUE}}
    record = {'id': 'c1', 'volume_id': 'v1', 'conn_info': conn_info}
    assert views.connection_view(record, full=True)['conn_info'] == {'driver_volume_type': 'iscsi',
                                                                     'data': {'target_lun': 0}}
    consumer = connection_state._consumer_view(conn_info, None, None, None)
    assert ZEBRA_VALUE not in json.dumps(consumer)


def test_the_inventory_masks_the_store_password_with_the_policys_mask(zebra, monkeypatch):
    plugin = InventoryModule()
    url = 'postgresql+psycopg2://u:%s@127.0.0.1:1/db?zebra_option=%s' % (ZEBRA_VALUE, ZEBRA_VALUE)
    # retry_window 0: nothing listens there, and waiting would show nothing more.
    monkeypatch.setattr(plugin, 'get_option', lambda name: {
        'persistence': {'storage': 'db', 'connection': url, 'retry_window': 0}}[name])
    with pytest.raises(AnsibleParserError) as error:
        plugin._read_volumes()
    assert "u:%s@127.0.0.1:1/db?zebra_option=%s" % (ZEBRA_MASK, ZEBRA_MASK) in str(error.value)
    assert ZEBRA_VALUE not in str(error.value)
