"""Failures after the run started, and finding a run a previous attempt created but did
not record: in process, real BaseTaskHandler, hub and osbs doubles."""

import copy
import json
import logging
import threading
import time

import koji
import pytest

from koji_containerbuild import errors
from koji_containerbuild.backends import osbs_run
from tests.builder.conftest import TARGET
from tests.doubles.osbs._cluster import DEFAULT_RUN

LINES = ['line %d' % i for i in range(6)]
PARAMS_OPTS = {'git_branch': 'main', 'scratch': False}


def _params(git_daemon):
    return [git_daemon.url('demo'), TARGET, dict(PARAMS_OPTS)]


def _record(hub, task_id, **fields):
    data = dict({'version': 1, 'kind': 'binary', 'section': 'default_binary',
                 'namespace': 'ns-default-binary', 'scratch': False, 'arches': ['x86_64'],
                 'attempts': 1}, **fields)
    hub.rawUpload(json.dumps(data).encode(), 0, koji.pathinfo.taskrelpath(task_id),
                  'osbs-run.json', overwrite=True)


def _add_run(osbs_double, name, koji_task_id, **script):
    run = copy.deepcopy(DEFAULT_RUN)
    run['tasks'] = [['binary-container-build-x86-64', list(LINES)]]
    run.update(script)
    params = {'component': 'demo-container', 'koji_target': TARGET, 'user': 'alice',
              'kind': 'build_user_params', 'koji_task_id': koji_task_id}
    osbs_double.add_run(name, 'ns-default-binary', 'binary-container', params, run)
    return name


def _record_of(hub, task_id):
    return json.loads(hub.uploaded_files(task_id)['osbs-run.json'])


# ------------------------------------------------------------------ failures after start

def test_results_failure_after_success_is_a_koji_fault_and_removes_the_run(
        git_daemon, make_task, osbs_double, hub):
    osbs_double.inject('get_build_results', {'type': 'OsbsResponseException',
                                             'message': 'forbidden', 'status_code': 403})
    task_id, handler = make_task('buildContainer', _params(git_daemon))
    with pytest.raises(errors.BackendError) as info:
        handler.run()
    record = _record_of(hub, task_id)
    assert record['name'] in str(info.value) and 'forbidden' in str(info.value)
    assert record['state'] == 'finished' and record['outcome'] == 'failed'
    assert osbs_double.runs() == []
    assert [c['name'] for c in osbs_double.calls('remove_build')] == [record['name']]


def test_non_transient_hub_error_while_following(git_daemon, make_task, osbs_double, hub):
    osbs_double.configure(run={'hold_at': 1})
    task_id, handler = make_task('buildContainer', _params(git_daemon))

    def _break_hub():
        while not osbs_double.runs():
            time.sleep(0.01)
        hub.fail_next('getTaskInfo', koji.AuthError('session expired'), count=1000)
    thread = threading.Thread(target=_break_hub)
    thread.start()
    try:
        with pytest.raises(errors.BackendError) as info:
            handler.run()
    finally:
        thread.join()
        hub.fail_next('getTaskInfo', None, count=0)
    record = _record_of(hub, task_id)
    assert 'session expired' in str(info.value) and record['name'] in str(info.value)
    assert record['state'] == 'finished' and record['outcome'] == 'failed'
    assert osbs_double.runs() == []


class _FlakySizes(object):
    """The hub, whose listTaskOutput(stat=True) fails `count` times with a network
    error (as right after a kojid restart)."""

    def __init__(self, hub, count):
        self._hub = hub
        self.count = count

    def listTaskOutput(self, task_id, stat=False, **kwargs):
        if stat and self.count > 0:
            self.count -= 1
            raise ConnectionError('hub restarting')
        return self._hub.listTaskOutput(task_id, stat=stat, **kwargs)

    def __getattr__(self, name):
        return getattr(self._hub, name)


def test_reattach_retries_the_output_listing_and_resumes_exactly(
        git_daemon, make_task, osbs_double, hub):
    task_id, handler = make_task('buildContainer', _params(git_daemon))
    name = _add_run(osbs_double, 'demo-main-abcde12345-20240501120000', task_id)
    _record(hub, task_id, state='running', name=name)
    upload = koji.pathinfo.taskrelpath(task_id)
    # the previous attempt got the first two lines of each log onto the hub
    hub.rawUpload(b'line 0\nline 1\n', 0, upload, 'x86_64.log', overwrite=True)
    hub.rawUpload(b''.join(b'binary-container-build-x86-64: line %d\n' % i for i in (0, 1)),
                  0, upload, 'osbs-build.log', overwrite=True)
    flaky = _FlakySizes(hub, 2)
    handler2 = type(handler)(task_id, 'buildContainer', _params(git_daemon), flaky,
                             handler.options)
    handler2.config_file = handler.config_file
    assert handler2.run()['koji_builds'] == ['987654']
    assert flaky.count == 0
    files = hub.uploaded_files(task_id)
    assert files['x86_64.log'].decode().splitlines() == LINES
    assert files['osbs-build.log'].decode().splitlines() == [
        'binary-container-build-x86-64: %s' % line for line in LINES]
    assert osbs_double.calls('create_binary_container_build') == []


# ------------------------------------------------------------------ a "creating" record

def test_creating_record_reattaches_to_the_run_found_by_task_id(git_daemon, make_task,
                                                                osbs_double, hub):
    task_id, handler = make_task('buildContainer', _params(git_daemon))
    decoy = _add_run(osbs_double, 'other-main-abcde11111-20240501110000', task_id + 1)
    name = _add_run(osbs_double, 'demo-main-abcde12345-20240501120000', task_id)
    _record(hub, task_id, state='creating')
    assert handler.run()['koji_builds'] == ['987654']
    assert osbs_double.calls('create_binary_container_build') == []
    assert [c['name'] for c in osbs_double.calls('remove_build')] == [name]
    assert osbs_double.runs() == [decoy]
    record = _record_of(hub, task_id)
    assert record['name'] == name and record['outcome'] == 'succeeded'
    assert hub.uploaded_files(task_id)['x86_64.log'].decode().splitlines() == LINES


def test_creating_record_without_a_run_builds_once(git_daemon, make_task, osbs_double,
                                                   hub):
    task_id, handler = make_task('buildContainer', _params(git_daemon))
    decoy = _add_run(osbs_double, 'other-main-abcde11111-20240501110000', task_id + 1)
    _record(hub, task_id, state='creating')
    assert handler.run()['koji_builds'] == ['987654']
    assert len(osbs_double.calls('create_binary_container_build')) == 1
    assert osbs_double.runs() == [decoy]


@pytest.mark.parametrize('damage', ['not json', '{"items": 3}', None])
def test_listing_failure_falls_back_to_building(git_daemon, make_task, osbs_double, hub,
                                                caplog, damage):
    task_id, handler = make_task('buildContainer', _params(git_daemon))
    _add_run(osbs_double, 'demo-main-abcde12345-20240501120000', task_id)
    path = osbs_double.listing_path('ns-default-binary')
    if damage is None:
        import os
        os.unlink(path)
    else:
        with open(path, 'w') as fobj:
            fobj.write(damage)
    _record(hub, task_id, state='creating')
    with caplog.at_level(logging.WARNING):
        assert handler.run()['koji_builds'] == ['987654']
    assert 'Cannot look for a pipeline run of task %s' % task_id in caplog.text
    assert len(osbs_double.calls('create_binary_container_build')) == 1


def test_user_params_parsing():
    run = {'metadata': {'name': 'r'}, 'spec': {'params': [
        {'name': 'other', 'value': '{"koji_task_id": 1}'},
        {'name': 'user_params', 'value': '{"koji_task_id": 7}'}]}}
    assert osbs_run.user_params_of(run) == {'koji_task_id': 7}
    for bad in ({}, {'spec': []}, {'spec': {'params': 'x'}},
                {'spec': {'params': [{'name': 'user-params', 'value': '{bad'}]}},
                {'spec': {'params': [{'name': 'user-params', 'value': '[1]'}]}}):
        assert osbs_run.user_params_of(bad) is None

    class Conf(object):
        def get_namespace(self):
            return 'ns'
    runs = [{'metadata': {'name': 'a', 'creationTimestamp': '2024-01-01T00:00:00Z'},
             'spec': {'params': [{'name': 'user-params', 'value': {'koji_task_id': 5}}]}},
            {'metadata': {'name': 'b', 'creationTimestamp': '2024-01-02T00:00:00Z'},
             'spec': {'params': [{'name': 'user-params', 'value': '{"koji_task_id": "5"}'}]}},
            {'metadata': {'name': 'c'},
             'spec': {'params': [{'name': 'user-params', 'value': '{"koji_task_id": true}'}]}}]
    log = logging.getLogger('test')
    assert osbs_run.find_run_of_task(Conf(), 5, log, lister=lambda conf: runs) == 'b'
    assert osbs_run.find_run_of_task(Conf(), 1, log, lister=lambda conf: runs) is None
