# Check mode changes nothing on the backend, even where starting the driver would.
from __future__ import annotations

import pytest
from functional_helpers import lv_names, run_adhoc


@pytest.fixture
def auto_backend(tmp_path, lvm_big_vg) -> dict:
    """Cinder's LVM driver on a fresh, empty volume group, lvm_type left to its default (auto): its
    setup would make the thin pool <vg>-pool."""
    return {'backend': {'volume_backend_name': 'lvm-auto', 'volume_driver': 'cinder.volume.drivers.lvm.LVMVolumeDriver',
                        'volume_group': lvm_big_vg, 'target_helper': 'fake', 'volume_clear': 'none'},
            'persistence': {'storage': 'db', 'connection': 'sqlite:///%s' % (tmp_path / 'state.db')}}


def test_check_mode_does_not_make_the_lvm_thin_pool(run_env, auto_backend, lvm_big_vg):
    assert lv_names(lvm_big_vg, run_env) == []
    pool = '%s/%s-pool' % (lvm_big_vg, lvm_big_vg)
    for module, args in (('cinderlib_backend_facts', {}), ('cinderlib_volume', {'name': 'data', 'size': 1})):
        rc, result, out = run_adhoc('cinderlib.storage.' + module, dict(auto_backend, **args), run_env, check=True)
        assert rc == 0, out
        assert result['changed'] is (module == 'cinderlib_volume'), out
        # Ad hoc, warnings go to stderr, wrapped.
        assert "check mode: the LVM driver's setup would create the thin pool %s (lvm_type auto" % pool in ' '.join(
            out.split()), out
        assert lv_names(lvm_big_vg, run_env) == [], out
    # The pool is why: lvm_type default is left alone (no warning), and so is a VG that has a volume.
    rc, result, out = run_adhoc('cinderlib.storage.cinderlib_backend_facts',
                                {**auto_backend, 'backend': dict(auto_backend['backend'], lvm_type='default')},
                                run_env, check=True)
    assert rc == 0 and 'thin pool' not in out, out
