# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""The volume drivers Cinder ships, with their options
(cinderlib's ``list_supported_drivers``), and one driver's options with their
JSON Schema (``driver_info``)."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
from typing import Any

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import loader
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    BackendConfigError,
    UnknownDriver,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.loader import import_or_explain
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.schema import backend_schema, did_you_mean


def _public_vars(obj: Any) -> dict:
    return {k: v for k, v in vars(obj).items() if not k.startswith('_')}


def _option(opt: Any, output_version: int) -> dict:
    if output_version != 2:
        return {k: str(v) for k, v in _public_vars(opt).items()}
    result = _public_vars(opt)
    type_class = result.get('type')
    result['type'] = _public_vars(opt.type) if opt.type is not None else {}
    result['type']['type_class'] = type_class
    return result


def load_all_driver_modules() -> None:
    """Import every module under cinder.volume.drivers, so that every driver
    registers itself; a driver whose own dependencies are missing is skipped
    (as Cinder's own listing does)."""
    # Registering the versioned objects must precede any driver import.
    import_or_explain('cinder.objects', 'Listing drivers').register_all()
    drivers_pkg = import_or_explain('cinder.volume.drivers', 'Listing drivers')
    for info in pkgutil.walk_packages(drivers_pkg.__path__, drivers_pkg.__name__ + '.'):
        try:
            importlib.import_module(info.name)
        except Exception:  # noqa: BLE001,S112 - a driver with missing requirements is not listable
            continue


def list_supported_drivers(output_version: int = 1) -> dict:
    """Driver class name -> description, version, options.

    Version 1 gives strings for human reading; version 2 keeps value types
    and gives each option's type as a dict.
    """
    if output_version not in (1, 2):
        raise ValueError('Acceptable versions are 1 and 2')
    import_or_explain('cinder.objects', 'Listing drivers').register_all()
    interface = import_or_explain('cinder.interface', 'Listing drivers')
    import_or_explain('cinder.volume.manager', 'Listing drivers')
    load_all_driver_modules()
    result = {}
    for cls in interface._volume_register:
        try:
            options = cls.get_driver_options()
        except Exception:  # noqa: BLE001 - a broken driver lists with no options
            options = []
        options = _with_kept_options(cls, options)
        result[cls.__name__] = {
            'class_name': cls.__name__,
            'class_fqn': '%s.%s' % (cls.__module__, cls.__name__),
            'desc': cls.__doc__,
            'version': getattr(cls, 'VERSION', None),
            'ci_wiki_name': getattr(cls, 'CI_WIKI_NAME', None),
            'supported': getattr(cls, 'SUPPORTED', True),
            'driver_options': [_option(opt, output_version) for opt in options],
        }
    return result


def _with_kept_options(cls: type, options: list) -> list:
    """The driver's options with those cinderlib kept for it (as cinderlib
    listed them: in place of Cinder's own, else at the end)."""
    kept = {opt.dest: opt for opt in loader.kept_options(cls)}
    listed = [kept.pop(opt.dest, opt) for opt in options]
    return listed + list(kept.values())


# -- summaries and one driver's options ----------------------------------------------------
def _summary(cls: type) -> dict:
    doc = (cls.__doc__ or '').strip().splitlines()
    version = getattr(cls, 'VERSION', None)
    return {
        'class_name': cls.__name__,
        'fqn': '%s.%s' % (cls.__module__, cls.__name__),
        'version': None if version is None else str(version),
        'supported': bool(getattr(cls, 'SUPPORTED', True)),
        'description': doc[0].strip() if doc else '',
    }


def list_drivers() -> list[dict]:
    """The drivers Cinder ships (those whose requirements are installed),
    by class name: class_name, fqn, version, supported, description."""
    import_or_explain('cinder.objects', 'Listing drivers').register_all()
    interface = import_or_explain('cinder.interface', 'Listing drivers')
    import_or_explain('cinder.volume.manager', 'Listing drivers')
    load_all_driver_modules()
    summaries = [_summary(cls) for cls in interface._volume_register]
    return sorted(summaries, key=lambda d: (d['class_name'].lower(), d['fqn']))


_CLASS_RE = r'^class\s+(%s)\s*[(:]'


def _driver_sources() -> list[tuple[str, str]]:
    """(module name, source) of every module under cinder.volume.drivers."""
    drivers_pkg = import_or_explain('cinder.volume.drivers', 'Finding a driver')
    sources = []
    for root in drivers_pkg.__path__:
        for folder, _dirs, files in os.walk(root):
            for filename in files:
                if not filename.endswith('.py'):
                    continue
                path = os.path.join(folder, filename)
                relative = os.path.relpath(path, root)[:-3].replace(os.sep, '.')
                module = drivers_pkg.__name__ + '.' + relative.removesuffix('.__init__')
                with open(path, encoding='utf-8', errors='replace') as handle:
                    sources.append((module, handle.read()))
    return sources


def resolve_driver_path(driver: Any, who: str) -> Any:
    """A backend's ``volume_driver`` as a class path: a class name alone
    (``LVMVolumeDriver``) is looked up as ``find_driver`` does; a class path,
    or a value that is no name at all, is returned as it is (the loader says
    what is wrong with it). ``who`` starts messages ("Backend 'lvm'")."""
    if not isinstance(driver, str) or not driver.strip() or '.' in driver:
        return driver
    if driver not in _RESOLVED:
        _RESOLVED[driver] = find_driver(driver, '%s: volume_driver' % who)
    return _RESOLVED[driver]


_RESOLVED: dict[str, str] = {}


def find_driver(driver: str, what: str = 'driver') -> str:
    """The class path of a driver given by class path or by class name.

    A class name is looked up in Cinder's sources, so that only its module
    is imported (and only its options registered). ``what`` names the value
    in messages ("Backend 'lvm': volume_driver").
    """
    if not isinstance(driver, str) or not driver.strip():
        raise BackendConfigError('%s must be the class name (LVMVolumeDriver) or the class path '
                                 '(cinder.volume.drivers.lvm.LVMVolumeDriver) of a Cinder volume driver.' % what)
    driver = driver.strip()
    if '.' in driver:
        return driver
    sources = _driver_sources()
    pattern = re.compile(_CLASS_RE % re.escape(driver), re.MULTILINE)
    candidates = [module for module, text in sources if pattern.search(text)]
    import_or_explain('cinder.objects', 'Finding a driver').register_all()
    interface = import_or_explain('cinder.interface', 'Finding a driver')
    import_or_explain('cinder.volume.manager', 'Finding a driver')
    found = []
    for module in candidates:
        try:
            cls = getattr(importlib.import_module(module), driver, None)
        except Exception:  # noqa: BLE001,S112 - a driver with missing requirements is not usable
            continue
        if cls is not None and cls in interface._volume_register:
            found.append('%s.%s' % (module, driver))
    if len(found) == 1:
        return found[0]
    prefix = '' if what == 'driver' else '%s: ' % what
    if found:
        raise BackendConfigError('%sSeveral Cinder drivers are named %s: %s; give the class path of the one meant.'
                                 % (prefix, driver, ', '.join(found)))
    if candidates:
        raise BackendConfigError('%s%s (in %s) is not a volume driver registered with Cinder here: a base class, or '
                                 'a driver whose Python requirements are missing (give its class path to see which).'
                                 % (prefix, driver, ', '.join(candidates)))
    known = sorted({name for _module, text in sources
                    for name in re.findall(_CLASS_RE % r'\w+Driver', text, re.MULTILINE)})
    raise UnknownDriver('%sCinder has no volume driver class named %r%s; give the class name (such as '
                        'LVMVolumeDriver) or the class path of one of the volume drivers Cinder has.'
                        % (prefix, driver, did_you_mean(driver, known)))


def driver_info(driver: str) -> dict:
    """One driver: its summary, the options a backend of it may set (its own
    and the common backend options, as the loader validates them) and their
    JSON Schema."""
    fqn = find_driver(driver)
    who = 'Driver %r' % driver
    options = loader.driver_options(fqn, who)
    cls = loader.import_driver(fqn, who)
    try:
        own = {opt.dest for opt in cls.get_driver_options()}
    except Exception:  # noqa: BLE001 - a driver that can't list its own options
        own = set()
    own |= {opt.dest for opt in loader.kept_options(cls)}
    schema = backend_schema(options, fqn, title='%s backend configuration' % cls.__name__)
    info = _summary(cls)
    info['options'] = [_option_summary(name, prop, name in own) for name, prop in schema['properties'].items()]
    info['schema'] = schema
    return info


def _option_summary(name: str, prop: dict, own: bool) -> dict:
    item = {
        'name': name,
        'type': prop['type'],
        'oslo_type': prop.get('x-oslo-type'),
        'default': prop.get('default'),
        'description': prop.get('description', ''),
        'secret': bool(prop.get('x-secret')),
        'driver_option': own,
        'deprecated': bool(prop.get('deprecated')),
    }
    for key, target in (('enum', 'choices'), ('minimum', 'minimum'), ('maximum', 'maximum')):
        if key in prop:
            item[target] = prop[key]
    return item
