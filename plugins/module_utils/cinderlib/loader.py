# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""The driver loader: everything a Cinder volume driver expects from the
cinder-volume service, given to it without the service.

Global part (once per process, on the first backend): oslo.config parsed
with no arguments and no files, state and lock paths, the host name, Cinder
global options, quiet logging, privileges (privsep in-process as root, a
root helper otherwise), Cinder's lock coordinator.

Per backend: an oslo.config group named after the backend holding the
driver's validated options (as a ``[backend]`` section of cinder.conf
would), the driver class imported and instantiated, and Cinder's driver
start-up sequence.

Cinder, os-brick and oslo are imported here and only when a backend is really
initialised, so that read-only users of the library never pay for them.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import re
import shlex
import socket
import sys
from types import SimpleNamespace
from typing import Any

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import secrets
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import (
    BackendConfigError,
    BackendInitError,
    MissingDependencyError,
    SetupError,
    UnknownDriver,
    describe_cause,
)
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.schema import (
    backend_schema,
    did_you_mean,
    unknown_option,
    validate_config,
)

# Options renamed in Cinder since cinderlib's documentation was written; the
# seed's LVM example still uses the old names.
RENAMED_OPTIONS = {
    'iscsi_helper': 'target_helper',
    'iscsi_protocol': 'target_protocol',
    'iscsi_ip_address': 'target_ip_address',
    'iscsi_port': 'target_port',
    'iscsi_target_prefix': 'target_prefix',
}

# Options Cinder no longer registers but its drivers still read (with
# getattr on their configuration), which cinderlib kept registering itself:
# by the class path of the driver that reads them (subclasses inherit them),
# as (oslo Opt class, its arguments). The one table that validation, the
# backend's config group and the driver listings use.
CINDERLIB_KEPT_OPTIONS: dict[str, tuple[tuple[str, dict], ...]] = {
    # OSSN-0085 removed it from Cinder, whose RBDDriver still reads the file
    # and puts its content in the connection info "for cinderlib usage".
    # Arguments as cinderlib 5.2.0 declared it; it is secret by its name
    # (secrets.is_secret_name), like every credential.
    'cinder.volume.drivers.rbd.RBDDriver': (
        ('StrOpt', {'name': 'rbd_keyring_conf', 'default': '', 'help': 'Path to the ceph keyring file'}),
    ),
}

# Loggers that Cinder, its drivers and libraries log through.
_QUIET_LOGGERS = ('cinder', 'os_brick', 'oslo', 'oslo_concurrency', 'oslo_privsep', 'oslo_db',
                  'oslo_config', 'tooz', 'urllib3', 'requests', 'stevedore', 'py.warnings', 'krest')

# Top-level packages Cinder drivers commonly need, by import name -> PyPI name.
_PYPI_NAMES = {'krest': 'krest', 'purestorage': 'purestorage', 'rbd': 'python3-rbd (Debian) / ceph',
               'rados': 'python3-rados (Debian) / ceph', 'storops': 'storops', 'rtslib_fb': 'rtslib-fb'}


class Settings(SimpleNamespace):
    """The library's global options (see ``setup()``)."""


DEFAULT_SETTINGS = dict(
    file_locks_path=None,
    root_helper=None,
    suppress_requests_ssl_warnings=True,
    disable_logs=True,
    non_uuid_ids=False,
    output_all_backend_info=False,
    project_id='cinderlib',
    user_id='cinderlib',
    persistence_config=None,
    fail_on_missing_backend=True,
    host=None,
    unknown_options='error',
    coordination_url=None,
    driver_timeout=None,
    # Not cinderlib's: make and change nothing on this host (the modules' check
    # mode). The state store is read into memory (persistence.open_store), no
    # state or lock directory is made, locks that nothing holds are not made
    # (locks.try_locked), and no cache file is written (keep_caches_unwritten).
    write_nothing=False,
)

# Python modules (and their PyPI names) that tooz needs for a coordination URL scheme.
_TOOZ_MODULES = {'redis': ('redis', 'redis'), 'rediss': ('redis', 'redis'), 'zookeeper': ('kazoo', 'kazoo'),
                 'kazoo': ('kazoo', 'kazoo'), 'memcached': ('pymemcache', 'pymemcache'),
                 'etcd3+http': ('etcd3gw', 'etcd3gw'), 'etcd3+https': ('etcd3gw', 'etcd3gw'),
                 'mysql': ('pymysql', 'PyMySQL'), 'postgresql': ('psycopg2', 'psycopg2')}


def make_settings(options: dict) -> Settings:
    """Global settings from ``setup()`` keyword arguments.

    Known keys are the library's; any other key is a Cinder global option,
    validated when Cinder is configured.
    """
    known = {k: options.get(k, v) for k, v in DEFAULT_SETTINGS.items()}
    if known['unknown_options'] not in ('error', 'warn'):
        raise SetupError("unknown_options must be 'error' or 'warn', not %r." % (known['unknown_options'],))
    timeout = known['driver_timeout']
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0):
        raise SetupError('driver_timeout must be a number of seconds (0 or unset: no limit), not %r.' % (timeout,))
    known['driver_timeout'] = timeout or None
    settings = Settings(**known)
    settings.cinder_options = {k: v for k, v in options.items() if k not in DEFAULT_SETTINGS}
    settings.im_root = os.getuid() == 0
    if settings.root_helper is None:
        settings.root_helper = '' if settings.im_root else 'sudo'
    if not settings.host:
        settings.host = socket.gethostname()
    return settings


def keep_caches_unwritten() -> None:
    """Keep stevedore (the plugin loader of tooz, Cinder and os-brick) from
    writing its cache of the installed entry points (``~/.cache/python-entrypoints``,
    a new file for each ``sys.path``) in this process. stevedore has no setting
    for it but a ``.disable`` file in that directory, itself a file to make: its
    cache object is told directly, before anything loads a plugin."""
    if importlib.util.find_spec('stevedore') is None:
        return
    cache = getattr(importlib.import_module('stevedore._cache'), '_c', None)
    if cache is not None and hasattr(cache, '_disable_caching'):
        cache._disable_caching = True


def default_state_dir(settings: Settings) -> str:
    if settings.im_root:
        return '/var/lib/cinderlib'
    state_home = os.environ.get('XDG_STATE_HOME') or os.path.expanduser('~/.local/state')
    return os.path.join(state_home, 'cinderlib')


def state_dir(settings: Settings) -> str:
    """Where the library keeps its files (Cinder's ``state_path``): the
    ``file_locks_path`` setting, else the default state directory."""
    return settings.file_locks_path or default_state_dir(settings)


def import_or_explain(module: str, what: str):
    """Import a module, turning a missing package into a clear error."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = getattr(exc, 'name', None) or module
        top = missing.split('.')[0]
        package = _PYPI_NAMES.get(top, top)
        raise MissingDependencyError(
            '%s needs the Python package %r, which is not installed for %s (%s). Install it in '
            "that interpreter's environment (the cinderlib.storage.runtime role does) or run the "
            'module with an interpreter that has it.' % (what, package, sys.executable, _first_line(exc)),
            package, exc) from exc


def brick_privsep_contexts() -> list:
    """os-brick's privsep contexts (its privileged calls run through them)."""
    brick_privileged = import_or_explain('os_brick.privileged', 'os-brick privileges')
    contexts = [brick_privileged.default]
    hidden = getattr(brick_privileged, 'brick_privsep_hide_output', None)
    if hidden is not None:
        contexts.append(hidden)
    return contexts


def configure_privsep(cfg: Any, settings: Settings, contexts: list) -> None:
    """Privileges for privsep ``contexts``: in this process as root, else a
    privsep daemon started through ``root_helper``. Cinder-free (os-brick
    alone uses it on hosts that only attach volumes)."""
    if settings.im_root:
        # Already root: privileged functions run in this process, and
        # processutils skips the root helper for uid 0.
        for ctx in contexts:
            ctx.set_client_mode(False)
        return
    helper = shlex.split(settings.root_helper)
    if not helper:
        raise SetupError('Running as an unprivileged user needs a root_helper (such as sudo).')
    # privsep starts its daemon through the helper; use the privsep-helper
    # of this interpreter's environment, not whatever sudo's PATH finds.
    privsep_helper = os.path.join(os.path.dirname(sys.executable), 'privsep-helper')
    for ctx in contexts:
        ctx.set_client_mode(True)
        cfg.CONF.set_override('helper_command', ' '.join(helper + [privsep_helper]), group=ctx.cfg_section)


def quiet_logging() -> None:
    """Keep drivers' and libraries' log records from reaching stderr: an
    Ansible module must not print."""
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.CRITICAL + 1)
        logger.propagate = False


def driver_path(search_path: str) -> str:
    """The PATH drivers run tools with. Cinder's own tools (cinder-rtstool,
    privsep-helper) sit beside the interpreter in a virtual environment, which
    Ansible runs without activating it; storage tools (lvm, iscsiadm) are in
    sbin, which users' PATHs often lack."""
    path = [p for p in search_path.split(os.pathsep) if p]
    first = [os.path.dirname(sys.executable)]
    last = [d for d in ('/usr/local/sbin', '/usr/sbin', '/sbin') if d not in path]
    return os.pathsep.join(first + [p for p in path if p not in first] + last)


def complete_path() -> None:
    os.environ['PATH'] = driver_path(os.environ.get('PATH', ''))


class CinderRuntime:
    """Cinder configured for this process. Made once, on the first backend."""

    _instance: CinderRuntime | None = None

    @classmethod
    def get(cls, settings: Settings) -> CinderRuntime:
        if cls._instance is None:
            cls._instance = cls(settings)
        return cls._instance

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        what = 'The cinderlib.storage library'
        self.cfg = import_or_explain('oslo_config.cfg', what)
        self.importutils = import_or_explain('oslo_utils.importutils', what)
        self.cinder_objects = import_or_explain('cinder.objects', what)
        # Registering the versioned objects must precede any driver import.
        self.cinder_objects.register_all()
        self.context_mod = import_or_explain('cinder.context', what)
        self.configuration = import_or_explain('cinder.volume.configuration', what)
        # The manager and the base driver register the common backend options.
        import_or_explain('cinder.volume.manager', what)
        self.cinder_exception = import_or_explain('cinder.exception', what)
        self.utils = import_or_explain('cinder.utils', what)
        # Config groups this process made for backends, so a backend whose
        # first initialisation failed can be configured again.
        self._backend_groups: set[str] = set()
        # Backends add their secret values; attached to the log handlers when logs are on.
        self.log_scrubber = secrets.LogScrubber()
        self._configure()
        self.context = self.context_mod.RequestContext(
            user_id=settings.user_id, project_id=settings.project_id, is_admin=True, overwrite=False)

    # -- global configuration ---------------------------------------------------
    def _configure(self) -> None:
        cfg, settings = self.cfg, self.settings
        conf = cfg.CONF
        # Parse no command line and no config files: the caller's argv is not
        # ours, and everything comes from the library's options.
        conf([], project='cinder', default_config_files=[], validate_default_values=True)
        state_path = state_dir(settings)
        locks_path = settings.file_locks_path or os.path.join(state_path, 'locks')
        if not settings.write_nothing:
            os.makedirs(state_path, mode=0o700, exist_ok=True)
            os.makedirs(locks_path, mode=0o700, exist_ok=True)
        self.locks_path = locks_path
        conf.set_override('state_path', state_path)
        conf.set_override('lock_path', locks_path, 'oslo_concurrency')
        # Cinder's locks: file locks in the locks directory (one host), or a
        # tooz backend shared by several hosts (coordination_url).
        conf.set_override('backend_url', settings.coordination_url or 'file://' + locks_path, 'coordination')
        conf.set_override('host', settings.host)
        problems = []
        for key, value in settings.cinder_options.items():
            try:
                conf.set_override(key, value)
            except cfg.NoSuchOptError:
                problems.append(_unknown_option(key, list(conf.keys())))
            except (ValueError, TypeError) as exc:
                problems.append('%s: %s' % (key, _first_line(exc)))
        if problems:
            raise BackendConfigError('Invalid Cinder global option(s): ' + '; '.join(problems), problems)
        self._configure_logging()
        complete_path()
        self._configure_privileges()
        # os-brick's lock directory defaults to oslo's, once that is set.
        import_or_explain('os_brick', 'os-brick').setup(conf)
        self._start_coordination()
        if settings.suppress_requests_ssl_warnings:
            urllib3 = import_or_explain('urllib3', 'The cinderlib.storage library')
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def _start_coordination(self) -> None:
        self.coordination = import_or_explain('cinder.coordination', 'Cinder locks')
        url = self.settings.coordination_url
        if not url:
            if self.settings.write_nothing and not all(
                    os.path.isdir(os.path.join(self.locks_path, sub)) for sub in ('', 'groups', 'tmp')):
                # tooz's file driver makes these directories when it starts. With
                # none of them, no process holds a lock: this one takes its locks
                # in-process (lock()) and makes nothing.
                return
            self.coordination.COORDINATOR.start()
            return
        shown = secrets.mask_url(url)
        scheme = url.partition('://')[0].lower()
        module, package = _TOOZ_MODULES.get(scheme, (None, None))
        if module and importlib.util.find_spec(module) is None:
            raise MissingDependencyError(
                'coordination_url %s needs the Python package %r, which is not installed for %s; install it '
                "in that interpreter's environment." % (shown, package, sys.executable), package)
        try:
            self.coordination.COORDINATOR.start()
        except Exception as exc:  # noqa: BLE001 - tooz and its drivers raise anything
            raise SetupError(
                "Can't start Cinder's lock coordination at coordination_url %s: %s. Check that the URL is a tooz "
                'URL (such as redis://HOST:6379) and that the server is reachable from this host.'
                % (shown, _first_line(exc)), exc) from exc

    def lock(self, name: str):
        """Cinder's inter-process lock ``name`` (a tooz lock: ``acquire``,
        ``release``, a context manager): a file lock in the locks directory, or
        a lock of the ``coordination_url`` backend, shared by every host using it."""
        return self.coordination.COORDINATOR.get_lock(name)

    @property
    def has_locks(self) -> bool:
        """Whether Cinder's locks are started (not, with ``write_nothing`` and
        no locks directory yet: nothing to lock against, locks.py then takes
        locks of this process)."""
        return bool(self.coordination.COORDINATOR.started)

    def lock_file(self, name: str) -> str | None:
        """The file of file lock ``name`` (tooz's file driver: the lock's
        name, with Cinder's prefix, in the locks directory); None for the locks
        of a ``coordination_url``."""
        if self.settings.coordination_url:
            return None
        return os.path.abspath(os.path.join(self.locks_path, self.coordination.COORDINATOR.prefix + name))

    def _configure_logging(self) -> None:
        if self.settings.disable_logs:
            quiet_logging()
            return
        oslo_log = import_or_explain('oslo_log.log', 'Cinder logging')
        oslo_log.setup(self.cfg.CONF, 'cinder')
        logging.captureWarnings(True)
        for handler in logging.getLogger().handlers:
            handler.addFilter(self.log_scrubber)

    def _configure_privileges(self) -> None:
        privsep = import_or_explain('cinder.privsep', 'Cinder privileges')
        configure_privsep(self.cfg, self.settings, [privsep.sys_admin_pctxt, *brick_privsep_contexts()])
        if not self.settings.im_root:
            # Cinder builds commands with utils.get_root_helper(), which hard-codes
            # 'sudo cinder-rootwrap'; there is no option for it, so replace it.
            root_helper = self.settings.root_helper
            self.utils.get_root_helper = lambda: root_helper

    # -- per backend --------------------------------------------------------------
    def backend_configuration(self, name: str, driver_cfg: dict, unknown_options: str = 'error') -> Any:
        """A Cinder ``Configuration`` for the backend, options validated."""
        cfg = self.cfg
        conf = cfg.CONF
        driver_path = driver_cfg.get('volume_driver')
        options = driver_options(driver_path, 'Backend %r' % name)
        shared_group = self.configuration.SHARED_CONF_GROUP
        # The JSON Schema of the driver's options first: every problem at
        # once, before the driver is touched; oslo has the last word below.
        problems = validate_config(dict({'volume_backend_name': name}, **driver_cfg), options,
                                   backend_schema(options, driver_path))
        if problems and (unknown_options == 'error' or not all(p.unknown for p in problems)):
            raise BackendConfigError('Invalid configuration for backend %r: %s'
                                     % (name, '; '.join(p.message for p in problems)),
                                     [p.message for p in problems])
        if name in self._backend_groups:
            for opt in _group_options(conf, name):
                conf.clear_override(opt.dest, group=name)
        elif name in conf or name == shared_group or name.upper() == 'DEFAULT':
            raise BackendConfigError(
                'Backend name %r clashes with a Cinder configuration section; choose another '
                'volume_backend_name.' % name)
        self._backend_groups.add(name)
        # Registers every option in a group named after the backend, with no
        # default of its own, so unset options fall back to backend_defaults.
        configuration = self.configuration.Configuration([o for o in options if not is_kept_option(o)],
                                                         config_group=name)
        # Options Cinder dropped go in the backend's group only, with their
        # default: the shared group (every driver's) must not gain them.
        for opt in options:
            if is_kept_option(opt):
                conf.register_opt(opt, group=name)
        configuration_opts = {opt.dest: opt for opt in options}
        problems = []
        for key, value in driver_cfg.items():
            try:
                conf.set_override(key, value, group=name)
            except cfg.NoSuchOptError:
                problems.append(_unknown_option(key, [o.dest for o in options]))
            except (ValueError, TypeError, AttributeError) as exc:
                # oslo's message may quote the value.
                if key in secrets.secret_keys({key: value}, configuration_opts):
                    problems.append('%s=%r: not valid' % (key, secrets.MASK))
                else:
                    problems.append('%s=%r: %s' % (key, value, _first_line(exc)))
        unknown = [p for p in problems if p.startswith('unknown option')]
        if problems and (unknown_options == 'error' or len(unknown) != len(problems)):
            raise BackendConfigError(
                'Invalid configuration for backend %r: %s' % (name, '; '.join(problems)), problems)
        configuration.unknown_option_warnings = unknown
        return configuration

    @staticmethod
    def give_db(driver: Any, db: Any) -> None:
        """Make ``driver`` use ``db`` (the state store's DB API, dbapi.DriverDB).

        Cinder's BaseVD ignores its db argument and takes Cinder's own DB API
        module, whose database does not exist here: the driver and its
        private-data helper get the state store's. Target helpers (LVM's
        iSCSI/NVMe targets) read Cinder's global DB module, not the driver's
        db: they get it too."""
        driver.db = db
        utils_class = getattr(getattr(driver, 'driver_utils', None), '__class__', None)
        if utils_class is not None and hasattr(driver, '_driver_data_namespace'):
            driver.driver_utils = utils_class(driver._driver_data_namespace(), db)
        target = getattr(driver, 'target_driver', None)
        if target is not None and hasattr(target, 'db'):
            target.db = db

    def create_driver(self, name: str, configuration: Any, db: Any) -> Any:
        try:
            driver = self.importutils.import_object(
                configuration.volume_driver, configuration=configuration, db=db,
                host='%s@%s' % (self.cfg.CONF.host, name), cluster_name=None, active_backend_id=None)
            self.give_db(driver, db)
            return driver
        except ImportError as exc:
            raise _import_error_for(name, configuration.volume_driver, exc) from exc
        except Exception as exc:
            raise BackendInitError(
                'Backend %r: the driver %s could not be created: %s'
                % (name, configuration.volume_driver, describe_cause(exc)), exc) from exc

    def start_driver(self, name: str, driver: Any) -> None:
        """Cinder's driver start-up sequence, as cinder-volume runs it."""
        try:
            driver.do_setup(self.context)
            driver.check_for_setup_error()
            driver.init_capabilities()
            driver.set_throttle()
            driver.set_initialized()
        except ImportError as exc:
            raise _import_error_for(name, type(driver).__module__, exc) from exc
        except Exception as exc:
            # Some drivers try_import their client library and only say so
            # at set-up ("Unable to import 'krest' python module").
            missing = _MISSING_MODULE_RE.search(str(exc))
            if missing:
                raise _import_error_for(name, type(driver).__module__, ImportError(name=missing.group(1))) from exc
            raise BackendInitError(
                'Backend %r could not be initialised by its driver %s: %s'
                % (name, type(driver).__name__, describe_cause(exc)), exc) from exc


def import_driver(driver_path: Any, who: str) -> type:
    """The driver class at ``driver_path``, imported (which registers its
    options) but not instantiated. ``who`` starts messages ("Backend 'lvm'")."""
    if not driver_path or not isinstance(driver_path, str) or '.' not in driver_path:
        raise BackendConfigError(
            "%s needs 'volume_driver': the Python path of a Cinder driver class, such as "
            "'cinder.volume.drivers.lvm.LVMVolumeDriver', or its class name alone ('LVMVolumeDriver')." % who)
    module_path, class_name = driver_path.rsplit('.', 1)
    try:
        module = import_or_explain(module_path, 'The driver %s of %s' % (driver_path, who[:1].lower() + who[1:]))
    except MissingDependencyError as exc:
        missing = getattr(exc.cause, 'name', None) or ''
        if missing and module_path.startswith(missing):
            raise UnknownDriver(
                "%s: volume_driver %r names no existing module (no module %r); give the class path of one of "
                "the volume drivers Cinder has, such as 'cinder.volume.drivers.lvm.LVMVolumeDriver', or its class "
                "name alone ('LVMVolumeDriver')." % (who, driver_path, missing), cause=exc) from exc
        raise
    driver_class = getattr(module, class_name, None)
    if driver_class is None:
        known = [n for n in dir(module) if n.endswith('Driver')]
        raise UnknownDriver(
            '%s: module %s has no class %r%s.' % (who, module_path, class_name, _did_you_mean(class_name, known)))
    # Options the driver declares, when it declares them (drivers add
    # theirs to the shared group at import time too).
    get_options = getattr(driver_class, 'get_driver_options', None)
    if callable(get_options):
        try:
            get_options()
        except Exception:  # noqa: BLE001 - only a hint; the shared group is authoritative
            pass
    return driver_class


def driver_options(driver_path: Any, who: str) -> list:
    """The oslo options a backend of this driver may set: the shared
    ``backend_defaults`` group once the driver is imported (its own options
    and the common backend options). Configures nothing."""
    what = 'The cinderlib.storage library'
    cfg = import_or_explain('oslo_config.cfg', what)
    # Registering the versioned objects must precede any driver import; the
    # manager and the base driver register the common backend options.
    import_or_explain('cinder.objects', what).register_all()
    configuration = import_or_explain('cinder.volume.configuration', what)
    import_or_explain('cinder.volume.manager', what)
    driver_class = import_driver(driver_path, who)
    options = _group_options(cfg.CONF, configuration.SHARED_CONF_GROUP)
    known = {opt.dest for opt in options}
    # Should Cinder register one again, its own definition wins.
    return options + [opt for opt in kept_options(driver_class) if opt.dest not in known]


_KEPT_OPTS: dict[str, Any] = {}


def kept_options(driver_class: type) -> list:
    """The oslo options of ``CINDERLIB_KEPT_OPTIONS`` for this driver class
    (or a class it derives from). Always the same objects, so that oslo sees
    one option when they are registered again."""
    paths = {'%s.%s' % (cls.__module__, cls.__name__) for cls in getattr(driver_class, '__mro__', ())}
    found = []
    for path, declared in CINDERLIB_KEPT_OPTIONS.items():
        if path not in paths:
            continue
        for opt_class, kwargs in declared:
            if kwargs['name'] not in _KEPT_OPTS:
                cfg = import_or_explain('oslo_config.cfg', 'The cinderlib.storage library')
                _KEPT_OPTS[kwargs['name']] = getattr(cfg, opt_class)(**kwargs)
            found.append(_KEPT_OPTS[kwargs['name']])
    return found


def is_kept_option(opt: Any) -> bool:
    """Whether ``opt`` is one of ``CINDERLIB_KEPT_OPTIONS`` (not Cinder's)."""
    return _KEPT_OPTS.get(getattr(opt, 'dest', None)) is opt


def _group_options(conf: Any, group: str) -> list:
    # oslo.config has no public listing of a group's Opt objects; Cinder's
    # own BaseVD._get_oslo_driver_opts reads the same attribute.
    return [info['opt'] for info in conf._get(group)._group._opts.values()]


_MISSING_MODULE_RE = re.compile(r"(?:Unable to import|No module named|could not import)\s+'?([A-Za-z_][\w.]*)'?",
                                re.IGNORECASE)


def _import_error_for(name: str, where: str, exc: ImportError) -> MissingDependencyError:
    missing = (getattr(exc, 'name', None) or 'unknown').split('.')[0]
    package = _PYPI_NAMES.get(missing, missing)
    return MissingDependencyError(
        'Backend %r: the driver %s needs the Python package %r, which is not installed for %s.'
        % (name, where, package, sys.executable), package, exc)


_unknown_option = unknown_option
_did_you_mean = did_you_mean


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
