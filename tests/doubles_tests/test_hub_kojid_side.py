"""The hub double's side of kojid (koji.daemon.TaskManager's calls) and Koji 1.35 repo
requests: what the kojid double and BaseTaskHandler.getRepo rely on."""

import koji
import koji.xmlrpcplus
import pytest

from tests.doubles.hub_session import HubSessionDouble

TASK = koji.TASK_STATES


@pytest.fixture
def hub():
    hub = HubSessionDouble()
    hub.add_user('alice')
    hub.add_tag('build')
    return hub


def test_scheduler_assigns_free_tasks_of_known_methods(hub):
    parent = hub.add_task('buildContainer', ['a'], owner='alice')
    child = hub.host.subtask('createContainer', ['x'], parent, label='x86_64')
    other = hub.host.subtask('tagBuild', ['t'], parent, label='tag')
    assert hub.host.getTasks() == []                # scheduler off: nothing assigned
    hub.schedule = True
    hub.host.updateHost(0.0, True, data={'methods': ['createContainer']})
    assert [t['id'] for t in hub.host.getTasks()] == [child]
    assert hub.task(other)['state'] == TASK['FREE']
    assert hub.host.openTask(child)['id'] == child
    assert hub.task(child)['state'] == TASK['OPEN']
    hub.host.setTaskWeight(child, 2.5)
    assert hub.task(child)['weight'] == 2.5
    # refused: FREE again and never offered to this host again
    hub.host.refuseTask(child, soft=False, msg='backend = osbs here')
    assert hub.task(child)['state'] == TASK['FREE'] and hub.task(child)['host_id'] is None
    assert hub.host.getTasks() == []
    assert hub.refusals() == {child: {'soft': False, 'msg': 'backend = osbs here'}}


def test_host_tasks_alert_a_waiting_parent(hub):
    parent = hub.add_task('buildContainer', ['a'], owner='alice')
    child = hub.host.subtask('createContainer', ['x'], parent, label='x86_64')
    hub.host.taskSetWait(parent, [child])
    (entry,) = hub.host.getHostTasks()
    assert entry == {'id': parent, 'waiting': True, 'weight': 1.0}
    hub.open_task(child)
    hub.finish_task(child, result={'arch': 'x86_64'})
    entries = dict((e['id'], e) for e in hub.host.getHostTasks())
    assert entries[parent]['alert'] is True
    hub.host.taskWaitResults(parent, [child])
    assert 'alert' not in dict((e['id'], e) for e in hub.host.getHostTasks())[parent]


def test_close_and_fail_decode_kojid_responses(hub):
    closed = hub.add_task('buildContainer', ['a'], owner='alice')
    hub.host.closeTask(closed, koji.xmlrpcplus.dumps(({'koji_builds': ['1']},),
                                                     methodresponse=1, allow_none=1))
    assert hub.getTaskResult(closed) == {'koji_builds': ['1']}
    failed = hub.add_task('buildContainer', ['a'], owner='alice')
    hub.host.failTask(failed, koji.xmlrpcplus.dumps(
        koji.xmlrpcplus.Fault(koji.BuildError.faultCode, 'RUN exited 1')))
    with pytest.raises(koji.BuildError, match='RUN exited 1'):
        hub.getTaskResult(failed)


def test_free_tasks(hub):
    task = hub.add_task('buildContainer', ['a'], owner='alice')
    hub.host.freeTasks([task])
    assert hub.task(task)['state'] == TASK['FREE']
    hub.cancel_task(task)
    hub.assign_task(hub.add_task('buildContainer', ['b'], owner='alice'))
    with pytest.raises(koji.GenericError, match='Cannot free task'):
        hub._tasks[task]['host_id'] = hub.host_id
        hub.host.freeTasks([task])


def test_repo_request_and_check(hub):
    check = hub.repo.request('build')
    assert check['repo'] is None and check['request']['active'] is True
    # one active request per tag
    assert hub.repo.request('build')['request']['id'] == check['request']['id']
    assert hub.repo.checkRequest(check['request']['id'])['repo'] is None
    repo = hub.add_repo('build')         # kojira served it
    done = hub.repo.checkRequest(check['request']['id'])
    assert done['repo']['id'] == repo['id'] and done['request']['active'] is False
    assert hub.repo.request('build') == {'repo': repo, 'request': None}
    assert hub.tagLastChangeEvent('build') >= repo['create_event']
