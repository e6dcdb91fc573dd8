"""buildContainer/buildSourceContainer through the OSBS backend, in process: real
BaseTaskHandler, real koji.daemon.SCM against a git daemon, hub and osbs doubles."""

import json

import koji
import pytest

from koji_containerbuild import errors
from tests.builder.conftest import TARGET


def _src(git_daemon):
    return git_daemon.url('demo')


def _opts(**extra):
    opts = {'git_branch': 'main', 'scratch': False}
    opts.update(extra)
    return opts


def test_success_result_logs_and_create_args(git_daemon, make_task, osbs_double, hub):
    osbs_double.configure(run={'tasks': [
        ['clone', ['cloning']],
        ['binary-container-build-x86-64', ['x1', 'x2']],
        ['binary-container-build-aarch64', ['a1']],
        ['binary-container-postbuild', [
            '2024 - atomic_reactor.x - USER_WARNING - {"message": "Base image is old"}']],
    ]})
    task_id, handler = make_task('buildContainer', [_src(git_daemon), TARGET, _opts()])
    result = handler.run()
    assert result['koji_builds'] == ['987654']
    assert result['user_warnings'] == ['Base image is old']
    assert any(r.endswith('demo-container:1.0-1') for r in result['repositories'])
    (name,) = [c['name'] for c in osbs_double.calls('create_binary_container_build')] or [None]
    runs = osbs_double.calls('create_binary_container_build')
    assert len(runs) == 1
    files = hub.uploaded_files(task_id)
    assert files['x86_64.log'] == b'x1\nx2\n'
    assert files['aarch64.log'] == b'a1\n'
    assert b'clone: cloning' in files['osbs-build.log']
    assert files['user_warnings.log'] == b'Base image is old\n'
    record = json.loads(files['osbs-run.json'])
    assert record['state'] == 'finished' and record['outcome'] == 'succeeded'
    assert record['removed'] is True
    assert osbs_double.runs() == []   # removed afterwards
    (removed,) = osbs_double.calls('remove_build')
    assert removed['name'] == record['name']


def _run_task(make_task, git_daemon, **opts):
    task_id, handler = make_task('buildContainer', [_src(git_daemon), TARGET, _opts(**opts)])
    return task_id, handler


def _created(osbs_double):
    (call,) = osbs_double.calls('create_binary_container_build')
    name = [c['name'] for c in osbs_double.calls('get_build') if c['name']][0]
    return osbs_double.run(name) or osbs_double.removed_run(name)


def test_create_arguments(git_daemon, make_task, osbs_double, hub):
    task_id, handler = _run_task(make_task, git_daemon, scratch=True,
                                 yum_repourls=['http://repo.example.com/a.repo'],
                                 userdata={'k': 'v'})
    result = handler.run()
    assert result == {'repositories': result['repositories'], 'koji_builds': []}
    params = _created(osbs_double)['user_params']
    assert params['user'] == 'alice'
    assert params['koji_task_id'] == task_id and isinstance(params['koji_task_id'], int)
    assert sorted(params['platforms']) == ['aarch64', 'x86_64']
    assert params['component'] == 'demo-container'
    assert params['git_branch'] == 'main' and len(params['git_ref']) == 40
    assert params['git_uri'] == git_daemon.url('demo').split('#')[0]
    assert params['koji_target'] == TARGET
    assert params['scratch'] is True
    assert params['yum_repourls'] == ['http://repo.example.com/a.repo']
    assert params['userdata'] == {'k': 'v'}
    assert params['reactor_config_map'] == 'rcm-scratch'


def test_failure_carries_message_and_run_name(git_daemon, make_task, osbs_double, hub):
    osbs_double.configure(run={'outcome': {'status': 'False', 'reason': 'Failed',
                                           'message': 'Tasks Completed: 3 (Failed: 1)'},
                               'error_message': 'Error in plugin check_base_image: bad;\n'})
    task_id, handler = _run_task(make_task, git_daemon)
    with pytest.raises(errors.BackendError) as info:
        handler.run()
    name = json.loads(hub.uploaded_files(task_id)['osbs-run.json'])['name']
    assert 'check_base_image: bad' in str(info.value) and name in str(info.value)
    assert osbs_double.runs() == []


@pytest.mark.parametrize('reason', ['PipelineRunCancelled', 'Cancelled', 'StoppedRunFinally'])
def test_cancelled_on_osbs_side_cancels_the_task(git_daemon, make_task, osbs_double, hub,
                                                  reason):
    osbs_double.configure(run={'outcome': {'status': 'False', 'reason': reason,
                                           'message': 'cancelled'}})
    task_id, handler = _run_task(make_task, git_daemon)
    with pytest.raises(errors.BuildCanceled):
        handler.run()
    assert hub.task(task_id)['state'] == koji.TASK_STATES['CANCELED']
    assert osbs_double.runs() == []


def test_validation_error_at_create(git_daemon, make_task, osbs_double):
    osbs_double.configure(create={'error': {'type': 'OsbsValidationException',
                                            'message': 'version label missing'}})
    _task_id, handler = _run_task(make_task, git_daemon)
    with pytest.raises(errors.BackendError, match='refused the build: version label missing'):
        handler.run()


def test_other_create_error(git_daemon, make_task, osbs_double):
    osbs_double.configure(create={'error': {'type': 'ConnectionError',
                                            'message': 'clone of https://u:secret@h/x failed'}})
    _task_id, handler = _run_task(make_task, git_daemon)
    with pytest.raises(errors.BackendError) as info:
        handler.run()
    assert 'could not start the build' in str(info.value)
    assert 'secret' not in str(info.value)


def test_lost_create_answer_409_continues_with_the_run(git_daemon, make_task, osbs_double):
    osbs_double.configure(create={'lost_answer': True})
    _task_id, handler = _run_task(make_task, git_daemon)
    assert handler.run()['koji_builds'] == ['987654']
    assert len(osbs_double.calls('create_binary_container_build')) == 1
    assert len(osbs_double.calls('remove_build')) == 1


def test_run_deleted_mid_build_ends_promptly(git_daemon, make_task, osbs_double):
    osbs_double.configure(run={'tasks': [['clone', ['a', 'b', 'c']]], 'hold_at': 1,
                               'deleted_stream_blocks': 60})
    _task_id, handler = _run_task(make_task, git_daemon)
    import threading

    def _delete():
        name = None
        while not name:
            runs = osbs_double.runs()
            name = runs[0] if runs else None
        osbs_double.delete(name)
    thread = threading.Thread(target=_delete)
    thread.start()
    with pytest.raises(errors.BackendError, match='was deleted before it finished'):
        handler.run()
    thread.join()


def test_transient_failures_are_retried_without_loss(git_daemon, make_task, osbs_double,
                                                     hub):
    lines = ['l%d' % i for i in range(8)]
    osbs_double.configure(run={'tasks': [['binary-container-build-x86-64', lines]],
                               'end_early_at': 3,
                               'iter_faults': [{'at': 5, 'type': 'OsbsResponseException',
                                                'message': 'pod log gone', 'bytes': True,
                                                'status_code': 500}]})
    osbs_double.inject('get_build', {'type': 'OsbsNetworkException', 'message': 'timeout',
                                     'status_code': 503}, count=2)
    osbs_double.inject('get_build_logs', {'type': 'ConnectionError', 'message': 'refused'})
    osbs_double.inject('get_build_results', {'type': 'ConnectionError', 'message': 'reset'})
    hub.fail_next('rawUpload', ConnectionError('hub hiccup'), count=2)
    task_id, handler = _run_task(make_task, git_daemon)
    assert handler.run()['koji_builds'] == ['987654']
    files = hub.uploaded_files(task_id)
    assert files['x86_64.log'].decode().splitlines() == lines
    # the pipeline log too: every line once, in order, despite the replays and retries
    assert files['osbs-build.log'].decode().splitlines() == [
        'binary-container-build-x86-64: %s' % line for line in lines]


def test_remove_failure_is_not_fatal(git_daemon, make_task, osbs_double):
    osbs_double.inject('remove_build', {'type': 'OsbsResponseException', 'message': 'no',
                                        'status_code': 403})
    _task_id, handler = _run_task(make_task, git_daemon)
    assert handler.run()['koji_builds'] == ['987654']


def test_hub_freed_task_makes_the_handler_stop_quietly(git_daemon, make_task, osbs_double,
                                                       hub):
    osbs_double.configure(run={'hold_at': 1})
    task_id, handler = _run_task(make_task, git_daemon)
    import threading

    def _free():
        while not osbs_double.runs():
            pass
        hub.free_task(task_id)       # kojid restarted elsewhere: the task was freed
    thread = threading.Thread(target=_free)
    thread.start()
    with pytest.raises(SystemExit):
        handler.run()
    thread.join()
    assert handler.workdir is None          # BaseTaskHandler.run did not remove it
    assert osbs_double.calls('cancel_build') == []
    assert len(osbs_double.runs()) == 1


def test_previous_finished_attempt_is_reported(git_daemon, make_task, osbs_double, hub):
    task_id, handler = _run_task(make_task, git_daemon)
    first = handler.run()
    handler2 = type(handler)(task_id, 'buildContainer', handler.params and
                             [_src(git_daemon), TARGET, _opts()], hub, handler.options)
    handler2.config_file = handler.config_file
    assert handler2.run() == first
    assert len(osbs_double.calls('create_binary_container_build')) == 1


def test_source_container_build(make_task, osbs_double, hub):
    build = hub.add_build('demo-container-1.0-3', extra={'image': {}})
    task_id, handler = make_task('buildSourceContainer',
                                 [TARGET, {'koji_build_id': build['id']}])
    hub.add_package(TARGET, 'demo-container-source')
    result = handler.run()
    assert result['koji_builds'] == ['987654']
    (call,) = osbs_double.calls('create_source_container_build')
    name = json.loads(hub.uploaded_files(task_id)['osbs-run.json'])['name']
    params = osbs_double.removed_run(name)['user_params']
    assert params['component'] == 'demo-container-source'
    assert params['sources_for_koji_build_id'] == build['id']
    assert params['sources_for_koji_build_nvr'] == 'demo-container-1.0-3'
    assert params['user'] == 'alice' and params['koji_task_id'] == task_id


def test_missing_osbs_client(git_daemon, make_task, monkeypatch):
    monkeypatch.setitem(__import__('sys').modules, 'osbs', None)
    _task_id, handler = _run_task(make_task, git_daemon)
    with pytest.raises(errors.BackendError, match='osbs-client is not installed on this builder'):
        handler.run()


def test_plugin_loads_without_osbs_client():
    import subprocess
    import sys
    code = ('import sys; sys.modules["osbs"] = None; import koji.plugin; '
            'm = koji.plugin.PluginTracker(path="builder").load("builder_containerbuild"); '
            'print(sorted(c.Methods[0] for c in vars(m).values() '
            'if isinstance(c, type) and getattr(c, "Methods", None)))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         cwd=__import__('tests.builder.conftest').builder.conftest.ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["['buildContainer',", "'buildSourceContainer',",
                                  "'createContainer']"]


def test_cancel_seen_on_hub_cancels_the_run(git_daemon, make_task, osbs_double, hub):
    osbs_double.configure(run={'hold_at': 1})
    task_id, handler = _run_task(make_task, git_daemon)
    import threading

    def _cancel():
        while not osbs_double.runs():
            pass
        hub.cancel_task(task_id)     # kojid is gone, so no signal comes
    thread = threading.Thread(target=_cancel)
    thread.start()
    with pytest.raises(errors.BuildCanceled):
        handler.run()
    thread.join()
    # cancelled first, then removed
    assert osbs_double.runs() == []
    (cancelled,) = osbs_double.calls('cancel_build:done')
    (removed,) = osbs_double.calls('remove_build')
    assert cancelled['name'] == removed['name'] and cancelled['t'] <= removed['t']
    assert osbs_double.removed_run(removed['name'])['spec_status'] == 'CancelledRunFinally'


def test_unknown_koji_build_id_is_a_clear_failure(git_daemon, make_task, osbs_double, hub):
    # OSBS (another hub, or a koji_import that did not happen) reports a build this hub
    # does not know: listing it would break Koji web's taskinfo page and rpkg
    osbs_double.configure(run={'results': {
        'repositories': {'primary': ['registry.example.com/containers/x:1.0-1']},
        'koji-build-id': 123456789}})
    task_id, handler = _run_task(make_task, git_daemon)
    with pytest.raises(errors.BackendError) as info:
        handler.run()
    assert 'reported Koji build 123456789, which does not exist on the hub' in str(info.value)
    record = json.loads(hub.uploaded_files(task_id)['osbs-run.json'])
    assert record['outcome'] == 'failed' and record['name'] in str(info.value)
    assert 'result' not in record
    assert osbs_double.runs() == []
