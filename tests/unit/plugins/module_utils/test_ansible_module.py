# Unit tests of CinderlibModule: the result shapes every module shares, the
# secrets it registers as no_log, and how library errors end a task. The
# ensure functions here are stand-ins: the functional tests run the real ones.
from __future__ import annotations

import contextlib
import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.cinderlib.storage.plugins.module_utils import ansible_module
from ansible_collections.cinderlib.storage.plugins.module_utils.ansible_module import CinderlibModule
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import CinderlibError

STATE = dict(state=dict(type='str', default='present', choices=['present', 'absent']))


@pytest.fixture
def make():
    """make(args, **kwargs): a CinderlibModule with these task arguments (they
    stay in place until the test ends: exit_json needs them too)."""
    with contextlib.ExitStack() as stack:
        def make_module(args: dict, **kwargs) -> CinderlibModule:
            kwargs.setdefault('needs_cinder', False)
            kwargs.setdefault('needs_backend', False)
            stack.enter_context(patch_module_args(args))
            return CinderlibModule(argument_spec=dict(STATE), **kwargs)
        yield make_module


def finish(capsys, module: CinderlibModule, func, check=None) -> tuple[int, dict]:
    with pytest.raises(SystemExit) as exc:
        module.run(func, check=check)
    return exc.value.code, json.loads(capsys.readouterr().out)


def fake_ensure(outcome: tuple, calls: list):
    def ensure(target, params, check_mode):
        calls.append((target, params['state'], check_mode))
        return outcome
    return ensure


def test_present_result_has_the_resource_the_extra_keys_and_a_diff(make):
    module = make({'_ansible_diff': True})
    calls = []
    after = {'id': 'v1', 'path': '/dev/sdx'}
    result = module.ensure_state(fake_ensure((True, None, after, []), calls), None, 'thing',
                                 target=lambda: 'the-target', extra=lambda a: {'path': a['path']})
    assert calls == [('the-target', 'present', False)]
    assert result == {'changed': True, 'thing': after, 'path': '/dev/sdx',
                      'diff': {'before': {}, 'after': after}}


def test_absent_result_has_no_resource_and_no_diff_without_diff_mode(make):
    module = make({'state': 'absent', '_ansible_check_mode': True})
    calls = []
    result = module.ensure_state(None, fake_ensure((True, {'id': 'v1'}, None, []), calls), 'thing',
                                 target=lambda: 'the-target', extra=lambda a: pytest.fail('extra is for present'))
    assert module.check_mode is True and module.diff is False
    assert calls == [('the-target', 'absent', True)]
    assert result == {'changed': True}


def test_a_target_given_means_the_backend_is_never_started(make, monkeypatch):
    module = make({})
    monkeypatch.setattr(CinderlibModule, 'backend', property(lambda self: pytest.fail('backend started')))
    result = module.ensure_state(fake_ensure((False, {}, {}, []), []), None, 'thing', target=lambda: None)
    assert result['changed'] is False


def test_messages_become_warnings_once_each(make, monkeypatch):
    module = make({})
    warned = []
    monkeypatch.setattr(module.module, 'warn', warned.append)
    outcome = (False, {}, {'id': 'v1'}, ['same warning', 'same warning', 'other'])
    module.ensure_state(fake_ensure(outcome, []), None, 'thing', target=lambda: None)
    module.warn('other')
    assert warned == ['same warning', 'other']


def test_each_item_runs_and_a_failed_one_fails_the_task_naming_it(make, capsys):
    module = make({'_ansible_diff': True})

    def present(target, item, check_mode):
        if item['name'] == 'bad':
            raise CinderlibError('the array said no')
        return True, None, {'id': 'id-' + item['name']}, []

    def run(m):
        return m.ensure_each([{'name': 'a', 'state': 'present'}, {'name': 'bad', 'state': 'present'},
                              {'name': 'c', 'state': 'present'}], present, None, 'volume',
                             label=lambda index, item: 'item %d (%s)' % (index, item['name']))

    module._backend = 'started'  # ensure_each's items run on the backend
    code, out = finish(capsys, module, run)
    assert code == 1
    assert out['msg'] == ('1 of 3 volumes failed (the others are done, see volumes): '
                          'item 1 (bad): the array said no')
    assert [(e['name'], e['changed'], e.get('failed', False)) for e in out['volumes']] == [
        ('a', True, False), ('bad', False, True), ('c', True, False)]
    assert out['volumes'][2]['id'] == 'id-c'
    assert [d['before_header'] for d in out['diff']] == ['item 0 (a)', 'item 2 (c)']


def test_a_library_error_fails_with_its_message(make, capsys):
    module = make({})

    def run(m):
        try:
            raise ValueError('driver detail')
        except ValueError as cause:
            raise CinderlibError('what went wrong', cause=cause) from cause

    code, out = finish(capsys, module, run)
    assert code == 1
    assert out['msg'] == 'what went wrong'
    # The cause's traceback goes in `exception`, which ansible-core shows
    # only when tracebacks are on.


def test_the_options_check_runs_before_the_work(make, capsys):
    module = make({})

    def check(params):
        raise CinderlibError('bad option')

    code, out = finish(capsys, module, lambda m: pytest.fail('ran after a failed check'), check=check)
    assert (code, out['msg']) == (1, 'bad option')


def test_backend_secrets_and_url_passwords_never_reach_the_output(make, capsys):
    store = 'postgresql://cl:pw-of-the-db@db.example.com/cinderlib'
    module = make({'backend': {'volume_backend_name': 'b', 'san_password': 'pw-of-the-array'},
                   'persistence': {'connection': store},
                   'coordination_url': 'redis://:pw-of-redis@127.0.0.1:6379'}, needs_backend=True)
    code, out = finish(capsys, module, lambda m: {'msg': "pw-of-the-array, pw-of-redis; can't open %s" % store})
    assert code == 0
    for secret in ('pw-of-the-array', 'pw-of-redis', 'pw-of-the-db'):
        assert secret not in json.dumps(out)
    # The rest of a URL stays readable, so that a message can say which store failed.
    assert 'db.example.com/cinderlib' in out['msg']


def test_a_backend_given_as_a_json_string_is_parsed(make):
    module = make({'backend': '{"volume_backend_name": "b", "volume_group": "vg"}'}, needs_backend=True)
    assert module.params['backend'] == {'volume_backend_name': 'b', 'volume_group': 'vg'}


def test_no_cinder_fails_saying_how_to_get_it(make, capsys, monkeypatch):
    real_find_spec = ansible_module.importlib.util.find_spec
    monkeypatch.setattr(ansible_module.importlib.util, 'find_spec',
                        lambda name, *args: None if name == 'cinder' else real_find_spec(name, *args))
    with pytest.raises(SystemExit) as exc:
        make({}, needs_cinder=True)
    out = json.loads(capsys.readouterr().out)
    assert exc.value.code == 1
    assert 'cinder and os-brick' in out['msg'] and 'cinderlib.storage.runtime role' in out['msg']
    assert 'to drive Cinder volume drivers' in out['msg']


def test_the_invocation_log_masks_backend_secrets_given_as_a_string(make, monkeypatch):
    # AnsibleModule logs its arguments (to the journal) while it starts, before
    # CinderlibModule parses a backend given as a JSON string (ad-hoc use).
    logged = []
    monkeypatch.setattr(ansible_module.AnsibleModule, 'log', lambda self, msg, log_args=None: logged.append(msg))
    make({'backend': '{"volume_backend_name": "b", "san_password": "pw-of-the-array"}',
          'coordination_url': 'redis://:pw-of-redis@127.0.0.1:6379'}, needs_backend=True)
    assert logged and 'Invoked with' in logged[0]
    assert 'pw-of-the-array' not in logged[0] and 'pw-of-redis' not in logged[0]
