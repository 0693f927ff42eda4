# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""The one place that knows Ansible: the shared options of the action group,
backend resolution, dependency checks, secrets registered as ``no_log``, and
library errors turned into ``fail_json``."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.cinderlib.storage.plugins.module_utils import hints, worker
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import loader, quickcheck, secrets
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend_config import resolve_backend
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import CinderlibError


def cinderlib_argument_spec(needs_backend: bool = True) -> dict:
    """Options every module of the collection takes (doc fragment: cinderlib).

    A module that works on no backend still takes them, not required, so that
    ``module_defaults`` for the action group apply to it too.
    """
    return dict(
        backend=dict(type='raw', required=needs_backend),
        config_file=dict(type='path'),
        persistence=dict(
            type='dict',
            options=dict(
                storage=dict(type='str', default='db', choices=['db', 'memory_db', 'memory']),
                # Shown in messages (which store failed); the password of the URL
                # is registered as no_log (url_secrets).
                connection=dict(type='str', no_log=False),
                # No default here: the library's (persistence.DEFAULT_RETRY_WINDOW) applies.
                retry_window=dict(type='float'),
            ),
        ),
        unknown_options=dict(type='str', default='error', choices=['error', 'warn']),
        output_all_backend_info=dict(type='bool', default=False),
        non_uuid_ids=dict(type='bool', default=False),
        # Shown in messages; a password in it is registered as no_log (CinderlibModule).
        coordination_url=dict(type='str', no_log=False),
        driver_timeout=dict(type='float'),
        driver_log_path=dict(type='path'),
        driver_log_level=dict(type='str', default='info', choices=['info', 'debug']),
        # The warm worker (module_utils/worker.py); None: the environment variable, else the default.
        worker=dict(type='bool'),
        worker_idle_timeout=dict(type='int'),
        worker_timeout=dict(type='int'),
    )


def url_secrets(params: dict) -> list[str]:
    """The passwords in the URLs a task gives (the state store's, the lock
    server's): only they are hidden, so that messages can name the URL."""
    persistence = params.get('persistence') or {}
    return (secrets.url_values(persistence.get('connection') if isinstance(persistence, dict) else None)
            + secrets.url_values(params.get('coordination_url')))


def _parse_backend(value: Any) -> Any:
    # Ad-hoc use passes -a 'backend={"volume_backend_name": ...}' as a string.
    if isinstance(value, str) and value.lstrip().startswith('{'):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class _AnsibleModule(AnsibleModule):
    def _log_invocation(self) -> None:
        if worker.IN_WORKER:
            return  # the task's own process logged it before handing it over
        # The invocation goes to the node's journal before CinderlibModule
        # can register the backend's secrets: register them first.
        backend = _parse_backend(self.params.get('backend'))
        if isinstance(backend, dict):
            self.no_log_values.update(secrets.values(backend))
        self.no_log_values.update(url_secrets(self.params))
        super()._log_invocation()


class CinderlibModule:
    """An AnsibleModule with the collection's shared options and behaviour.

    ``needs_backend=False``: a module that works on no backend (it still
    accepts the shared options, see ``cinderlib_argument_spec``).
    """

    def __init__(self, argument_spec: dict | None = None, needs_cinder: bool = True, needs_backend: bool = True,
                 **kwargs: Any) -> None:
        spec = cinderlib_argument_spec(needs_backend)
        spec.update(argument_spec or {})
        kwargs.setdefault('supports_check_mode', True)
        self.module = _AnsibleModule(argument_spec=spec, **kwargs)
        self.params = self.module.params
        self.params['backend'] = _parse_backend(self.params['backend'])
        if isinstance(self.params['backend'], dict):
            self.hide(secrets.values(self.params['backend']))
        self.hide(url_secrets(self.params))
        if needs_cinder:
            self.require_cinder('to drive Cinder volume drivers')
        if self.check_mode:
            # Before anything loads a plugin (drivers_info sets no library up).
            loader.keep_caches_unwritten()
        self._library = None
        self._backend = None
        self._quick: tuple | bool | None = None
        self._quick_warnings: list[str] = []
        self._warned: set[str] = set()
        self._handed_over = False

    @property
    def check_mode(self) -> bool:
        return self.module.check_mode

    @property
    def diff(self) -> bool:
        """Whether the task runs with ``--diff``."""
        return self.module._diff

    def fail(self, msg: str, **result: Any) -> None:
        self.module.fail_json(msg=msg, **result)

    def hide(self, values: Any) -> None:
        """Keep these values out of the output (``no_log``)."""
        self.module.no_log_values.update(values)

    def require_cinder(self, purpose: str) -> None:
        """Fail the task, saying how to get them, when this interpreter has no
        Cinder (``purpose``: what the task needs it for)."""
        if importlib.util.find_spec('cinder') is None:
            self.fail(missing_required_lib('cinder and os-brick', reason='%s with %s' % (purpose, sys.executable))
                      + ' The cinderlib.storage.runtime role installs them in a virtual environment and sets the '
                      'fact cinderlib_python: use it as ansible_python_interpreter for this task.')

    def warn(self, message: str) -> None:
        """A warning for the user, once per task (the fast and the full path
        of a batch both know the backend's warnings)."""
        if message not in self._warned:
            self._warned.add(message)
            self.module.warn(message)

    # -- the library ------------------------------------------------------------------
    @property
    def library(self):
        if self._library is None:
            self._hand_over()
            from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
            options = self._setup_options()
            if worker.WARM_SETUP is None or worker.WARM_SETUP != worker.json_copy(options):
                cinderlib.setup(**options)
            else:
                # A worker's process, set up with these options before it forked this one: the
                # store is opened and checked as a task's own process does.
                from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import context
                context.reopen_store()
            self._library = cinderlib
        return self._library

    def _setup_options(self) -> dict:
        """The library's global settings for this task (``cinderlib.setup``)."""
        return dict(
            persistence_config=self.params['persistence'],
            unknown_options=self.params['unknown_options'],
            output_all_backend_info=self.params['output_all_backend_info'],
            non_uuid_ids=self.params['non_uuid_ids'],
            coordination_url=self.params['coordination_url'],
            driver_timeout=self.params['driver_timeout'],
            # Check mode makes and changes nothing on the node (the driver log of
            # driver_log_path aside: the task asks for it).
            write_nothing=self.check_mode,
            **self._driver_log_options(),
        )

    def _driver_log_options(self) -> dict:
        """cinderlib's way to see the driver's log (``disable_logs=False``
        with Cinder's ``log_file`` and ``debug``), to a file only: a module
        must not print. The file is made private first, as the log may name
        hosts and volumes (secret values are masked in it)."""
        path = self.params['driver_log_path']
        if not path:
            return {}
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        except OSError as exc:
            self.fail("driver_log_path %s can't be written: %s" % (path, exc.strerror))
        return {'disable_logs': False, 'log_file': path, 'debug': self.params['driver_log_level'] == 'debug'}

    def backend_options(self) -> dict:
        """The backend as the task gives it (O(backend), a name in O(config_file)),
        its secret values registered as no_log."""
        config = resolve_backend(self.params['backend'], self.params['config_file'])
        self.hide(secrets.values(config))
        return config

    @property
    def backend(self):
        """The initialised Backend (driver set up, stats read)."""
        if self._backend is None:
            self._hand_over()
            config = self.backend_options()
            fingerprint = quickcheck.config_fingerprint(config, self.params['unknown_options'])
            from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import backend_secrets
            library = self.library
            # What oslo marks secret for this driver, before any driver call.
            self.hide(backend_secrets(config))
            name, config, avoided = self._backend_start_options(config)
            self._backend = library.Backend(name, **config)
            for warning in self._backend.warnings + avoided:
                self.warn('Backend %r: %s' % (name, warning))
            if quickcheck.has_probe(config) and not avoided and not self.check_mode:
                # The driver accepted this configuration: later runs may take the fast path.
                # (A file in the state directory: check mode writes none.)
                quickcheck.remember_validated(self._state_dir(), fingerprint)
        return self._backend

    def _backend_start_options(self, config: dict) -> tuple[str, dict, list[str]]:
        """(name, driver options, warnings) the backend starts with: in check
        mode, without what its setup would change (quickcheck.check_mode_setup)."""
        config = dict(config)
        name = config.pop('volume_backend_name')
        avoided: list[str] = []
        if self.check_mode:
            settings = loader.make_settings({})
            config, avoided = quickcheck.check_mode_setup(config, settings.root_helper, settings.im_root)
        return name, config, avoided

    # -- the warm worker --------------------------------------------------------------
    def _warm_spec(self) -> dict:
        """What a worker keeps initialised for this task: the library's
        settings and, when the task names a usable backend, that backend."""
        spec: dict = {'setup': worker.json_copy(self._setup_options()), 'backend': None}
        try:
            config = self.backend_options() if self.params.get('backend') is not None else None
            if isinstance(config, dict) and config.get('volume_backend_name'):
                name, config, _avoided = self._backend_start_options(config)
                if worker.json_copy(config) == config:
                    spec['backend'] = {'name': name, 'config': config}
        except CinderlibError:
            pass  # the task reports it where it needs the backend
        return spec

    def _hand_over(self) -> None:
        """Run this task in the warm worker when it is on (O(worker)) and
        this process runs a module: the worker's result becomes this
        process's output, and the process exits. Returns when the task runs
        here: inside the worker, with the worker off, or when no worker could
        take it (with a warning saying why)."""
        if self._handed_over or worker.IN_WORKER:
            return
        self._handed_over = True
        if self.check_mode:
            # Check mode makes nothing on the node, and a worker is a directory of
            # code, a socket and a daemon (and an idle one's zygote opens the store
            # for writing): the task runs in its own process.
            return
        choice = worker.settings(self.params, os.environ)
        if not choice['enabled'] or importlib.util.find_spec('cinder') is None:
            return
        module = worker.module_source()
        if module is None:
            return
        from ansible.module_utils import basic
        if basic._ANSIBLE_ARGS is None:
            return
        try:
            sock, _directory = worker.connect(self._state_dir(), os.environ)
        except worker.Unavailable as exc:
            self.warn('This task ran without the cinderlib worker (%s); set worker: false to run tasks in their '
                      'own process.' % exc)
            return
        message = worker.request(basic._ANSIBLE_ARGS, getattr(basic, '_ANSIBLE_PROFILE', None), module,
                                 self._warm_spec(), choice)
        with sock:
            try:
                answer = worker.hand_over(sock, message, choice['timeout'])
            except worker.Unavailable as exc:
                self.warn('This task ran without the cinderlib worker (%s); set worker: false to run tasks in their '
                          'own process.' % exc)
                return
            except RuntimeError as exc:
                self.fail('%s. %s' % (str(exc)[:1].upper() + str(exc)[1:], worker.AFTERMATH))
        if 'result' in answer:
            worker.relay(answer['result'])
        self.fail(worker.ended_message(answer))

    def _state_dir(self) -> str:
        # Where the library keeps its state files (the modules set no file_locks_path).
        return loader.default_state_dir(loader.make_settings({}))

    def _quick_setup(self) -> tuple[dict, Callable] | None:
        """The backend's configuration and its cheap probe, once per task; None
        when this backend has no fast path (see ``quick``)."""
        if self._quick is None:
            config = self.backend_options()
            settings = loader.make_settings({})
            probe = quickcheck.backend_probe(config, self.params['unknown_options'], self._state_dir(),
                                             settings.root_helper, settings.im_root)
            self._quick = (config, probe) if probe is not None else False
            if probe is not None and any(old in config for old in loader.RENAMED_OPTIONS):
                # The warnings the full path gives for old option names.
                from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.backend import (
                    rename_legacy_options,
                )
                self._quick_warnings = ['Backend %r: %s' % (config['volume_backend_name'], warning)
                                        for warning in rename_legacy_options(dict(config))['__warnings__']]
        return self._quick or None

    def quick(self, decide: Callable, params: dict | None = None) -> tuple | None:
        """The fast path: ``decide(store, backend_name, params, probe)`` (such as
        volume_state.quick_volume_state) over a read-only state store and a
        cheap look at the backend, with neither Cinder nor the driver started.
        Its result when it is sure nothing is to change; None otherwise (no
        cheap check for this driver, a configuration no full run validated on
        this host, a store that can't be read cheaply, or any doubt)."""
        if worker.IN_WORKER:
            # The task's own process asked the fast path before it handed the
            # task over; here, with the backend warm, the full path costs
            # about what the fast path's lvs and store read cost, and gives the
            # same answer.
            return None
        setup = self._quick_setup()
        if setup is None:
            return None
        config, probe = setup
        # A fresh read of the store each time: a batch changes it between items.
        store = quickcheck.open_reader(self.params['persistence'], write_nothing=self.check_mode)
        if store is None:
            return None
        try:
            outcome = decide(store, config['volume_backend_name'], self.params if params is None else params, probe)
        except quickcheck.Unavailable:
            return None
        finally:
            store.close()
        if outcome is not None:
            for warning in self._quick_warnings:
                self.warn(warning)
        return outcome

    # -- running ------------------------------------------------------------------------
    def ensure_state(self, present: Callable, absent: Callable, result_key: str,
                     quick: Callable | None = None, target: Callable | None = None,
                     extra: Callable[[dict], dict] | None = None) -> dict:
        """Run ``present`` or ``absent`` (the ensure_* functions of
        volume_state and connection_state) for the ``state`` option and shape
        the result: ``changed``, the resource under ``result_key`` when
        present, ``diff`` in diff mode; their messages become warnings.

        ``quick``: a fast-path decision tried first (see ``quick``).
        ``target()``: what the ensure function works on (default: the
        backend; a function, so that nothing starts when the fast path
        answers). ``extra(after)``: more result keys when present.
        """
        state = self.params['state']
        ensure = present if state == 'present' else absent
        outcome = self.quick(quick) if quick is not None else None
        if outcome is None:
            outcome = ensure(target() if target is not None else self.backend, self.params, self.check_mode)
        changed, before, after, messages = outcome
        for message in messages:
            self.warn(message)
        result = {'changed': changed}
        if state == 'present':
            result[result_key] = after
            if extra is not None:
                result.update(extra(after))
        if self.diff:
            result['diff'] = {'before': before or {}, 'after': after or {}}
        return result

    def ensure_each(self, items: list[dict], present: Callable, absent: Callable, result_key: str,
                    label: Callable[[int, dict], str], quick: Callable | None = None) -> dict:
        """``ensure_state`` for a list of resources in one task: ``items`` are
        full option sets (each with its ``state``), ``label(index, item)``
        names an item in messages. The driver starts once, for the first item
        the fast path can't answer. An item that fails is reported and the
        others still run (each change is complete or recorded as failed,
        as for a single task); the task then fails, listing the failed items.

        Result: ``changed`` if any item changed, ``<result_key>s``: one entry
        per item (name, id, state, changed, the resource when present, or
        failed and msg), ``diff`` as a list of per-item diffs.
        """
        check_mode = self.check_mode
        entries, diffs, failures = [], [], []
        for index, item in enumerate(items):
            name = label(index, item)
            entry = {'name': item.get('name'), 'id': item.get('id'), 'state': item['state'], 'changed': False}
            entries.append(entry)
            outcome = self.quick(quick, item) if quick is not None else None
            if outcome is None:
                # A backend that can't start fails the task as a whole, before any change.
                backend = self.backend
                ensure = present if item['state'] == 'present' else absent
                try:
                    outcome = ensure(backend, item, check_mode)
                except CinderlibError as exc:
                    entry.update(failed=True, msg=hints.with_hint(exc))
                    failures.append('%s: %s' % (name, entry['msg']))
                    continue
            changed, before, after, messages = outcome
            for message in messages:
                self.warn('%s: %s' % (name, message))
            entry['changed'] = changed
            if item['state'] == 'present':
                entry[result_key] = after
                entry['id'] = (after or {}).get('id', entry['id'])
            diffs.append({'before': before or {}, 'after': after or {}, 'before_header': name, 'after_header': name})
        result: dict = {'changed': any(e['changed'] for e in entries), result_key + 's': entries}
        if self.diff:
            result['diff'] = diffs
        if failures:
            self.fail('%d of %d %ss failed (the others are done, see %ss): %s' % (
                len(failures), len(items), result_key, result_key, ' '.join(failures)), **result)
        return result

    def run(self, func: Callable[[CinderlibModule], dict],
            check: Callable[[dict], None] | None = None) -> None:
        """Call ``func(self)`` and exit with its result; library errors fail
        the task with their message (the traceback goes in ``exception``).

        ``check(params)`` validates the module's own options first, before the
        state store or the backend is opened.
        """
        try:
            if check is not None:
                check(self.params)
            result = func(self)
        except CinderlibError as exc:
            cause = exc.cause or exc
            self.fail(
                hints.with_hint(exc),
                exception=''.join(traceback.format_exception(type(cause), cause, cause.__traceback__)))
        self.module.exit_json(**result)
