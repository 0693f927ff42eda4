# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""Where the time of the full path goes: py-spy profiles behind bench/RESULTS.md
(bench/run.sh runs this with BENCH_PROFILE=1 when py-spy is installed; it is not a
dependency: ``pip install py-spy`` into the venv for a profiling run).

Profiles, sampling wall-clock time (idle included, so waits on LVM commands count):
- a cinderlib_volume create and a delete, each a fresh module process (full path,
  the worker off);
- the same handed to a warm worker: the task's own process (py-spy's --subprocesses
  misses most of the worker's children, which live well under a second: their share is
  the time the task waits in hand_over);
- the library creating and deleting 20 volumes in one process (benchmark 4).
Prints, per profile, the share of the main thread's samples spent in each phase
(frames named below) and the top frames by inclusive time.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
MODULE = 'ansible_collections.cinderlib.storage.plugins.modules.cinderlib_volume'

# Phases of a module run, by the frame that starts them (function + file).
PHASES = [
    ('Cinder import + global config (CinderRuntime.__init__)', 'CinderRuntime.__init__ ('),
    ('  of which cinder.objects.register_all', 'register_all ('),
    ('driver created (create_driver: LioAdm runs cinder-rtstool verify)', 'CinderRuntime.create_driver ('),
    ('  of which cinder-rtstool verify', 'LioAdm._verify_rtstool ('),
    ('driver started (do_setup, check_for_setup_error, init_capabilities)', 'CinderRuntime.start_driver ('),
    ('state store opened (SQLAlchemy)', 'SQLStore.__init__ ('),
    ('the work: ensure_volume_present/absent', 'ensure_volume_'),
    ('  of which the driver\'s volume calls', '_driver_call ('),
    ('  of which state store writes', 'SQLStore.put ('),
    ('fast path (CinderlibModule.quick)', 'CinderlibModule.quick ('),
    ('handed to the worker, waiting for its answer (worker.hand_over)', 'hand_over ('),
    ('all commands run (LVM, cinder-rtstool), waiting included', 'execute (oslo_concurrency/processutils.py'),
]

LIBRARY_CODE = r'''
import json, sys
from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
persistence, backend = json.loads(sys.argv[1])
cinderlib.setup(persistence_config=persistence)
cfg = dict(backend)
lvm = cinderlib.Backend(cfg.pop('volume_backend_name'), **cfg)
for i in range(20):
    lvm.create_volume(1, name='bench-prof-%d' % i).delete()
'''


def _frame(frame: str) -> str:
    """'func (path/file.py:123)' without the line number."""
    return frame.rsplit(':', 1)[0] + ')' if frame.endswith(')') and ':' in frame else frame


def main_thread_stacks(raw: Path) -> list[tuple[list[str], int]]:
    """py-spy raw output ('frame;frame;... count' lines) reduced to the main
    thread's stacks: those that start in the profiled script's module frame."""
    stacks = []
    for line in raw.read_text(encoding='utf-8').splitlines():
        stack, _sep, count = line.rpartition(' ')
        frames = [_frame(f) for f in stack.split(';')]
        if frames and frames[0].startswith(('<module> (', '_run_module_as_main (')):
            stacks.append((frames, int(count)))
    return stacks


def summarize(raw: Path, title: str, top: int = 12) -> str:
    stacks = main_thread_stacks(raw)
    total = sum(count for _frames, count in stacks) or 1
    lines = ['### %s' % title, '', '%d samples of the main thread (100 per second, wall clock).' % total, '',
             '| phase | share |', '|---|---|']
    for label, needle in PHASES:
        share = sum(count for frames, count in stacks if any(f.startswith(needle) or needle in f for f in frames))
        if share:
            lines.append('| %s | %.0f%% |' % (label, 100.0 * share / total))
    inclusive: collections.Counter = collections.Counter()
    for frames, count in stacks:
        for frame in set(frames):
            inclusive[frame] += count
    lines += ['', 'Top frames by inclusive time (import machinery and the script\'s own frames left out):', '',
              '| frame | share |', '|---|---|']
    shown = [(f, c) for f, c in inclusive.most_common() if '<frozen' not in f and not f.startswith(
        ('<module> (', '_run_module_as_main (', '_run_code (', 'main (', 'run (', 'CinderlibModule.run ('))]
    for frame, count in shown[:top]:
        lines.append('| `%s` | %.0f%% |' % (frame.replace('|', '/')[:110], 100.0 * count / total))
    return '\n'.join(lines) + '\n'


def record(py_spy: str, out: Path, command: list[str], env: dict) -> None:
    proc = subprocess.run([py_spy, 'record', '--idle', '-r', '100', '-f', 'raw', '-o', str(out), '--'] + command,
                          env=env, capture_output=True, text=True, check=False)
    if not out.exists():
        raise SystemExit('py-spy failed: %s' % proc.stderr[-2000:])


def profile_worker(py_spy: str, out: Path, work: Path, base: dict, env: dict) -> list[str]:
    """Profiles of the task's own process, for tasks handed to a warm worker."""
    env = dict(env, CINDERLIB_WORKER='1', CINDERLIB_WORKER_DIR=str(work / 'workers'))
    args_file = work / 'args.json'

    def task(state: str, name: str = 'bench-prof') -> list[str]:
        args_file.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': dict(base, name=name, state=state)}),
                             encoding='utf-8')
        return [sys.executable, '-m', MODULE, str(args_file)]

    def run(command: list[str]) -> None:
        subprocess.run(command, env=env, capture_output=True, check=True)

    # A cold start first, then one warm create and delete, so that the worker and its
    # backend are warm when profiled.
    for state in ('present', 'absent', 'present', 'absent'):
        run(task(state))
    sections = []
    for label, state in (('create', 'present'), ('delete', 'absent')):
        raw = out / ('profile-worker-task-%s.txt' % label)
        record(py_spy, raw, task(state), env)
        sections.append(summarize(raw, 'cinderlib_volume %s handed to a warm worker: the task\'s own process' % label))
    from ansible_collections.cinderlib.storage.plugins.module_utils import worker
    for directory in (work / 'workers').iterdir():
        worker.stop(str(directory))
    return sections


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--vg-json', required=True)
    parser.add_argument('--out', required=True)
    args = parser.parse_args()
    py_spy = os.environ.get('PY_SPY') or shutil.which('py-spy') or str(Path(sys.executable).parent / 'py-spy')
    if not Path(py_spy).exists():
        print('bench profile: py-spy is not installed (pip install py-spy, or PY_SPY=its path); skipped')
        return 0
    vg_info = json.loads(Path(args.vg_json).read_text(encoding='utf-8'))
    env = dict(os.environ, CINDERLIB_WORKER='0', **vg_info['environment'])
    work = Path(tempfile.mkdtemp(prefix='cinderlib-profile.', dir='/var/tmp'))
    persistence = {'storage': 'db', 'connection': 'sqlite:///%s' % (work / 'state.db')}
    backend = dict(volume_backend_name='bench', volume_driver='cinder.volume.drivers.lvm.LVMVolumeDriver',
                   volume_group=vg_info['vg'], target_protocol='iscsi', target_helper='lioadm',
                   lvm_type='default', volume_clear='none')
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    try:
        base = {'backend': backend, 'persistence': persistence, 'name': 'bench-prof', 'size': 1}
        for label, state in (('create', 'present'), ('unchanged re-run', 'present'), ('delete', 'absent')):
            args_file = work / 'args.json'
            args_file.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': dict(base, state=state)}), encoding='utf-8')
            raw = out / ('profile-module-%s.txt' % label.replace(' ', '-'))
            record(py_spy, raw, [sys.executable, '-m', MODULE, str(args_file)], env)
            sections.append(summarize(raw, 'cinderlib_volume %s, one module process' % label))
        sections += profile_worker(py_spy, out, work, base, env)
        raw = out / 'profile-library.txt'
        record(py_spy, raw, [sys.executable, '-c', LIBRARY_CODE, json.dumps([persistence, backend])], env)
        sections.append(summarize(raw, 'library: backend start, then 20 x create + delete in one process'))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = '\n'.join(sections)
    (out / 'profile.md').write_text(report, encoding='utf-8')
    print(report)
    return 0


if __name__ == '__main__':
    sys.exit(main())
