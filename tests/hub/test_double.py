"""The kojihub double itself behaves as koji-plugin-facts.md section 1 says."""

import koji
import pytest

from tests.doubles import kojihub as kojihub_double
from tests.hub.conftest import TARGET


def test_make_task_defaults(hub):
    task_id = hub.make_task('someMethod', [1, 'a', {'k': None}])
    task = hub.tasks[task_id]
    assert (task['priority'], task['arch'], task['parent'], task['label']) == \
        (koji.PRIO_DEFAULT, 'noarch', None, None)
    assert task['channel'] == 'default'
    assert task['owner'] == koji.context.context.session.user_id


def test_make_task_needs_owner(hub):
    hub.logout()
    with pytest.raises(koji.GenericError, match='task must have an owner'):
        hub.make_task('m', [])


def test_make_task_ignores_unknown_opts_and_forces_label(hub):
    task_id = hub.make_task('m', [], policy='x', label='l')
    assert hub.tasks[task_id]['label'] is None


def test_make_task_arch_and_priority(hub):
    task_id = hub.make_task('m', [], arch=['x86_64', 'aarch64'], priority='7')
    assert hub.tasks[task_id]['arch'] == 'x86_64 aarch64'
    assert hub.tasks[task_id]['priority'] == 7
    with pytest.raises(koji.GenericError):
        hub.make_task('m', [], arch='x86_64,aarch64')
    with pytest.raises(koji.ParameterError):
        hub.make_task('m', [], priority='high')


def test_make_task_child(hub):
    parent = hub.make_task('m', [], priority=10, arch='x86_64')
    with pytest.raises(koji.GenericError, match='not open'):
        hub.make_task('c', [], parent=parent)
    hub.tasks[parent]['state'] = koji.TASK_STATES['OPEN']
    child = hub.make_task('c', [], parent=parent, label='one')
    assert hub.tasks[child]['priority'] == 9
    assert hub.tasks[child]['arch'] == 'x86_64'
    assert hub.tasks[child]['label'] == 'one'
    with pytest.raises(koji.GenericError, match='Invalid parent'):
        hub.make_task('c', [], parent=9999)


def test_make_task_channels(hub):
    task_id = hub.make_task('m', [], channel='container-fast')
    assert hub.tasks[task_id]['channel'] == 'container-fast'
    with pytest.raises(koji.GenericError, match='No such channel'):
        hub.make_task('m', [], channel='nope')
    with pytest.raises(koji.GenericError, match='disabled'):
        hub.make_task('m', [], channel='container-off')


def test_make_task_arglist_must_marshal(hub):
    with pytest.raises(OverflowError):
        hub.make_task('m', [2 ** 64])
    with pytest.raises(TypeError):
        hub.make_task('m', [{1: 'x'}])
    with pytest.raises(TypeError):
        hub.make_task('m', [object()])
    with pytest.raises(kojihub_double.StorageError):
        hub.make_task('m', ['nul\x00'])
    with pytest.raises(UnicodeEncodeError):
        hub.make_task('m', ['\udc80'])


def test_make_task_method_must_be_text(hub):
    with pytest.raises(koji.ParameterError):
        hub.make_task(5, [])


def test_call_rolls_back_tasks(hub):
    def failing():
        hub.make_task('m', [])
        hub.make_task('m', [])
        raise koji.GenericError('boom')

    kept = hub.call(hub.make_task, 'm', [])
    with pytest.raises(koji.GenericError):
        hub.call(failing)
    assert list(hub.tasks) == [kept]
    assert hub.call(hub.make_task, 'm', []) == kept + 1


def test_session_permissions(hub):
    hub.login('root', perms=['admin'])
    session = koji.context.context.session
    assert session.hasPerm('admin') and not session.hasPerm('build')
    session.assertPerm('build')  # admin passes assertPerm
    hub.login('bob', perms=['build'])
    session = koji.context.context.session
    session.assertPerm('build')
    with pytest.raises(koji.ActionNotAllowed, match='repo permission required'):
        session.assertPerm('repo')
    hub.logout()
    with pytest.raises(koji.ActionNotAllowed):
        koji.context.context.session.assertLogin()


def test_lookups(hub):
    target = hub.get_build_target(TARGET)
    assert set(target) == {'id', 'name', 'build_tag', 'build_tag_name', 'dest_tag',
                           'dest_tag_name'}
    assert hub.get_build_target(target['id']) == target
    assert hub.get_build_target('nope') is None
    with pytest.raises(koji.GenericError):
        hub.get_build_target('nope', strict=True)
    tag = hub.get_tag(target['dest_tag'])
    assert set(tag) == {'id', 'name', 'perm_id', 'perm', 'arches', 'locked', 'maven_support',
                        'maven_include_all', 'extra'}
    with pytest.raises(koji.ParameterError):
        hub.get_tag({'name': 'x'})


def test_module_functions_use_current_hub(hub):
    import kojihub
    assert kojihub is kojihub_double
    task_id = kojihub.make_task('m', [])
    assert task_id in hub.tasks
    assert kojihub.get_build_target(TARGET)['name'] == TARGET


def test_fault_mapping(hub):
    assert hub.fault_of(koji.ParameterError('x')).faultCode == 1019
    fault = hub.fault_of(KeyError('arch'))
    assert fault.faultCode == 1 and "KeyError" in fault.faultString
