# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""Cold start of a module process (bench/run.sh only).

Run as ``python bench/coldstart.py ARGS_JSON`` with $BENCH_T0 (time.time() of the
parent just before it started this process) and $BENCH_COLDSTART_FILE. Runs the
cinderlib_volume module file as __main__ with ARGS_JSON, as AnsiballZ would, and
records when the interpreter was up, the module's imports were done, its options
were parsed, the fast path answered (an unchanged volume: no Cinder) or else the
backend (cinder + driver) was ready and the first line of work
(ensure_volume_present/absent) ran, and the exit, in seconds since $BENCH_T0.
"""

from __future__ import annotations

import time

_started = time.time()

import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import runpy  # noqa: E402
import sys  # noqa: E402

T0 = float(os.environ['BENCH_T0'])
MARKS = {'interpreter_up': _started - T0}


def mark(name: str) -> None:
    MARKS.setdefault(name, time.time() - T0)


def main() -> None:
    from ansible_collections.cinderlib.storage.plugins.module_utils import ansible_module, volume_state
    mark('module_utils_imported')
    cls = ansible_module.CinderlibModule
    init, backend = cls.__init__, cls.backend

    def patched_init(self, *args, **kwargs):
        mark('module_imports_done')
        init(self, *args, **kwargs)
        mark('options_parsed')

    def patched_backend(self):
        value = backend.fget(self)
        mark('backend_ready')
        return value

    quick = cls.quick

    def patched_quick(self, *args, **kwargs):
        outcome = quick(self, *args, **kwargs)
        if outcome is not None:
            mark('fast_path_answered')
        return outcome

    cls.__init__ = patched_init
    cls.backend = property(patched_backend)
    cls.quick = patched_quick
    for name in ('ensure_volume_present', 'ensure_volume_absent'):
        original = getattr(volume_state, name)

        def first_work(*args, _original=original, **kwargs):
            mark('first_line_of_work')
            return _original(*args, **kwargs)
        setattr(volume_state, name, first_work)

    sys.argv = ['cinderlib_volume', sys.argv[1]]
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output):
            runpy.run_module('ansible_collections.cinderlib.storage.plugins.modules.cinderlib_volume',
                             run_name='__main__')
    except SystemExit:
        pass
    mark('exit')
    result = json.loads(output.getvalue())
    MARKS['changed'] = result.get('changed')
    MARKS['failed'] = result.get('failed', False)
    MARKS['cinder_imported'] = 'cinder' in sys.modules
    with open(os.environ['BENCH_COLDSTART_FILE'], 'a', encoding='utf-8') as stream:
        stream.write(json.dumps(MARKS) + '\n')


if __name__ == '__main__':
    main()
