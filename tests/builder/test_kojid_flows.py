"""Every OSBS task as kojid runs it: koji.daemon.TaskManager in a separate kojid process
builds the handler (takeTask), forks (forkTask: subsession, setpgrp) and runs it
(runTask -> closeTask/failTask/refuseTask). See tests/doubles/kojid.py."""

import json

import koji
import pytest

from tests.builder.conftest import TARGET, write_builder_conf
from tests.doubles.kojid import Kojid, _alive
from tests.support.waiting import wait_for

LINES = ['line %d' % i for i in range(5)]
FLATPAK_YAML = (b'compose:\n  modules:\n  - demo-app:stable\n'
                b'flatpak:\n  id: org.example.Demo\n  branch: stable\n')


def _pids(osbs_double, call):
    return set(c['pid'] for c in osbs_double.calls(call))


def test_binary_build_under_kojid_lifecycle(kojid, hub, git_daemon, osbs_double):
    """Regression: the handler is built in kojid's process and runs in a forked one.
    State taken in __init__ (kojid's parent pid) made the first ownership check raise
    TaskLost: the task exited without closing and kojid took it again, forever."""
    osbs_double.configure(run={'tasks': [['binary-container-build-x86-64', LINES]]})
    params = [git_daemon.url('demo'), TARGET, {'git_branch': 'main'}]
    task_id = hub.add_task('buildContainer', params, owner='alice')
    pid = kojid.start(task_id)
    # the old behaviour: TaskLost -> the process exits leaving the task OPEN -> kojid
    # frees it (FREE) -> taken again, and again
    task = kojid.wait_state(task_id, states=(koji.TASK_STATES['CLOSED'],
                                             koji.TASK_STATES['FAILED'],
                                             koji.TASK_STATES['FREE']), timeout=60)
    assert koji.TASK_STATES[task['state']] == 'CLOSED', task['_fault']
    result = kojid.result(task_id)
    assert result['koji_builds'] == ['987654']
    assert any(r.endswith('demo-container:1.0-1') for r in result['repositories'])
    assert task['weight'] == 2.0                        # setTaskWeight(handler.weight())
    # taken once, run in the forked task process (not in kojid's)
    assert [e for e in kojid.events if e[0] == 'taken'] == [('taken', task_id, pid)]
    assert pid != kojid.kojid_pid
    assert _pids(osbs_double, 'create_binary_container_build') == set([pid])
    assert hub.uploaded_files(task_id)['x86_64.log'].decode().splitlines() == LINES
    with open(kojid.logfile) as fobj:
        assert 'TaskLost' not in fobj.read()


def test_flatpak_build(kojid, hub, git_daemon, osbs_double):
    git_daemon.create('flatpak', [{'container.yaml': FLATPAK_YAML}])
    hub.add_package(TARGET, 'demo-app')
    params = [git_daemon.url('flatpak'), TARGET, {'git_branch': 'main', 'flatpak': True}]
    task_id = hub.add_task('buildContainer', params, owner='alice')
    pid = kojid.start(task_id)
    result = kojid.result(task_id)
    assert result['koji_builds'] == ['987654']
    (call,) = osbs_double.calls('create_binary_container_build')
    assert call['pid'] == pid
    name = json.loads(hub.uploaded_files(task_id)['osbs-run.json'])['name']
    params = osbs_double.removed_run(name)['user_params']
    assert params['flatpak'] is True and params['component'] == 'demo-app'


def test_source_container_build(kojid, hub, osbs_double):
    build = hub.add_build('demo-container-1.0-3', extra={'image': {}})
    hub.add_package(TARGET, 'demo-container-source')
    task_id = hub.add_task('buildSourceContainer', [TARGET, {'koji_build_id': build['id']}],
                           owner='alice')
    pid = kojid.start(task_id)
    assert kojid.result(task_id)['koji_builds'] == ['987654']
    assert _pids(osbs_double, 'create_source_container_build') == set([pid])


def test_failure_fails_the_task_with_its_fault(kojid, hub, git_daemon, osbs_double):
    osbs_double.configure(run={'outcome': {'status': 'False', 'reason': 'Failed',
                                           'message': 'Tasks Completed: 3 (Failed: 1)'}})
    params = [git_daemon.url('demo'), TARGET, {'git_branch': 'main'}]
    task_id = hub.add_task('buildContainer', params, owner='alice')
    kojid.start(task_id)
    with pytest.raises(koji.BuildError, match='Failed: 1'):
        kojid.result(task_id)
    assert hub.task(task_id)['state'] == koji.TASK_STATES['FAILED']


def test_builder_with_the_other_backend_refuses_the_task(hub, options, tmp_path,
                                                          osbs_double):
    """createContainer on an OSBS builder: RefuseTask, the hub offers it to another host."""
    conf = write_builder_conf(str(tmp_path / 'osbs-only.conf'), str(tmp_path / 'osbs.conf'))
    daemon = Kojid(hub, options, config_file=conf)
    try:
        task_id = hub.add_task('createContainer', ['git://x/y#abc', TARGET, 'x86_64', {}],
                               owner='alice', arch='x86_64')
        daemon.start(task_id)
        task = daemon.wait_state(task_id, states=(koji.TASK_STATES['FREE'],), timeout=30)
    finally:
        daemon.close()
    assert task['host_id'] is None and task['_fault'] is None
    refusal = hub.refusals()[task_id]
    assert 'backend = native' in refusal['msg'] and conf in refusal['msg']


def test_kojid_killed_then_restarted_reruns_the_task(kojid, hub, git_daemon, osbs_double,
                                                     options):
    """kill -9 kojid mid-build, kojid restarts: the orphan stops without acting, kojid
    frees the task it has no process for, the hub gives it back, the re-run reattaches
    to the OSBS run and finishes the task."""
    osbs_double.configure(run={'tasks': [['binary-container-build-x86-64', LINES]],
                               'hold_at': 3})
    params = [git_daemon.url('demo'), TARGET, {'git_branch': 'main'}]
    task_id = hub.add_task('buildContainer', params, owner='alice')
    orphan = kojid.start(task_id)
    name = wait_for(lambda: (osbs_double.runs() or [None])[0], 'the run', timeout=60)
    kojid.kill_kojid()
    kojid.wait(task_id, timeout=30)               # the orphan notices and stops
    assert hub.task(task_id)['state'] == koji.TASK_STATES['OPEN']
    hub.schedule = True
    kojid.restart_kojid()
    rerun = kojid.wait_taken(task_id, not_pid=orphan)
    osbs_double.release(name)
    assert kojid.result(task_id)['koji_builds'] == ['987654']
    assert _pids(osbs_double, 'create_binary_container_build') == set([orphan])
    assert osbs_double.calls('cancel_build') == []
    assert rerun != orphan and not _alive(orphan)


