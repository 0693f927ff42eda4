# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""The collection's one secret policy: what holds a credential, and how it
is hidden.

Credentials reach the library as backend options (``san_password``; a
``replication_device`` that oslo marks secret), in connection info (CHAP's
``auth_password``, RBD's ``keyring``), in stored record fields (a volume's
``provider_auth``) and in URLs (the state store's, ``coordination_url``).
Every part that decides whether something is secret, or hides it, asks this
module: validation messages (schema, loader), errors of a backend that fails
to start (backend), the Ansible layer's ``no_log`` values, the state store's
records and serialized output (serialization, connections), facts and the
inventory (views), log records. Changing the policy here changes it for all.

Cinder-free and Ansible-free: the inventory plugin imports it on a
controller, and oslo options are read by duck typing.
"""

from __future__ import annotations

import copy
import logging
import urllib.parse
from typing import Any

MASK = '********'

# Words that mark a name (an option, a key of a mapping, of connection info or
# of a URL's query) as holding a credential, anywhere in it and in any case;
# 'key' covers RBD's 'keyring'. Matching anywhere masks some harmless names
# (monkey_patch_modules) rather than miss a credential (nec_ismcli_privkey).
WORDS = ('password', 'passwd', 'secret', 'token', 'credential', 'key', 'auth')

# Names the words match that hold no credential and that a host must read in
# connection info to attach: the CHAP method and user (the password beside
# them is the secret) and RBD's switch.
NOT_SECRET = frozenset(('auth_method', 'auth_username', 'auth_enabled',
                        'discovery_auth_method', 'discovery_auth_username'))

# Fields of stored records that keep a credential hosts need later: a
# volume's provider_auth ("CHAP user password").
RECORD_FIELDS = ('provider_auth',)

# Values never taken for a credential: masking them would blank out every
# 'true' or '1' of an output.
_NOT_VALUES = ('', 'true', 'false', 'yes', 'no', 'on', 'off', '1', '0')


# -- names ------------------------------------------------------------------------------
def is_secret_name(name: Any) -> bool:
    """Whether a name may hold a credential, whatever oslo says."""
    lowered = str(name).lower()
    return lowered not in NOT_SECRET and any(word in lowered for word in WORDS)


def is_secret_option(opt: Any) -> bool:
    """Whether an oslo option holds a credential: oslo marks it secret, or it
    is named like one and is no boolean (use_chap_auth switches CHAP on, it
    holds no password)."""
    if getattr(opt, 'secret', False):
        return True
    boolean = any(cls.__name__ == 'Boolean' for cls in type(getattr(opt, 'type', None)).__mro__)
    return is_secret_name(opt.dest) and (not boolean or getattr(opt, 'multi', False))


def secret_keys(config: dict, options: dict | None = None) -> set[str]:
    """The keys of a configuration whose values must never be shown: those
    whose oslo option (in ``options``, by name) is secret, and those of no
    known option that are named like a credential."""
    options = options or {}
    return {key for key in config if (is_secret_option(options[key]) if key in options else is_secret_name(key))}


def is_secret_field(kind: str, key: Any, top: bool = True) -> bool:
    """Whether a key of a stored record of ``kind`` holds a credential:
    ``RECORD_FIELDS`` at the record's top, and in a connection (its
    connection info) any key named like a credential."""
    return (top and key in RECORD_FIELDS) or (kind == 'connection' and is_secret_name(key))


# -- values -----------------------------------------------------------------------------
def values(config: Any, keys: Any = ()) -> list[str]:
    """The secret values in ``config``, as the strings that must never be
    shown (for Ansible's no_log and for ``scrub``): the values of the
    top-level ``keys`` and, at any depth, of keys named like a credential.
    Inside a mapping held by such a key, only its credential-named keys
    count (replication_device's backend_id is no secret)."""
    found: list[str] = []
    _collect(config, set(keys), found)
    return sorted(set(found), key=found.index)


def _collect(value: Any, keys: set, found: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in keys or is_secret_name(key):
                _leaves(item, found)
            else:
                _collect(item, set(), found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, set(), found)


def _leaves(value: Any, found: list[str]) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, dict):
        _collect(value, set(), found)
        return
    if isinstance(value, (list, tuple, set)):
        for item in value:
            _leaves(item, found)
        return
    text = str(value)
    if text.strip().lower() in _NOT_VALUES:
        return
    found.append(text)
    # An oslo dict given as a string: 'backend_id:b1,san_password:pw'.
    for pair in text.split(',') if ':' in text else ():
        key, sep, item = pair.partition(':')
        if sep and is_secret_name(key.strip()) and item.strip():
            found.append(item.strip())


def scrub(text: str, secret_values: Any) -> str:
    """``text`` (a message, a log line) with every one of ``secret_values``
    masked; the longest first, so that a value holding another goes whole."""
    for secret in sorted((s for s in secret_values if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


# -- mappings ---------------------------------------------------------------------------
def masked(value: Any) -> Any:
    """A copy of ``value`` with the values of credential-named keys masked,
    at any depth, where ``values`` finds a secret in them (a boolean stays)."""
    if isinstance(value, dict):
        return {key: (MASK if is_secret_name(key) and values({key: item}) else masked(item))
                for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return copy.deepcopy(value)


def without_secrets(value: Any) -> Any:
    """A copy of ``value`` without credential-named keys, at any depth:
    connection info as stored and shown."""
    return _without(value, 'connection', top=False)


def record_without_secrets(record: dict, kind: str) -> dict:
    """A copy of a stored record of ``kind`` without its credentials (see
    ``is_secret_field``)."""
    return _without(record, kind, top=True)


def _without(value: Any, kind: str, top: bool) -> Any:
    if isinstance(value, dict):
        return {key: _without(item, kind, top=False) for key, item in value.items()
                if not is_secret_field(kind, key, top)}
    if isinstance(value, list):
        return [_without(item, kind, top=False) for item in value]
    return copy.deepcopy(value)


# -- URLs -------------------------------------------------------------------------------
def mask_url(url: str) -> str:
    """A URL as messages show it: the password of its user part
    (postgresql://user:PASSWORD@host/db) and its credential-named query
    parameters (redis://host:6379?password=PASSWORD) masked."""
    scheme, sep, rest = url.partition('://')
    if sep and '@' in rest:
        creds, host = rest.rsplit('@', 1)
        user, colon, _password = creds.partition(':')
        if colon:
            url = '%s://%s:%s@%s' % (scheme, user, MASK, host)
    head, qmark, query = url.partition('?')
    if not qmark:
        return url
    parameters = []
    for parameter in query.split('&'):
        name, equals, _value = parameter.partition('=')
        parameters.append(name + equals + MASK if equals and is_secret_name(name) else parameter)
    return head + qmark + '&'.join(parameters)


def url_values(url: str | None) -> list[str]:
    """The credentials in a URL, as written and decoded: the password of its
    user part and the values of its credential-named query parameters."""
    if not url:
        return []
    found = []
    scheme, sep, rest = url.partition('://')
    if sep and '@' in rest:
        found.append(rest.rsplit('@', 1)[0].partition(':')[2])
    for parameter in url.partition('?')[2].split('&'):
        name, equals, value = parameter.partition('=')
        if equals and is_secret_name(name):
            found.append(value)
    found += [urllib.parse.unquote(value) for value in found]
    return sorted({value for value in found if value}, key=found.index)


# -- log records ------------------------------------------------------------------------
def _mask_password(text: str) -> str:
    try:
        from oslo_utils import strutils
    except ImportError:  # logging is only on with Cinder, which brings oslo.utils
        return text
    return strutils.mask_password(text, secret=MASK)


class LogScrubber(logging.Filter):
    """A filter for log handlers that masks the secret values ``add``-ed to
    it in every record they emit (a handler filter sees the records of every
    logger that reaches the handler; a logger's filter only its own)."""

    def __init__(self) -> None:
        super().__init__()
        self.secret_values: set[str] = set()

    def add(self, secret_values: Any) -> None:
        self.secret_values.update(value for value in secret_values if value)

    def filter(self, record: logging.LogRecord) -> bool:
        # Credentials a driver makes itself (such as CHAP passwords it
        # generates) are known to no list: mask what looks like one, as
        # oslo does in the messages it logs itself.
        record.msg, record.args = _mask_password(scrub(record.getMessage(), self.secret_values)), ()
        if self.secret_values:
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = scrub(record.exc_text, self.secret_values)
        return True
