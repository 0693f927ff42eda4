# The one secret policy (secrets.py).
from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import secrets


class Boolean:
    """oslo.config's type, as the policy sees it: by its class name."""


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
    assert secrets.record_without_secrets(volume, 'volume') == {'id': 'v1', 'metadata': {'provider_auth':
                                                                                        'kept: not the field'}}
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
