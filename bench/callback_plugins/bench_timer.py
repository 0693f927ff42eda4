# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""Benchmark helper (bench/run.sh only, not part of the collection's plugins).

Writes one JSON line per task result (per loop item for loops) to the file named
by $BENCH_TIMER_FILE: task name, item index, changed/failed and the time since
the previous result of the same task (the task start for the first one), so that
bench/bench.py can take medians per task execution and check changed counts.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r'''
name: bench_timer
type: aggregate
short_description: Per-task and per-item timings for bench/run.sh
description:
  - Appends one JSON line per result to the file named by E(BENCH_TIMER_FILE).
requirements:
  - enabled with ANSIBLE_CALLBACKS_ENABLED=bench_timer
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'bench_timer'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get('BENCH_TIMER_FILE')
        self._task = None
        self._last = 0.0
        self._index = 0

    def _emit(self, kind: str, result, failed: bool = False) -> None:
        now = time.perf_counter()
        record = {'task': self._task, 'kind': kind, 'index': self._index, 'seconds': now - self._last,
                  'changed': bool(result._result.get('changed')), 'failed': failed}
        self._last = now
        self._index += 1
        if self._path:
            with open(self._path, 'a', encoding='utf-8') as stream:
                stream.write(json.dumps(record) + '\n')

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self._task = task.get_name()
        self._last = time.perf_counter()
        self._index = 0

    def v2_runner_item_on_ok(self, result) -> None:
        self._emit('item', result)

    def v2_runner_item_on_failed(self, result) -> None:
        self._emit('item', result, failed=True)

    def v2_runner_on_ok(self, result) -> None:
        if 'results' not in result._result:
            self._emit('task', result)

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._emit('task', result, failed=True)
