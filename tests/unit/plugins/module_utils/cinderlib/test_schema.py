# The JSON Schema of a backend's configuration, from real Cinder drivers'
# oslo.config options (LVM, XtremIO) and from hand-made oslo options for the
# types those drivers lack.
from __future__ import annotations

import importlib.util
import json
import re
import types

import pytest

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import schema

HAS_CINDER = importlib.util.find_spec('cinder') is not None
needs_cinder = pytest.mark.skipif(not HAS_CINDER, reason='cinder is not installed for this interpreter')

LVM = 'cinder.volume.drivers.lvm.LVMVolumeDriver'
XTREMIO = 'cinder.volume.drivers.dell_emc.xtremio.XtremIOISCSIDriver'


def options_of(driver_path):
    from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import loader
    return loader.driver_options(driver_path, 'Backend %r' % 'test')


@pytest.fixture(scope='module')
def lvm():
    options = options_of(LVM)
    return options, schema.backend_schema(options, LVM)


@pytest.fixture(scope='module')
def xtremio():
    options = options_of(XTREMIO)
    return options, schema.backend_schema(options, XTREMIO)


def problems(config, driver):
    options, backend_schema = driver
    return schema.validate_config(config, options, backend_schema)


def messages(config, driver):
    return [p.message for p in problems(config, driver)]


# -- generated schema ----------------------------------------------------------------
@needs_cinder
def test_lvm_schema_is_a_valid_draft_2020_12_schema(lvm):
    import jsonschema
    _options, generated = lvm
    jsonschema.Draft202012Validator.check_schema(generated)
    assert generated['$schema'] == 'https://json-schema.org/draft/2020-12/schema'
    assert generated['type'] == 'object'
    assert generated['additionalProperties'] is False
    assert generated['required'] == ['volume_backend_name', 'volume_driver']
    assert generated['properties']['volume_driver']['const'] == LVM
    json.dumps(generated)  # JSON all the way down


@needs_cinder
@pytest.mark.parametrize('option, expected', [
    ('volume_group', {'type': 'string', 'default': 'cinder-volumes'}),
    ('lvm_type', {'type': 'string', 'enum': ['default', 'thin', 'auto'], 'default': 'auto'}),
    ('volume_clear', {'type': 'string', 'enum': ['none', 'zero'], 'default': 'zero'}),
    ('target_helper', {'type': 'string', 'default': 'tgtadm'}),
    ('reserved_percentage', {'type': 'integer', 'minimum': 0, 'maximum': 100, 'default': 0}),
    ('target_port', {'type': 'integer', 'minimum': 0, 'maximum': 65535, 'default': 3260, 'x-oslo-type': 'Port'}),
    ('volume_clear_size', {'type': 'integer', 'maximum': 1024, 'default': 0}),
    ('lvm_mirrors', {'type': 'integer', 'default': 0}),
    ('use_chap_auth', {'type': 'boolean', 'default': False}),
    ('target_secondary_ip_addresses', {'type': 'array', 'items': {'type': 'string'}, 'default': []}),
    ('max_over_subscription_ratio', {'type': 'string', 'pattern': r'^(auto|\d*\.\d+|\d+)$'}),
    ('disk_geometry', {'type': ['string', 'null'], 'enum': [None, '512', '512e', '4k']}),
])
def test_lvm_option_types(lvm, option, expected):
    _options, generated = lvm
    prop = generated['properties'][option]
    for key, value in expected.items():
        assert prop[key] == value, (option, key)
    assert prop['description']
    assert 'x-secret' not in prop and 'writeOnly' not in prop


@needs_cinder
def test_lvm_target_helper_choices_come_from_oslo(lvm):
    _options, generated = lvm
    assert {'tgtadm', 'lioadm', 'nvmet'} <= set(generated['properties']['target_helper']['enum'])


@needs_cinder
def test_secret_options_are_write_only_and_have_no_default(lvm, xtremio):
    for _options, generated in (lvm, xtremio):
        prop = generated['properties']['chap_password']
        assert prop['writeOnly'] is True and prop['x-secret'] is True and 'default' not in prop
    props = xtremio[1]['properties']
    assert props['san_password']['x-secret'] is True
    # oslo marks it secret; its name does not look like one.
    assert props['replication_device']['x-secret'] is True
    assert props['replication_device']['type'] == 'array'
    assert props['replication_device']['items'] == {'type': 'object', 'additionalProperties': {'type': 'string'}}
    # Named like a secret by the heuristics, but a boolean holds no credential.
    assert 'x-secret' not in props['use_chap_auth']
    secret = {name for name, prop in props.items() if prop.get('x-secret')}
    assert secret >= {'san_password', 'chap_password', 'replication_device', 'san_private_key'}


@needs_cinder
@pytest.mark.parametrize('option, expected', [
    ('xtremio_cluster_name', {'type': 'string', 'default': ''}),
    ('xtremio_array_busy_retry_count', {'type': 'integer', 'default': 5}),
    ('xtremio_clean_unused_ig', {'type': 'boolean', 'default': False}),
    ('xtremio_ports', {'type': 'array', 'items': {'type': 'string'}, 'default': []}),
    ('san_ip', {'type': 'string'}),
    ('san_ssh_port', {'type': 'integer', 'minimum': 0, 'maximum': 65535, 'default': 22}),
    ('san_thin_provision', {'type': 'boolean', 'default': True}),
    ('driver_ssl_cert_verify', {'type': 'boolean', 'default': False}),
])
def test_xtremio_option_types(xtremio, option, expected):
    prop = xtremio[1]['properties'][option]
    for key, value in expected.items():
        assert prop[key] == value, (option, key)


# -- oslo types the two drivers lack --------------------------------------------------------
@needs_cinder
def test_types_built_from_hand_made_oslo_options():
    from oslo_config import cfg
    options = [
        cfg.StrOpt('volume_backend_name'), cfg.StrOpt('volume_driver'),
        cfg.FloatOpt('ratio', min=0.5, max=8.0, default=1.0),
        cfg.IntOpt('level', choices=[1, 2, 3]),
        cfg.DictOpt('tags', default={'a': 'b'}),
        cfg.MultiStrOpt('paths'),
        cfg.StrOpt('mode', choices=['Fast', 'Slow'], ignore_case=True),
        cfg.StrOpt('code', regex='^[A-Z]+$', max_length=8),
        cfg.StrOpt('api_token', help='A token.  With   spaces.'),
        cfg.IntOpt('old', deprecated_for_removal=True),
        cfg.ListOpt('sizes', item_type=cfg.types.Integer(min=1)),
    ]
    props = schema.backend_schema(options)['properties']
    assert props['ratio'] == {'type': 'number', 'minimum': 0.5, 'maximum': 8.0, 'default': 1.0,
                              'x-oslo-type': 'Float'}
    assert props['level']['enum'] == [1, 2, 3] and props['level']['type'] == 'integer'
    assert props['tags']['type'] == 'object' and props['tags']['default'] == {'a': 'b'}
    assert props['paths']['type'] == 'array' and props['paths']['items'] == {'type': 'string'}
    assert 'enum' not in props['mode']  # case-insensitive: converted before validation
    assert props['code']['pattern'] == '^[A-Z]+$' and props['code']['maxLength'] == 8
    assert props['api_token']['x-secret'] is True and props['api_token']['description'] == 'A token. With spaces.'
    assert props['old']['deprecated'] is True
    assert props['sizes']['items'] == {'type': 'integer', 'minimum': 1}

    def check(config):
        return [p.message for p in schema.validate_config(dict(config, volume_backend_name='b', volume_driver='x.Y'),
                                                          options)]
    assert check({'ratio': '2.5', 'level': '2', 'tags': 'k:v, k2:v2', 'paths': ['/a', '/b'], 'mode': 'fast',
                  'code': 'ABC', 'sizes': '1,2'}) == []
    assert check({'ratio': '0.1', 'level': 4, 'tags': 'novalue', 'paths': '/a', 'code': 'abc', 'sizes': '1,0',
                  'api_token': 5}) == [
        "ratio='0.1': must be at least 0.5",
        'level=4: must be one of: 1, 2, 3',
        "tags='novalue': must be a mapping (or a 'key:value,key2:value2' string)",
        "paths='/a': must be a list (or a comma-separated string)",
        "code='abc': must match the regular expression '^[A-Z]+$'",
        'sizes[1]=0: must be at least 1',
    ]
    # Case-insensitive choices are left to oslo, which set_override applies next.
    assert check({'mode': 'medium'}) == []


# -- validation ----------------------------------------------------------------------------
BASE = {'volume_backend_name': 'lvm', 'volume_driver': LVM, 'volume_group': 'vg'}


@needs_cinder
def test_cinder_conf_strings_stay_valid(lvm):
    # What a cinder.conf section gives: strings only.
    config = dict(BASE, reserved_percentage='5', use_chap_auth='True', lvm_mirrors='0', volume_clear_size='',
                  target_port=' 3260 ', target_secondary_ip_addresses='10.0.0.1, 10.0.0.2', lvm_type='thin',
                  max_over_subscription_ratio='auto', volume_clear='none', target_helper='lioadm',
                  lvm_suppress_fd_warnings='no', iscsi_target_flags='')
    assert problems(config, lvm) == []


@needs_cinder
def test_yaml_values_stay_valid(lvm):
    config = dict(BASE, reserved_percentage=5, use_chap_auth=False, target_secondary_ip_addresses=['10.0.0.1'],
                  max_over_subscription_ratio=1.5, volume_group=123, disk_geometry=None, target_port=3260.0)
    assert problems(config, lvm) == []


@needs_cinder
@pytest.mark.parametrize('config, expected', [
    ({'volume_grup': 'x'}, r"^unknown option 'volume_grup' \(did you mean 'volume_group'"),
    ({'lvm_typ': 'thin'}, r"^unknown option 'lvm_typ' \(did you mean 'lvm_type'\?\)$"),
    ({'zzzz_qqqq': 1}, r"^unknown option 'zzzz_qqqq'$"),
    ({'lvm_type': 'thick'}, r'^lvm_type=\'thick\': must be one of: "default", "thin", "auto"$'),
    ({'target_helper': 'iscsiadm'}, r"^target_helper='iscsiadm': must be one of: \"tgtadm\""),
    ({'reserved_percentage': 101}, r'^reserved_percentage=101: must be at most 100$'),
    ({'reserved_percentage': '-1'}, r"^reserved_percentage='-1': must be at least 0$"),
    ({'volume_clear_size': 'big'}, r"^volume_clear_size='big': must be an integer$"),
    ({'volume_clear_size': 2.5}, r'^volume_clear_size=2.5: must be an integer$'),
    ({'lvm_mirrors': True}, r'^lvm_mirrors=True: must be an integer$'),
    ({'target_port': 70000}, r'^target_port=70000: must be at most 65535$'),
    ({'use_chap_auth': 'maybe'}, r"^use_chap_auth='maybe': must be a boolean \(true/false, yes/no, on/off or 1/0\)$"),
    ({'use_chap_auth': 1}, r'^use_chap_auth=1: must be a boolean'),
    ({'target_secondary_ip_addresses': {'a': 1}}, r'^target_secondary_ip_addresses=\{\'a\': 1\}: must be a list'),
    ({'max_over_subscription_ratio': 'huge'}, r"^max_over_subscription_ratio='huge': must match the regular "),
    ({'volume_group': ['a']}, r"^volume_group=\['a'\]: must be a string$"),
    ({'volume_driver': 'cinder.volume.drivers.lvm.Other'}, r'^volume_driver=\'cinder.volume.drivers.lvm.Other\': '
                                                           r'must be one of: "cinder.volume.drivers.lvm.LVMVolume'),
])
def test_each_problem_names_the_option_and_what_is_wrong(lvm, config, expected):
    [message] = messages(dict(BASE, **config), lvm)
    assert re.search(expected, message), message


@needs_cinder
def test_missing_required_options(lvm):
    assert messages({'volume_group': 'vg'}, lvm) == [
        "missing option 'volume_backend_name': it is required", "missing option 'volume_driver': it is required"]


@needs_cinder
def test_every_problem_is_reported_at_once_in_config_order(lvm):
    found = problems(dict(BASE, lvm_typ='thin', reserved_percentage=200, target_helper='nope', lvm_mirrors='x',
                          volume_clear=0), lvm)
    assert [p.option for p in found] == ['lvm_typ', 'reserved_percentage', 'target_helper', 'lvm_mirrors',
                                         'volume_clear']
    assert [p.unknown for p in found] == [True, False, False, False, False]


@needs_cinder
def test_one_problem_per_option(lvm):
    # Not a string and not one of the choices: one message, about the type.
    assert messages(dict(BASE, lvm_type=['thin']), lvm) == ["lvm_type=['thin']: must be a string"]


@needs_cinder
@pytest.mark.parametrize('config', [
    {'san_password': ['Sup3rS3cret!']},
    {'chap_password': {'x': 'Sup3rS3cret!'}},
    {'replication_device': 'backend_id:b,san_password:Sup3rS3cret!'},
    {'replication_device': ['Sup3rS3cret!']},
    {'my_api_token': 'Sup3rS3cret!'},
])
def test_secret_values_never_appear_in_messages(xtremio, config):
    found = messages(dict(BASE, volume_driver=XTREMIO, **config), xtremio)
    assert found
    assert not any('Sup3rS3cret!' in m for m in found), found
    assert any('********' in m or m.startswith('unknown option') for m in found)


@pytest.mark.parametrize('keyword, bound, expected', [
    ('minimum', 0.5, 'must be at least 0.5'),
    ('maximum', 100, 'must be at most 100'),
    ('maxLength', 8, 'must be at most 8 characters long'),
    ('pattern', '^[a-z]+$', "must match the regular expression '^[a-z]+$'"),
    ('minItems', 1, 'must have at least 1 item(s)'),
    ('minProperties', 2, 'must have at least 2 key(s)'),
    ('multipleOf', 4, 'is not valid (multipleOf)'),
])
def test_each_bound_keyword_has_its_words(keyword, bound, expected):
    error = types.SimpleNamespace(validator=keyword, validator_value=bound)
    assert schema._describe(error) == expected
