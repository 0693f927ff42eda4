# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""The volume drivers Cinder ships, with their options
(cinderlib's ``list_supported_drivers``)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.loader import import_or_explain


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
    interface = import_or_explain('cinder.interface', 'Listing drivers')
    import_or_explain('cinder.volume.manager', 'Listing drivers')
    load_all_driver_modules()
    result = {}
    for cls in interface._volume_register:
        try:
            options = cls.get_driver_options()
        except Exception:  # noqa: BLE001 - a broken driver lists with no options
            options = []
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
