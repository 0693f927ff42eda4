# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""The benchmarks behind bench/run.sh (which makes the volume group and the
environment; run that, not this). Prints a table of ratios, each against a
baseline measured in the same run, and writes raw data and a Markdown report
to --out. With --smoke: tiny sizes, correctness checks only, no lvol."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


class BenchFailure(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise BenchFailure(message)


def median(values):
    return statistics.median(values) if values else float('nan')


class Bench:
    def __init__(self, args) -> None:
        self.smoke = args.smoke
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.vg_info = json.loads(Path(args.vg_json).read_text(encoding='utf-8'))
        self.vg = self.vg_info['vg']
        self.lvm_env = self.vg_info['environment']
        self.lvol_collections = args.lvol_collections
        self.repeat = args.repeat
        self.work = Path(tempfile.mkdtemp(prefix='cinderlib-bench.', dir='/var/tmp'))
        self.db = self.work / 'state.db'
        self.persistence = {'storage': 'db', 'connection': 'sqlite:///%s' % self.db}
        self.backend = dict(volume_backend_name='bench', volume_driver='cinder.volume.drivers.lvm.LVMVolumeDriver',
                            volume_group=self.vg, target_protocol='iscsi', target_helper='lioadm',
                            lvm_type='default', volume_clear='none')
        self.env = dict(os.environ, **self.lvm_env)
        self.env.update(ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='false',
                        ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
                        ANSIBLE_CALLBACK_PLUGINS=str(BENCH / 'callback_plugins'),
                        ANSIBLE_CALLBACKS_ENABLED='bench_timer', LVM_SUPPRESS_FD_WARNINGS='1')
        self.rows: list[dict] = []
        self.raw: dict = {}
        self.notes: list[str] = []
        self.load_at_start = ' '.join(Path('/proc/loadavg').read_text().split()[:3])

    # -- helpers -------------------------------------------------------------------
    def log(self, message: str) -> None:
        print('    %s' % message, flush=True)

    def playbook(self, playbook: Path, extra: dict, env: dict | None = None) -> tuple[float, list[dict]]:
        timer = self.work / 'timer.jsonl'
        timer.unlink(missing_ok=True)
        extra_file = self.work / 'extra.json'
        extra_file.write_text(json.dumps(extra), encoding='utf-8')
        run_env = dict(env or self.env, BENCH_TIMER_FILE=str(timer))
        start = time.perf_counter()
        proc = subprocess.run([str(BIN / 'ansible-playbook'), '-i', 'localhost,', str(playbook),
                               '-e', '@%s' % extra_file], env=run_env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            tail = '\n'.join(line[:300] for line in (proc.stdout + proc.stderr).splitlines()[-30:])
            raise BenchFailure('%s failed (rc=%d):\n%s' % (playbook.name, proc.returncode, tail))
        records = [json.loads(line) for line in timer.read_text(encoding='utf-8').splitlines()]
        return wall, records

    @staticmethod
    def items(records: list[dict], task: str) -> list[dict]:
        return [r for r in records if r['task'] == task and not r.get('skipped')]

    def lvs(self, prefix: str = '') -> list[str]:
        proc = subprocess.run(['lvs', '--noheadings', '-o', 'lv_name', self.vg], env=self.env,
                              capture_output=True, text=True, check=True)
        return [n.strip() for n in proc.stdout.split() if n.strip().startswith(prefix)]

    def store_volumes(self) -> list[dict]:
        from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import open_store
        store = open_store(self.persistence)
        try:
            return store.volume_records()
        finally:
            store.close()

    def row(self, name: str, ours: float, base: float, unit: str, target: str | None, limit: float | None,
            lower_is_better: bool = True, ratio: float | None = None, note: str = '') -> None:
        if ratio is None:
            ratio = ours / base if base else float('nan')
        met = None
        if limit is not None and not self.smoke:
            met = ratio <= limit if lower_is_better else ratio >= limit
        self.rows.append(dict(name=name, ours=ours, base=base, unit=unit, ratio=ratio, target=target, met=met,
                              note=note))

    # -- 1 + 2: lifecycle vs lvol, with and without the worker ------------------------------
    def cinderlib_lifecycle(self, count: int, worker: bool, again: bool = False,
                            stop: bool = True) -> tuple[float, list[dict]]:
        """One lifecycle playbook; with ``worker``, a worker of this run's own
        (its directory in the work directory), started by the first create: the
        cold start is in the playbook's wall time; with ``again``, the worker
        the last run left (``stop=False``), warm from the start."""
        environment = dict(self.lvm_env)
        if worker:
            if not again:
                workers = self.work / ('workers-%d' % len(self.raw.setdefault('worker_dirs', [])))
                self.raw['worker_dirs'].append(str(workers))
            environment.update(CINDERLIB_WORKER_DIR=self.raw['worker_dirs'][-1], CINDERLIB_WORKER='1')
        else:
            environment['CINDERLIB_WORKER'] = '0'
        extra = {'bench_backend': self.backend, 'bench_persistence': self.persistence,
                 'bench_environment': environment, 'bench_count': count}
        wall, records = self.playbook(BENCH / 'playbooks' / 'lifecycle_cinderlib.yml', extra)
        for task, changed in (('Create', count), ('Unchanged re-run', 0), ('Delete', count)):
            got = sum(r['changed'] for r in self.items(records, task))
            check(got == changed and len(self.items(records, task)) == count,
                  'cinderlib_volume lifecycle: %s changed %d of %d, expected %d' % (task, got, count, changed))
        check(not self.lvs('volume-'), 'volumes left on %s after the deletes: %s' % (self.vg, self.lvs('volume-')))
        check(not self.store_volumes(), 'volumes left in the state store after the deletes')
        if worker:
            from ansible_collections.cinderlib.storage.plugins.module_utils import worker as worker_client
            [directory] = [p for p in Path(environment['CINDERLIB_WORKER_DIR']).iterdir() if p.is_dir()]
            status = worker_client.status(str(directory))
            served = (4 if again else 2) * count
            check(status is not None and status['status']['served'] == served,
                  'the worker served %s tasks, expected %d' % (status and status['status']['served'], served))
            if stop:
                worker_client.stop(str(directory))
        return wall, records

    def lifecycle(self) -> None:
        count = 2 if self.smoke else 10
        walls, unchanged, nwalls, cold, warm, again = [], [], [], [], [], []
        for _repeat in range(self.repeat):
            wall, records = self.cinderlib_lifecycle(count, worker=True, stop=False)
            walls.append(wall)
            again.append(self.cinderlib_lifecycle(count, worker=True, again=True)[0])
            unchanged += [r['seconds'] for r in self.items(records, 'Unchanged re-run')]
            creates = [r['seconds'] for r in self.items(records, 'Create')]
            cold.append(creates[0])
            warm += creates[1:] + [r['seconds'] for r in self.items(records, 'Delete')]
            wall, _records = self.cinderlib_lifecycle(count, worker=False)
            nwalls.append(wall)
        self.log('cinderlib_volume lifecycle (%d tasks), worker: %s s, no worker: %s s; correct'
                 % (3 * count, ' '.join('%.1f' % w for w in walls), ' '.join('%.1f' % w for w in nwalls)))
        self.log('first create (starts the worker): %s s; changing tasks in the warm worker: median %.2f s'
                 % (' '.join('%.2f' % c for c in cold), median(warm)))
        self.raw['lifecycle_cinderlib'] = {'walls': walls, 'unchanged': unchanged, 'cold_first_create': cold,
                                           'warm_changes': warm, 'walls_worker_warm': again}
        self.raw['lifecycle_cinderlib_no_worker'] = {'walls': nwalls}
        if self.smoke:
            return
        env = dict(self.env)
        env['ANSIBLE_COLLECTIONS_PATH'] = os.pathsep.join([env.get('ANSIBLE_COLLECTIONS_PATH', ''),
                                                          self.lvol_collections])
        lextra = {'bench_vg': self.vg, 'bench_environment': self.lvm_env, 'bench_count': count}
        lwalls, lunchanged, lchanges = [], [], []
        for _repeat in range(self.repeat):
            wall, records = self.playbook(BENCH / 'playbooks' / 'lifecycle_lvol.yml', lextra, env)
            for task, changed in (('Create', count), ('Unchanged re-run', 0), ('Delete', count)):
                got = sum(r['changed'] for r in self.items(records, task))
                check(got == changed, 'lvol lifecycle: %s changed %d, expected %d' % (task, got, changed))
            check(not self.lvs('bench-lvol'), 'lvol volumes left')
            lwalls.append(wall)
            lunchanged += [r['seconds'] for r in self.items(records, 'Unchanged re-run')]
            lchanges += [r['seconds'] for r in self.items(records, 'Create') + self.items(records, 'Delete')]
        self.log('lvol lifecycle: %s s' % ' '.join('%.1f' % w for w in lwalls))
        self.raw['lifecycle_lvol'] = {'walls': lwalls, 'unchanged': lunchanged, 'changes': lchanges}
        self.row('1. lifecycle, %d tasks (playbook wall), with the worker' % (3 * count), median(walls),
                 median(lwalls), 's', '<= 1.2 x lvol', 1.2)
        self.row('1a. the same, run again right after (the worker warm from the first task)', median(again),
                 median(lwalls), 's', None, None)
        self.row('1b. lifecycle, %d tasks, without the worker (worker: false)' % (3 * count), median(nwalls),
                 median(lwalls), 's', '<= 2.0 x lvol', 2.0)
        self.row('1c. a changing task (create or delete, median), warm worker vs lvol', median(warm),
                 median(lchanges), 's', None, None)
        self.row('1d. first create of the playbook (starts the worker) vs a warm one', median(cold), median(warm),
                 's', None, None)
        self.row('2. unchanged re-run, one task (median of %d)' % len(unchanged), median(unchanged),
                 median(lunchanged), 's', '<= 1.2 x lvol', 1.2)
        self.floor(count)

    def floor(self, count: int) -> None:
        """The physical floor of the lifecycle's changes: the LVM commands the
        LVM driver runs for them (cinder.brick.local_dev.lvm, as its debug log
        shows them), run directly: lvcreate per create; lvs, lvdisplay and
        lvremove per delete."""
        prefix = ['env', 'LC_ALL=C']
        names = ['bench-floor-%d' % i for i in range(count)]
        start = time.perf_counter()
        for name in names:
            subprocess.run(prefix + ['lvcreate', '-n', name, self.vg, '-L', '1g'], env=self.env,
                           capture_output=True, check=True)
        for name in names:
            lv = '%s/%s' % (self.vg, name)
            for cmd in (['lvs', '--noheadings', '--unit=g', '-o', 'vg_name,name,size', '--nosuffix', lv],
                        ['lvdisplay', '--noheading', '-C', '-o', 'Attr', lv],
                        ['lvremove', '--config', 'activation { retry_deactivation = 1}', '-f', lv]):
                subprocess.run(prefix + cmd, env=self.env, capture_output=True, check=True)
        floor = time.perf_counter() - start
        self.raw['lifecycle_floor'] = floor
        self.log('floor: the driver\'s LVM commands for %d creates and %d deletes: %.2f s' % (count, count, floor))
        lwalls = self.raw['lifecycle_lvol']['walls']
        self.row('1e. physical floor: the LVM driver\'s own commands for the %d changes (vs lvol\'s lifecycle)'
                 % (2 * count), floor, median(lwalls), 's', None, None)

    # -- 3: 100 volumes, one task (volumes: list) vs a looped task ------------------------
    def many(self) -> None:
        count = 3 if self.smoke else 100
        names = ['bench-many-%03d' % i for i in range(count)]
        extra = {'bench_backend': self.backend, 'bench_persistence': self.persistence,
                 'bench_environment': self.lvm_env, 'bench_names': names,
                 'bench_items': [{'name': n} for n in names]}
        wall, records = self.playbook(BENCH / 'playbooks' / 'hundred_cinderlib.yml', extra)
        seconds = {}
        for task in ('Looped create', 'One-task delete', 'One-task create', 'Looped delete'):
            found = self.items(records, task)
            if task.startswith('Looped'):
                check(len(found) == count and all(r['changed'] for r in found),
                      '%s: %d of %d items changed' % (task, sum(r['changed'] for r in found), count))
            else:
                check(len(found) == 1 and found[0]['changed'], '%s did not report a change' % task)
            seconds[task] = sum(r['seconds'] for r in found)
        check(not self.lvs('volume-') and not self.store_volumes(), 'volumes left after the 100-volume playbook')
        self.raw['many'] = {'count': count, 'wall': wall, 'seconds': seconds}
        self.log('%d volumes: looped create %.1f s, one-task create %.1f s, looped delete %.1f s, one-task '
                 'delete %.1f s; correct' % (count, seconds['Looped create'], seconds['One-task create'],
                                             seconds['Looped delete'], seconds['One-task delete']))
        # Higher is better here: how many times faster one task is than the loop.
        self.row('3. %d volumes created: one task with volumes: vs a looped task (speed-up)' % count,
                 seconds['One-task create'], seconds['Looped create'], 's', '>= 5 x faster', 5.0,
                 lower_is_better=False, ratio=seconds['Looped create'] / seconds['One-task create'])
        self.row('3b. %d volumes deleted: one task vs a looped task (speed-up; no target)' % count,
                 seconds['One-task delete'], seconds['Looped delete'], 's', None, None,
                 ratio=seconds['Looped delete'] / seconds['One-task delete'])

    # -- 4: library vs raw LVM ----------------------------------------------------------
    LIBRARY_CODE = r'''
import json, sys, time
from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
persistence, backend, count, delete_all = json.loads(sys.argv[1])
cinderlib.setup(persistence_config=persistence)
t0 = time.perf_counter()
cfg = dict(backend)
lvm = cinderlib.Backend(cfg.pop('volume_backend_name'), **cfg)
init = time.perf_counter() - t0
times = []
for i in range(count):
    start = time.perf_counter()
    volume = lvm.create_volume(1, name='bench-lib-%d' % i)
    volume.delete()
    times.append(time.perf_counter() - start)
if delete_all:
    for volume in lvm.volumes:
        volume.delete()
print(json.dumps({'init': init, 'times': times}))
'''

    def library_run(self, count: int, delete_all: bool = False) -> dict:
        proc = subprocess.run([PYTHON, '-c', self.LIBRARY_CODE,
                               json.dumps([self.persistence, self.backend, count, delete_all])],
                              env=self.env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BenchFailure('library run failed:\n%s' % proc.stderr[-3000:])
        return json.loads(proc.stdout.splitlines()[-1])

    def library(self) -> None:
        count = 2 if self.smoke else 20
        result = self.library_run(count)
        check(len(result['times']) == count, 'library: not all volumes created')
        check(not self.lvs('volume-') and not self.store_volumes(), 'library: volumes left after delete')
        self.log('library create+delete x%d: median %.3f s (backend init %.2f s); correct'
                 % (count, median(result['times']), result['init']))
        raw = []
        for i in range(count):
            name = 'bench-raw-%d' % i
            start = time.perf_counter()
            subprocess.run(['lvcreate', '-q', '-n', name, '-L', '1g', self.vg], env=self.env,
                           capture_output=True, check=True)
            subprocess.run(['lvremove', '-q', '-f', '%s/%s' % (self.vg, name)], env=self.env,
                           capture_output=True, check=True)
            raw.append(time.perf_counter() - start)
        check(not self.lvs('bench-raw'), 'raw LVs left')
        self.raw['library'] = {'library': result, 'raw': raw}
        self.row('4. library create+delete vs lvcreate+lvremove (median of %d)' % count, median(result['times']),
                 median(raw), 's', '<= 1.5 x raw', 1.5)

    # -- 5: inventory ---------------------------------------------------------------------
    def inventory(self) -> None:
        import yaml

        from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.persistence import open_store
        count = 100 if self.smoke else 10000
        backends = 10
        db = self.work / 'inventory.db'
        store = open_store({'storage': 'db', 'connection': 'sqlite:///%s' % db})
        start = time.perf_counter()
        try:
            for i in range(count):
                store.put('volume', {'id': '00000000-0000-4000-8000-%012d' % i,
                                     'backend': 'backend%02d' % (i % backends), 'display_name': 'vol%05d' % i,
                                     'size': 1 + i % 50, 'status': 'available'})
        finally:
            store.close()
        self.log('wrote %d volume records in %.1f s' % (count, time.perf_counter() - start))
        config = self.work / 'bench.cinderlib.yml'
        config.write_text('plugin: cinderlib.storage.cinderlib\npersistence:\n  connection: sqlite:///%s\n' % db,
                          encoding='utf-8')

        def listing(source: Path) -> tuple[float, dict]:
            out = self.work / 'listing.json'
            start = time.perf_counter()
            with out.open('w', encoding='utf-8') as stream:
                proc = subprocess.run([str(BIN / 'ansible-inventory'), '-i', str(source), '--list'], env=self.env,
                                      stdout=stream, stderr=subprocess.PIPE, text=True, check=False)
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                raise BenchFailure('ansible-inventory -i %s failed: %s' % (source, proc.stderr[-2000:]))
            return wall, json.loads(out.read_text(encoding='utf-8'))

        wall, data = listing(config)
        hosts = data['_meta']['hostvars']
        check(len(hosts) == count, 'inventory lists %d hosts, expected %d' % (len(hosts), count))
        groups = [g for g in data['all']['children'] if g.startswith('backend')]
        check(len(groups) == backends, 'inventory has %d backend groups, expected %d' % (len(groups), backends))
        self.log('inventory of %d volumes: %d hosts in %d groups; correct' % (count, len(hosts), len(groups)))
        if self.smoke:
            return
        static = {'all': {'children': {g: {'hosts': {h: hosts[h] for h in data[g]['hosts']}} for g in groups}}}
        static_file = self.work / 'static.yml'
        static_file.write_text(yaml.dump(static, Dumper=getattr(yaml, 'CSafeDumper', yaml.SafeDumper)),
                               encoding='utf-8')
        plugin_walls, static_walls = [wall], []
        for _repeat in range(2):
            plugin_walls.append(listing(config)[0])
        for _repeat in range(3):
            swall, sdata = listing(static_file)
            check(len(sdata['_meta']['hostvars']) == count, 'static inventory host count')
            static_walls.append(swall)
        self.raw['inventory'] = {'plugin': plugin_walls, 'static': static_walls}
        self.row('5. ansible-inventory --list, 10k volumes / 10 backends (median of 3)', median(plugin_walls),
                 median(static_walls), 's', '<= 1.5 x static YAML', 1.5)

    # -- 6: cold start ------------------------------------------------------------------
    def coldstart(self) -> None:
        runs = 1 if self.smoke else 5
        marks_file = self.work / 'coldstart.jsonl'
        args_file = self.work / 'args.json'
        args = {'backend': self.backend, 'persistence': self.persistence, 'name': 'bench-cold', 'size': 1}
        marks = []
        for state in ['present'] * (runs + 1) + ['absent']:
            args_file.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': dict(args, state=state)}), encoding='utf-8')
            marks_file.unlink(missing_ok=True)
            # A task's own process (without the worker), as before the worker existed.
            env = dict(self.env, BENCH_T0=repr(time.time()), BENCH_COLDSTART_FILE=str(marks_file),
                       CINDERLIB_WORKER='0')
            proc = subprocess.run([PYTHON, str(BENCH / 'coldstart.py'), str(args_file)], env=env,
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0 or not marks_file.exists():
                raise BenchFailure('cold start run failed: %s' % proc.stderr[-2000:])
            marks.append(json.loads(marks_file.read_text(encoding='utf-8')))
        check(not any(m['failed'] for m in marks), 'cold start: a module run failed')
        check(marks[0]['changed'] and not any(m['changed'] for m in marks[1:-1]) and marks[-1]['changed'],
              'cold start: expected create, unchanged re-runs, delete')
        unchanged = marks[1:-1]
        check(all('fast_path_answered' in m and not m['cinder_imported'] for m in unchanged),
              'cold start: an unchanged run did not take the fast path (or imported cinder)')
        full_keys = ['interpreter_up', 'module_utils_imported', 'options_parsed', 'backend_ready',
                     'first_line_of_work', 'exit']
        fast_keys = ['interpreter_up', 'module_utils_imported', 'options_parsed', 'fast_path_answered', 'exit']
        summary = {'create (full path)': {k: marks[0][k] for k in full_keys},
                   'delete (full path)': {k: marks[-1][k] for k in full_keys},
                   'unchanged (fast path, median of %d)' % len(unchanged): {
                       k: median([m[k] for m in unchanged]) for k in fast_keys}}
        self.raw['coldstart'] = {'runs': marks, 'summary': summary}
        for label, values in summary.items():
            self.log('cold start, %s: %s' % (label, ', '.join('%s %.2f s' % kv for kv in values.items())))
        probe = subprocess.run([PYTHON, '-c', 'import sys\nfrom ansible_collections.cinderlib.storage.plugins.'
                                'module_utils import cinderlib\nprint("cinder" in sys.modules)'],
                               env=self.env, capture_output=True, text=True, check=True)
        imports_cinder = probe.stdout.strip() == 'True'
        self.raw['module_utils_imports_cinder'] = imports_cinder
        check(not imports_cinder, 'importing the module_utils cinderlib package imported cinder')
        if self.smoke:
            return
        self.raw['importtime'] = {
            # The driver module needs cinder's objects registered first (the loader does the same).
            'cinder.volume.drivers.lvm': self.importtime(
                'import cinder.objects\ncinder.objects.register_all()\nimport cinder.volume.drivers.lvm'),
            'module_utils cinderlib': self.importtime(
                'from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib'),
            "cinderlib_volume's fast path (ansible_module, volume_state, quickcheck)": self.importtime(
                'from ansible_collections.cinderlib.storage.plugins.module_utils import ansible_module, volume_state\n'
                'from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import quickcheck'),
        }

    def importtime(self, code: str, top: int = 15) -> dict:
        proc = subprocess.run([PYTHON, '-X', 'importtime', '-c', code], env=self.env, capture_output=True, text=True,
                              check=True)
        rows = []
        for line in proc.stderr.splitlines():
            if not line.startswith('import time:') or 'cumulative' in line:
                continue
            self_us, cumulative, name = line[len('import time:'):].split('|')
            name = name[1:]  # one space after the bar, then two per nesting level
            rows.append({'module': name.strip(), 'self_ms': int(self_us) / 1000,
                         'cumulative_ms': int(cumulative) / 1000, 'depth': (len(name) - len(name.lstrip())) // 2})
        total = sum(r['cumulative_ms'] for r in rows if r['depth'] == 0)
        rows.sort(key=lambda r: r['cumulative_ms'], reverse=True)
        return {'total_ms': total, 'count': len(rows), 'top': rows[:top]}

    # -- report ---------------------------------------------------------------------------
    def table(self) -> str:
        lines = ['| benchmark | cinderlib.storage | baseline | ratio | target | result |',
                 '|---|---|---|---|---|---|']
        for r in self.rows:
            result = 'n/a' if r['met'] is None else ('met' if r['met'] else 'MISSED')
            ratio = 'n/a' if r['ratio'] != r['ratio'] else '%.2f' % r['ratio']
            lines.append('| %s | %.3f %s | %.3f %s | %s | %s | %s%s |' % (
                r['name'], r['ours'], r['unit'], r['base'], r['unit'], ratio, r['target'] or '', result,
                ' (%s)' % r['note'] if r['note'] else ''))
        return '\n'.join(lines)

    def report(self, command: str) -> str:
        mem = next(line.split()[1] for line in Path('/proc/meminfo').read_text().splitlines()
                   if line.startswith('MemTotal'))
        cs = self.raw.get('coldstart', {}).get('summary', {})
        parts = ['- date: %s' % datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC'),
                 '- machine: %d CPUs (nproc), %.1f GiB memory, kernel %s, Python %s' % (
                     os.cpu_count(), int(mem) / 1048576, platform.release(), platform.python_version()),
                 '- load average (1, 5, 15 min): %s at the start, %s at the end (the machine is shared)' % (
                     self.load_at_start, ' '.join(Path('/proc/loadavg').read_text().split()[:3])),
                 '- LVM: metadata-only=%s on a %s loop device' % (
                     self.vg_info['metadata_only'], self.vg_info['device']),
                 '- command: `%s`' % command, '', self.table(), '']
        if cs:
            parts += ['Cold start of a cinderlib_volume process (seconds after the parent spawned it; '
                      '"answered": the fast path gave the result, "backend ready": Cinder imported and the '
                      'driver started):', '',
                      '| run | interpreter up | module_utils imported | options parsed | answered / backend ready '
                      '| first line of work (full path) | exit |', '|---|---|---|---|---|---|---|']
            for label, values in cs.items():
                parts.append('| %s | %.3f | %.3f | %.3f | %.3f | %s | %.3f |' % (
                    label, values['interpreter_up'], values['module_utils_imported'], values['options_parsed'],
                    values.get('fast_path_answered', values.get('backend_ready', float('nan'))),
                    '%.3f' % values['first_line_of_work'] if 'first_line_of_work' in values else '-',
                    values['exit']))
            parts.append('')
        for label, data in self.raw.get('importtime', {}).items():
            parts += ['`python -X importtime` of %s: %d modules, %.0f ms in total; top 15 by cumulative time:' % (
                label, data['count'], data['total_ms']), '', '| module | cumulative ms | self ms |', '|---|---|---|']
            parts += ['| %s | %.1f | %.1f |' % (r['module'], r['cumulative_ms'], r['self_ms']) for r in data['top']]
            parts.append('')
        if 'module_utils_imports_cinder' in self.raw:
            parts.append('Importing the module_utils cinderlib package imports cinder: %s.' %
                         self.raw['module_utils_imports_cinder'])
        return '\n'.join(parts) + '\n'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--smoke', action='store_true')
    parser.add_argument('--vg-json', required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--lvol-collections', default='')
    parser.add_argument('--repeat', type=int, default=1)
    parser.add_argument('--command', default='sudo ./bench/run.sh')
    parser.add_argument('--only', default='', help='comma-separated step names (lifecycle, many, library, '
                        'inventory, coldstart): run only those, for profiling; the report is then partial')
    args = parser.parse_args()
    bench = Bench(args)
    steps = [('lifecycle (creates, unchanged re-runs, deletes)', bench.lifecycle),
             ('volumes in one task (volumes: list) vs a looped task', bench.many),
             ('library create+delete vs raw LVM', bench.library), ('inventory', bench.inventory),
             ('cold start and import times', bench.coldstart)]
    if args.only:
        wanted = set(args.only.split(','))
        steps = [(title, step) for title, step in steps if step.__name__ in wanted]
    try:
        for title, step in steps:
            print('==> bench: %s' % title, flush=True)
            step()
    except BenchFailure as exc:
        print('BENCH FAILED: %s' % exc, file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)
        (bench.out / 'raw.json').write_text(json.dumps(bench.raw, indent=2), encoding='utf-8')
    if args.smoke:
        print('bench smoke: all correctness checks passed')
        return 0
    report = bench.report(args.command)
    (bench.out / 'report.md').write_text(report, encoding='utf-8')
    print(report)
    return 0


if __name__ == '__main__':
    sys.exit(main())
