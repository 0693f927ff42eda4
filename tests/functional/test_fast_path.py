# cinderlib_volume's fast path on real LVM: an unchanged task is answered from the
# state store and one lvs, with no Cinder, oslo or SQLAlchemy imported (checked with
# python -X importtime), and a volume removed behind the collection's back is still
# reported as the full path reports it.
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ('cinder', 'os_brick', 'sqlalchemy', 'oslo_config', 'oslo_concurrency', 'oslo_db', 'eventlet')


@pytest.fixture
def module_run(tmp_path, run_env, collections_path):
    """``module_run(args, check_mode=False) -> (result, heavy imports)``: the
    cinderlib_volume module file run as Ansible runs it (a fresh interpreter,
    arguments in a file), under ``python -X importtime``."""
    module = Path(collections_path) / 'ansible_collections/cinderlib/storage/plugins/modules/cinderlib_volume.py'

    def run(args: dict, check_mode: bool = False) -> tuple[dict, list[str]]:
        args_file = tmp_path / 'args.json'
        args_file.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': dict(args, _ansible_check_mode=check_mode)}))
        proc = subprocess.run([sys.executable, '-X', 'importtime', str(module), str(args_file)], capture_output=True,
                              text=True, env=run_env, timeout=300, check=False)
        result = json.loads(proc.stdout)
        imported = [line.rsplit('|', 1)[1].strip() for line in proc.stderr.splitlines()
                    if line.startswith('import time:') and '|' in line]
        return result, sorted({m.split('.')[0] for m in imported if m.split('.')[0] in HEAVY})
    return run


def test_unchanged_volume_takes_the_fast_path_and_a_removed_lv_is_still_reported(
        tmp_path, module_run, lvm_backend, lvm_backend_env, run_env):
    args = {'backend': lvm_backend, 'persistence': {'connection': 'sqlite:///%s' % (tmp_path / 'state.db')},
            'name': 'fast01', 'size': 1}
    created, heavy = module_run(args)
    assert created['changed'] is True, created
    assert 'cinder' in heavy  # a create needs the driver

    for check_mode in (False, True):
        again, heavy = module_run(args, check_mode=check_mode)
        assert again['changed'] is False, again
        assert again['volume'] == created['volume']
        assert heavy == [], 'the unchanged run imported %s' % heavy

    # A configuration no full run accepted is checked by the full path, even for an unchanged volume.
    typo, heavy = module_run(dict(args, backend=dict(lvm_backend, volume_grup='x')))
    assert typo.get('failed') and "unknown option 'volume_grup'" in typo['msg']

    # Removed behind the collection's back: reported, not recreated, as the full path always did.
    lv = '%s/volume-%s' % (lvm_backend_env['vg'], created['volume']['id'])
    subprocess.run(['lvremove', '-f', lv], env=run_env, capture_output=True, check=True)
    for check_mode in (False, True):
        gone, heavy = module_run(args, check_mode=check_mode)
        assert gone.get('failed'), gone
        assert "is in the state store but not on backend 'lvm'" in gone['msg']
        assert 'cinder' in heavy

    removed, _heavy = module_run(dict(args, state='absent'))
    assert removed['changed'] is True
    for check_mode in (False, True):
        absent, heavy = module_run(dict(args, state='absent'), check_mode=check_mode)
        assert absent['changed'] is False and heavy == []
