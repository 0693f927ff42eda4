# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""Backend definitions from files: cinderlib's YAML ``backends:`` list or an
existing cinder.conf (its ``enabled_backends`` sections). Cinder-free."""

from __future__ import annotations

import configparser
import os

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import BackendConfigError
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.schema import did_you_mean

# Keys of cinderlib's functional-test YAML that are not backends.
_LIBRARY_KEYS = ('logs', 'venv_sudo', 'size_precision', 'debug')

DEFAULT_CONFIG_FILES = ('/etc/cinderlib/backends.yml', '/etc/cinderlib/backends.yaml')


def default_config_file() -> str | None:
    """The first existing default backends file for this user, if any."""
    candidates = list(DEFAULT_CONFIG_FILES)
    if os.getuid() != 0:
        config_home = os.environ.get('XDG_CONFIG_HOME') or os.path.expanduser('~/.config')
        candidates.insert(0, os.path.join(config_home, 'cinderlib', 'backends.yml'))
    return next((path for path in candidates if os.path.isfile(path)), None)


def load_backends(path: str) -> dict[str, dict]:
    """Backends defined in ``path``, by name."""
    try:
        with open(path, encoding='utf-8') as handle:
            text = handle.read()
    except OSError as exc:
        raise BackendConfigError("Can't read config_file %s: %s." % (path, exc.strerror or exc), cause=exc) from exc
    if _looks_like_ini(text):
        return _from_cinder_conf(path, text)
    return _from_yaml(path, text)


def _looks_like_ini(text: str) -> bool:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(('#', ';')):
            return stripped.startswith('[')
    return False


def _from_yaml(path: str, text: str) -> dict[str, dict]:
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - PyYAML comes with Ansible and Cinder
        raise BackendConfigError('Reading %s needs the Python package PyYAML.' % path, cause=exc) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BackendConfigError('config_file %s is not valid YAML: %s' % (path, str(exc).splitlines()[0]),
                                 cause=exc) from exc
    if not isinstance(data, dict) or not isinstance(data.get('backends'), list):
        raise BackendConfigError(
            "config_file %s must be a YAML mapping with a 'backends:' list (or a cinder.conf)." % path)
    backends: dict[str, dict] = {}
    for index, item in enumerate(data['backends']):
        if not isinstance(item, dict) or not item.get('volume_backend_name'):
            raise BackendConfigError(
                "config_file %s: backends[%d] must be a mapping with a 'volume_backend_name'." % (path, index))
        name = str(item['volume_backend_name'])
        if name in backends:
            raise BackendConfigError('config_file %s defines backend %r twice.' % (path, name))
        backends[name] = dict(item)
    return backends


def _from_cinder_conf(path: str, text: str) -> dict[str, dict]:
    # [DEFAULT] holds Cinder's global options: read it as a plain section so
    # that it is not mixed into every backend section.
    parser = configparser.ConfigParser(interpolation=None, strict=False, default_section='\0none')
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        raise BackendConfigError('config_file %s is not a valid cinder.conf: %s' % (path, exc), cause=exc) from exc
    enabled = [b.strip() for b in parser.get('DEFAULT', 'enabled_backends', fallback='').split(',') if b.strip()]
    if not enabled:
        raise BackendConfigError('config_file %s is a cinder.conf without enabled_backends.' % path)
    shared = dict(parser.items('backend_defaults')) if parser.has_section('backend_defaults') else {}
    backends = {}
    for section in enabled:
        if not parser.has_section(section):
            raise BackendConfigError('config_file %s enables backend section [%s], which is missing.'
                                     % (path, section))
        options = dict(shared)
        options.update(parser.items(section))
        # Cinder names the backend after volume_backend_name when it is set.
        name = options.setdefault('volume_backend_name', section)
        backends[name] = options
    return backends


def resolve_backend(backend, config_file: str | None) -> dict:
    """A backend's driver options from an inline dict or a name in a file."""
    if isinstance(backend, dict):
        config = dict(backend)
        if not config.get('volume_backend_name'):
            raise BackendConfigError("The backend dict needs 'volume_backend_name' (and 'volume_driver').")
        return config
    if not isinstance(backend, str) or not backend.strip():
        raise BackendConfigError('backend must be a dict of driver options or the name of a backend in '
                                 'config_file, not %r.' % (backend,))
    path = config_file or default_config_file()
    if not path:
        raise BackendConfigError(
            'backend %r is a name, but there is no config_file to look it up in; give config_file '
            '(a YAML file with a backends: list, or a cinder.conf), create %s, or pass the backend as a dict.'
            % (backend, DEFAULT_CONFIG_FILES[0]))
    backends = load_backends(path)
    if backend not in backends:
        raise BackendConfigError('Backend %r is not defined in %s%s; it defines: %s.'
                                 % (backend, path, did_you_mean(backend, sorted(backends)),
                                    ', '.join(sorted(backends)) or 'none'))
    return backends[backend]
