# Privileged commands through a root helper: the library run by an
# unprivileged user, with sudo, on real LVM.
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest
from functional_helpers import lv_names

REPO = Path(__file__).resolve().parents[2]
USER = 'cinderlib-test'
# An interpreter other users can run: the test venv may be built on a
# Python under /root, which they can't reach.
SYSTEM_PYTHON = '/usr/bin/python3'
VENV = Path('/var/tmp/cinderlib-test-venv')  # readable by the test user


@pytest.fixture(scope='module')
def unprivileged_python():
    if os.geteuid() != 0:
        pytest.skip('needs root to create the unprivileged test user')
    for tool in ('sudo', 'runuser', 'useradd'):
        if shutil.which(tool, path=os.environ.get('PATH', '') + ':/usr/sbin:/sbin') is None:
            pytest.skip('%s is missing (scripts/bootstrap.sh installs sudo)' % tool)
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip('%s is missing' % SYSTEM_PYTHON)
    stamp = VENV / 'requirements.stamp'
    requirements = REPO / 'requirements'
    wanted = (requirements / 'runtime.txt').read_text() + (requirements / 'constraints.txt').read_text()
    if not stamp.exists() or stamp.read_text() != wanted:
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([SYSTEM_PYTHON, '-m', 'venv', str(VENV)], check=True)
        subprocess.run([str(VENV / 'bin' / 'pip'), 'install', '-q', '-r', str(REPO / 'requirements' / 'runtime.txt'),
                        '-c', str(REPO / 'requirements' / 'constraints.txt')], check=True, timeout=900)
        stamp.write_text(wanted)
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(['useradd', '--create-home', USER], check=True)
    sudoers = Path('/etc/sudoers.d/cinderlib-test')
    sudoers.write_text('Defaults:%s env_keep += "LVM_SYSTEM_DIR"\n%s ALL=(root) NOPASSWD: ALL\n' % (USER, USER))
    sudoers.chmod(0o440)
    yield str(VENV / 'bin' / 'python')
    sudoers.unlink()


@pytest.fixture
def shared_workdir():
    # pytest's tmp_path is private to root; the test user must read this one.
    work = Path(tempfile.mkdtemp(prefix='cinderlib-nonroot-', dir='/var/tmp'))
    work.chmod(0o755)
    (work / 'collections' / 'ansible_collections' / 'cinderlib').mkdir(parents=True)
    (work / 'collections' / 'ansible_collections' / 'cinderlib' / 'storage').symlink_to(REPO)
    yield work
    shutil.rmtree(work, ignore_errors=True)


def test_unprivileged_user_drives_lvm_through_the_root_helper(shared_workdir, lvm_backend, lvm_backend_env,
                                                              unprivileged_python):
    work = shared_workdir
    log = work / 'helper.log'
    helper = work / 'logging-sudo'
    # A root helper that records what it runs, then runs it with sudo.
    helper.write_text('#!/bin/sh\necho "$*" >> %s\nexec sudo "$@"\n' % log)
    helper.chmod(0o755)
    script = work / 'run.py'
    script.write_text(textwrap.dedent('''\
        import os
        from ansible_collections.cinderlib.storage.plugins.module_utils import cinderlib
        cinderlib.setup(root_helper=%r)
        lvm = cinderlib.Backend(**%r)
        vol = lvm.create_volume(1, name='via-helper')
        print('uid', os.getuid(), 'created', vol.id, vol.status)
        vol.delete()
        print('after delete', vol.status, len(lvm.volumes))
        ''' % (str(helper), lvm_backend)))
    log.touch()
    log.chmod(0o666)
    home = Path(pwd.getpwnam(USER).pw_dir)
    shutil.rmtree(home / '.local' / 'state' / 'cinderlib', ignore_errors=True)
    env = {'PATH': '/usr/local/bin:/usr/bin:/bin', 'HOME': str(home), 'PYTHONPATH': str(work / 'collections')}
    env.update(lvm_backend_env['environment'])
    runuser = shutil.which('runuser', path='/usr/sbin:/sbin:/usr/bin:/bin')
    proc = subprocess.run([runuser, '-u', USER, '--', unprivileged_python, str(script)], env=env,
                          capture_output=True, text=True, timeout=300, cwd=str(work), check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    created = [line for line in proc.stdout.splitlines() if line.startswith('uid ')][0].split()
    assert created[1] != '0' and created[4] == 'available'
    assert 'after delete deleted 0' in proc.stdout
    ran = log.read_text()
    assert 'lvcreate' in ran and 'lvremove' in ran, ran
    assert 'volume-%s' % created[3] not in lv_names(lvm_backend_env['vg'], dict(os.environ))
    # The user's own state store and locks, private to the user.
    store = home / '.local' / 'state' / 'cinderlib' / 'state.db'
    assert store.exists() and (store.stat().st_mode & 0o077) == 0
    assert store.stat().st_uid == pwd.getpwnam(USER).pw_uid
