# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""The JSON Schema (draft 2020-12) of a backend's configuration, built from
its driver's own oslo.config options, and validation against it.

The options are the ones the loader collects for a backend: those registered
in Cinder's shared ``backend_defaults`` group once the driver's module is
imported (the driver's own options and the common backend options). This
module reads oslo's ``Opt`` and type objects by duck typing and imports
neither Cinder nor oslo, so it works on whatever options it is given.

Validation happens before the driver is instantiated and reports every
problem at once. Values are first converted the way oslo converts them
(cinder.conf gives strings: ``'5'``, ``'true'``, ``'a,b'``), so that what
oslo accepts stays valid; oslo's ``set_override`` remains the final
authority. Values of secret options (see ``secrets``) never appear in a message.
"""

from __future__ import annotations

import difflib
import json
from typing import Any, NamedTuple

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import secrets

DRAFT = 'https://json-schema.org/draft/2020-12/schema'
REQUIRED = ('volume_backend_name', 'volume_driver')

_TRUE = ('true', '1', 'on', 'yes')
_FALSE = ('false', '0', 'off', 'no')
_TYPE_WORDS = {
    'string': 'a string',
    'integer': 'an integer',
    'number': 'a number',
    'boolean': 'a boolean (true/false, yes/no, on/off or 1/0)',
    'array': "a list (or a comma-separated string)",
    'object': "a mapping (or a 'key:value,key2:value2' string)",
    'null': 'null',
}


class Problem(NamedTuple):
    """One thing wrong with a backend's configuration."""

    option: str
    message: str
    unknown: bool = False


def did_you_mean(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=3, cutoff=0.6)
    return ' (did you mean %s?)' % ', '.join(repr(c) for c in close) if close else ''


def unknown_option(key: str, known: list[str]) -> str:
    return 'unknown option %r%s' % (key, did_you_mean(key, known))


# -- oslo types -> JSON Schema -------------------------------------------------------
def _kind(oslo_type: Any) -> str:
    """The oslo type class an option's type is (or derives from), by name."""
    if oslo_type is None:
        return 'String'
    for cls in type(oslo_type).__mro__:
        if cls.__name__ in ('Boolean', 'Integer', 'Float', 'List', 'Dict', 'String', 'MultiString', 'Range'):
            return cls.__name__
    return 'String'  # IPAddress, HostAddress, Hostname, URI...: strings checked by oslo


def _json_value(value: Any) -> Any:
    """A default or choice as JSON can hold it."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_value(v) for v in value]
    return str(value)


def type_schema(oslo_type: Any) -> dict:
    """The JSON Schema of one value of an oslo type."""
    kind = _kind(oslo_type)
    if kind == 'Boolean':
        return {'type': 'boolean'}
    if kind in ('Integer', 'Float'):
        schema: dict = {'type': 'integer' if kind == 'Integer' else 'number'}
        choices = getattr(oslo_type, 'choices', None)
        if choices:
            schema['enum'] = [_json_value(c) for c in choices]
        else:
            if getattr(oslo_type, 'min', None) is not None:
                schema['minimum'] = oslo_type.min
            if getattr(oslo_type, 'max', None) is not None:
                schema['maximum'] = oslo_type.max
        return schema
    if kind == 'List':
        schema = {'type': 'array', 'items': type_schema(getattr(oslo_type, 'item_type', None))}
        if getattr(oslo_type, 'min_length', 0):
            schema['minItems'] = oslo_type.min_length
        return schema
    if kind == 'Dict':
        schema = {'type': 'object', 'additionalProperties': type_schema(getattr(oslo_type, 'value_type', None))}
        if getattr(oslo_type, 'min_length', 0):
            schema['minProperties'] = oslo_type.min_length
        return schema
    schema = {'type': 'string'}
    choices = getattr(oslo_type, 'choices', None)
    ignore_case = getattr(oslo_type, 'ignore_case', False)
    if choices and not ignore_case:
        values = [_json_value(c) for c in choices]
        schema['enum'] = values
        if None in values:
            schema['type'] = ['string', 'null']
    regex = getattr(oslo_type, 'regex', None)
    if regex is not None and not ignore_case:
        schema['pattern'] = getattr(regex, 'pattern', regex)
    if getattr(oslo_type, 'max_length', 0):
        schema['maxLength'] = oslo_type.max_length
    return schema


def option_schema(opt: Any) -> dict:
    """The JSON Schema of one oslo option."""
    schema = type_schema(opt.type)
    if getattr(opt, 'multi', False):
        schema = {'type': 'array', 'items': schema}
    schema['x-oslo-type'] = type(opt.type).__name__ if opt.type is not None else 'String'
    secret = secrets.is_secret_option(opt)
    default = getattr(opt, 'default', None)
    if default is not None and not secret:
        schema['default'] = _json_value(default)
    help_text = ' '.join((getattr(opt, 'help', None) or '').split())
    if help_text:
        schema['description'] = help_text
    if getattr(opt, 'deprecated_for_removal', False):
        schema['deprecated'] = True
    if secret:
        schema['writeOnly'] = True
        schema['x-secret'] = True
    return schema


def backend_schema(options: list, driver_path: str | None = None, title: str | None = None) -> dict:
    """The JSON Schema of a backend configuration with these oslo options."""
    properties = {opt.dest: option_schema(opt) for opt in sorted(options, key=lambda o: o.dest)}
    if driver_path and 'volume_driver' in properties:
        properties['volume_driver']['const'] = driver_path
        properties['volume_driver'].pop('default', None)
    schema = {
        '$schema': DRAFT,
        'title': title or ('Cinder backend configuration' + (' for %s' % driver_path if driver_path else '')),
        'type': 'object',
        'properties': properties,
        'required': [name for name in REQUIRED if name in properties],
        'additionalProperties': False,
    }
    return schema


# -- converting values the way oslo does ---------------------------------------------
def _split(value: str) -> list[str]:
    text = value.strip().rstrip(',')
    return [part.strip() for part in text.split(',')] if text else []


def coerce(value: Any, oslo_type: Any, multi: bool = False) -> Any:
    """``value`` converted as oslo would convert it; left as is when oslo
    would refuse it, so that validation says why."""
    if multi:
        if isinstance(value, (list, tuple)):
            return [coerce(v, oslo_type) for v in value]
        return value
    kind = _kind(oslo_type)
    if kind == 'Boolean':
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        return value
    if kind in ('Integer', 'Float'):
        if isinstance(value, str):
            if not value.strip():
                return None  # oslo reads an empty number as unset
            try:
                return int(value.strip()) if kind == 'Integer' else float(value.strip())
            except ValueError:
                return value
        return value
    if kind == 'List':
        item_type = getattr(oslo_type, 'item_type', None)
        if isinstance(value, str):
            value = _split(value)
        if isinstance(value, (list, tuple)):
            return [coerce(v, item_type) for v in value]
        return value
    if kind == 'Dict':
        value_type = getattr(oslo_type, 'value_type', None)
        if isinstance(value, str):
            pairs = {}
            separator = getattr(oslo_type, 'key_value_separator', ':')
            for pair in _split(value):
                key, sep, item = pair.partition(separator)
                if not sep:
                    return value
                pairs[key.strip()] = item.strip()
            value = pairs
        if isinstance(value, dict):
            return {str(k): coerce(v, value_type) for k, v in value.items()}
        return value
    # String (and IPAddress, URI...): oslo takes str(value) of scalars.
    if isinstance(value, (bool, int, float)):
        return str(value)
    if isinstance(value, str) and getattr(oslo_type, 'ignore_case', False):
        for choice in getattr(oslo_type, 'choices', None) or ():
            if isinstance(choice, str) and choice.lower() == value.lower():
                return choice
    return value


# -- validation ----------------------------------------------------------------------------
def _validator(schema: dict):
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - jsonschema comes with Cinder
        return None
    return jsonschema.Draft202012Validator(schema)


def _describe(error: Any) -> str:
    """What is wrong with a value, without repeating the value itself."""
    validator, expected = error.validator, error.validator_value
    if validator == 'type':
        kinds = expected if isinstance(expected, list) else [expected]
        return 'must be ' + ' or '.join(_TYPE_WORDS.get(k, k) for k in kinds if k != 'null')
    if validator in ('enum', 'const'):
        values = expected if validator == 'enum' else [expected]
        return 'must be one of: %s' % ', '.join(json.dumps(v) for v in values)
    if validator in _BOUND_WORDS:
        return _BOUND_WORDS[validator] % (expected,)
    return 'is not valid (%s)' % validator


# JSON Schema keywords that bound a value, and how a message says so.
_BOUND_WORDS = {
    'minimum': 'must be at least %s',
    'maximum': 'must be at most %s',
    'maxLength': 'must be at most %d characters long',
    'pattern': 'must match the regular expression %r',
    'minItems': 'must have at least %d item(s)',
    'minProperties': 'must have at least %d key(s)',
}


def _where(option: str, path: list) -> str:
    return option + ''.join('[%r]' % p for p in path)


def validate_config(config: dict, options: list, schema: dict | None = None) -> list[Problem]:
    """Every problem of ``config`` against the oslo ``options`` (and their
    schema), one per option, in the order of ``config``.

    Options set to None are unset (oslo's default applies) and not checked.
    Unknown options are problems with ``unknown=True``.
    """
    by_name = {opt.dest: opt for opt in options}
    schema = schema if schema is not None else backend_schema(options)
    hidden = secrets.secret_keys(config, by_name)
    known = sorted(by_name)
    instance = {}
    for key, value in config.items():
        opt = by_name.get(key)
        if opt is not None and value is not None:
            instance[key] = coerce(value, opt.type, getattr(opt, 'multi', False))
    instance = {k: v for k, v in instance.items() if v is not None}
    # Required options are checked on the config as given (None counts as missing).
    missing = [name for name in schema.get('required', []) if config.get(name) in (None, '')]
    found: dict[str, Problem] = {}
    validator = _validator(schema)
    if validator is not None:
        for error in sorted(validator.iter_errors(instance), key=lambda e: (len(e.path), e.validator != 'type')):
            if not error.path or error.path[0] in found:
                continue  # missing and unknown options are reported below
            option = error.path[0]
            path = list(error.path)[1:]
            value = secrets.MASK if option in hidden else repr(_value_at(config[option], path, instance[option]))
            found[option] = Problem(option, '%s=%s: %s' % (_where(option, path), value, _describe(error)))
    problems = []
    for key in config:
        if key not in by_name:
            problems.append(Problem(key, unknown_option(key, known), unknown=True))
        elif key in found:
            problems.append(found[key])
    for name in missing:
        problems.append(Problem(name, 'missing option %r: it is required' % name))
    return problems


def _value_at(original: Any, path: list, converted: Any) -> Any:
    """The value to show: the one the user gave, or the converted item at ``path``."""
    if not path:
        return original
    value = converted
    for step in path:
        value = value[step]
    return value
