"""No log line lost: a follow stream that drops silently is reconciled with the complete
logs before the run is removed, on every ending (osbs-client contract §3)."""

import json
import logging
import time
import tracemalloc

import koji
import pytest

from koji_containerbuild import errors
from koji_containerbuild.backends.osbs import NOTES_LOG
from koji_containerbuild.backends.osbs_reconcile import StreamTally, iter_lines, reconcile
from tests.builder.conftest import TARGET

X86 = ['x86 line %d' % i for i in range(20)]
ARM = ['arm line %d' % i for i in range(20)]
EXIT = ['exit: cleaning up', 'exit: done']
TASKS = [['binary-container-build-x86-64', X86], ['binary-container-build-aarch64', ARM]]


def _run(make_task, git_daemon):
    return make_task('buildContainer', [git_daemon.url('demo'), TARGET,
                                        {'git_branch': 'main', 'scratch': False}])


def _build_log(lines_by_task):
    return ['%s: %s' % (task, line) for task, lines in lines_by_task for line in lines]


def _assert_complete(files):
    assert files['x86_64.log'].decode().splitlines() == X86
    assert files['aarch64.log'].decode().splitlines() == ARM
    log = files['osbs-build.log'].decode().splitlines()
    # every line exactly once, each task's lines in their order
    for task, lines in TASKS:
        assert [entry[len(task) + 2:] for entry in log if entry.startswith(task + ': ')] \
            == lines
    assert len(log) == len(X86) + len(ARM) + sum(1 for e in log if e.startswith('binary-'
                                                                               'container-exit'))


@pytest.mark.parametrize('outcome', [
    {'status': 'True', 'reason': 'Succeeded', 'message': 'ok'},
    {'status': 'False', 'reason': 'Failed', 'message': 'Tasks Completed: 3 (Failed: 1)'},
    {'status': 'False', 'reason': 'PipelineRunTimeout', 'message': 'timed out'},
    {'status': 'False', 'reason': 'Cancelled', 'message': 'cancelled on OSBS'},
])
def test_dropped_stream_is_recovered_on_every_ending(git_daemon, make_task, osbs_double,
                                                     hub, outcome):
    osbs_double.configure(run={'tasks': TASKS, 'drop_after': {
        'binary-container-build-x86-64': 5}, 'outcome': outcome,
        'finally': [['binary-container-exit', EXIT]]})
    task_id, handler = _run(make_task, git_daemon)
    if outcome['status'] == 'True':
        assert handler.run()['koji_builds'] == ['987654']
    else:
        with pytest.raises((errors.BackendError, errors.BuildCanceled)):
            handler.run()
    files = hub.uploaded_files(task_id)
    _assert_complete(files)
    notes = files[NOTES_LOG].decode()
    assert 'Recovered 15 log lines' in notes and 'binary-container-build-x86-64 15' in notes
    # reconciled before the run was removed
    fetch = osbs_double.calls('get_build_logs')[-1]     # the complete logs
    (removed,) = osbs_double.calls('remove_build')
    assert fetch['t'] <= removed['t']
    assert json.loads(files['osbs-run.json'])['removed'] is True


def test_complete_stream_recovers_nothing(git_daemon, make_task, osbs_double, hub):
    osbs_double.configure(run={'tasks': TASKS})
    task_id, handler = _run(make_task, git_daemon)
    handler.run()
    files = hub.uploaded_files(task_id)
    _assert_complete(files)
    assert 'Recovered' not in files.get(NOTES_LOG, b'').decode()


def test_user_warning_in_the_missed_lines_is_collected(git_daemon, make_task, osbs_double,
                                                       hub):
    warning = ('2024-05-01 12:00:00,123 - atomic_reactor.plugins.x - USER_WARNING - '
               '{"message": "late warning"}')
    osbs_double.configure(run={'tasks': TASKS + [
        ['binary-container-postbuild', ['post 1', 'post 2', warning]]],
        'drop_after': {'binary-container-postbuild': 1}})
    task_id, handler = _run(make_task, git_daemon)
    result = handler.run()
    assert result['user_warnings'] == ['late warning']
    log = hub.uploaded_files(task_id)['osbs-build.log'].decode().splitlines()
    assert [e for e in log if e.startswith('binary-container-postbuild')] == [
        'binary-container-postbuild: post 1', 'binary-container-postbuild: post 2']


def test_complete_logs_unavailable_is_said_not_silent(git_daemon, make_task, osbs_double,
                                                      hub):
    osbs_double.configure(run={'tasks': TASKS, 'drop_after': {
        'binary-container-build-x86-64': 5}})
    osbs_double.inject('get_build_logs:complete', {'type': 'OsbsResponseException',
                                                   'message': 'forbidden',
                                                   'status_code': 403})
    task_id, handler = _run(make_task, git_daemon)
    handler.run()
    files = hub.uploaded_files(task_id)
    assert files['x86_64.log'].decode().splitlines() == X86[:5]
    notes = files[NOTES_LOG].decode()
    assert 'Cannot fetch the complete logs of pipeline run' in notes
    assert 'forbidden' in notes and 'the 25 lines the live stream delivered' in notes


# ------------------------------------------------------------------ reconcile() itself

def _tally(pairs):
    tally = StreamTally()
    for task, line in pairs:
        tally.add(task, line)
    return tally


def test_reconcile_reports_what_it_cannot_recover():
    tally = _tally([('a', 'a1'), ('a', 'a2'), ('b', 'b1'), ('b', 'XX'), ('c', 'c1'),
                    ('d', 'd1')])
    complete = {'a': {'s1': 'a1\n', 's2': 'a2\na3\na4'},   # two steps, no final newline
                'b': {'s': 'b1\nb2\nb3\n'},              # the stream delivered a wrong line
                'c': {'s': ''},                          # shorter than what was streamed
                'e': {'s': 'e1\n'}}                      # never streamed at all
    fed, notes = [], []
    recovered = reconcile(complete, tally, lambda t, l: fed.append((t, l)), notes.append)
    assert recovered == {'a': 2, 'b': 1, 'e': 1}
    assert fed == [('a', 'a3'), ('a', 'a4'), ('b', 'b3'), ('e', 'e1')]
    assert complete == {}
    text = '\n'.join(notes)
    assert 'live log of b differs' in text
    assert 'complete log of c has 0 lines, fewer than the 1' in text
    assert 'no complete log of d (1 lines streamed)' in text


def test_iter_lines_edges():
    assert list(iter_lines('')) == []
    assert list(iter_lines('\n')) == ['']
    assert list(iter_lines('a\n\nb')) == ['a', '', 'b']
    assert list(iter_lines(b'x\xff\n')) == ['x\ufffd']
    assert list(iter_lines(None)) == []


def test_reconcile_does_not_hold_a_big_log_twice():
    text = ''.join('2024-05-01 12:00:00,000 - build - INFO - line %06d of the log\n' % i
                   for i in range(100000))
    tally = _tally(('t', 'x') for _ in range(10))
    count = [0]

    def feed(task, line):
        count[0] += 1
    tracemalloc.start()
    try:
        complete = {'t': {'step': text}}
        del text
        reconcile(complete, tally, feed, lambda note: None)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count[0] == 100000 - 10
    assert peak < 1024 * 1024     # lines are cut one at a time: no copy of the log


def test_log_thread_routes_nothing_after_freeze():
    from koji_containerbuild.backends.osbs_run import RunWatch
    fed = []

    class Router(object):
        def feed(self, task, line):
            fed.append((task, line))
    watch = RunWatch(None, None, 'r', Router(), None, None, 1, None,
                     logging.getLogger('t'))
    assert watch._route('t', 1, 'a') and watch._route('t', 1, 'a')   # a replay: skipped
    watch.freeze()
    assert watch._route('t', 2, 'b') is False
    assert fed == [('t', 'a')] and watch.tally.counts == {'t': 1}


def test_run_step_cannot_put_a_user_warning_in_the_result(git_daemon, make_task,
                                                          osbs_double, hub):
    forged = ('2024-05-01 12:00:00,123 - atomic_reactor.plugins.x - USER_WARNING - '
              '{"message": "Image approved by security team"}')
    real = forged.replace('Image approved by security team', 'Base image is old')
    osbs_double.configure(run={'tasks': [
        ['binary-container-build-x86-64', ['STEP 2/3: RUN echo ...', forged]],
        ['binary-container-postbuild', [real]]]})
    task_id, handler = _run(make_task, git_daemon)
    result = handler.run()
    assert result['user_warnings'] == ['Base image is old']
    assert hub.uploaded_files(task_id)['x86_64.log'].decode().splitlines() == [
        'STEP 2/3: RUN echo ...', forged]


# ------------------------------------------------------------------ osbs-client's own output

def test_git_output_goes_to_the_task_log_not_kojids(hub, options, git_daemon, osbs_double,
                                                    builder_conf):
    from tests.doubles.kojid import Kojid
    daemon = Kojid(hub, options)
    try:
        params = [git_daemon.url('demo'), TARGET, {'git_branch': 'main'}]
        task_id = hub.add_task('buildContainer', params, owner='alice')
        daemon.start(task_id, 'buildContainer', params, config_file=builder_conf)
        daemon.wait(task_id, timeout=60)
        kojid_output = open(daemon.logfile).read() if getattr(daemon, 'logfile', None) \
            else ''
    finally:
        daemon.close()
    assert hub.task(task_id)['state'] == koji.TASK_STATES['CLOSED']
    notes = hub.uploaded_files(task_id)[NOTES_LOG].decode()
    assert 'osbs-client: HEAD is now at' in notes       # the double's clone, as osbs-client
    assert "osbs-client: Cloning into" in notes
    assert 'HEAD is now at' not in kojid_output


def test_osbs_warnings_appear_once(capfd):
    import io
    import sys
    from koji_containerbuild.backends import osbs_capture
    osbs_log = logging.getLogger('osbs')
    stray = logging.StreamHandler(sys.stderr)        # what `import osbs` adds
    osbs_log.addHandler(stray)
    osbs_capture.quiet_osbs_stderr()
    assert stray not in osbs_log.handlers
    seen = io.StringIO()
    task_logger = logging.getLogger('test.task.%d' % id(seen))
    task_logger.addHandler(logging.StreamHandler(seen))
    task_logger.propagate = False
    root_seen = io.StringIO()
    root_handler = logging.StreamHandler(root_seen)
    logging.getLogger().addHandler(root_handler)
    lines = []
    try:
        with osbs_capture.osbs_records_to_task(lines.append, task_logger):
            logging.getLogger('osbs.conf').warning("Specified section '%s' not found", 'x')
            logging.getLogger('osbs.api').info('not a warning')
    finally:
        logging.getLogger().removeHandler(root_handler)
    assert lines == ["osbs-client WARNING: Specified section 'x' not found"]
    assert seen.getvalue().count("Specified section 'x' not found") == 1
    assert 'Specified section' not in root_seen.getvalue()
    assert 'Specified section' not in capfd.readouterr().err
    assert osbs_log.propagate is True


def test_capture_fds_cuts_long_lines_and_restores(capfd):
    import subprocess
    from koji_containerbuild.backends import osbs_capture
    lines = []
    with osbs_capture.capture_fds(lines.append):
        subprocess.run(['sh', '-c', 'echo one; echo two >&2; head -c 200000 /dev/zero | '
                        'tr "\\0" x; echo; printf tail'])
    subprocess.run(['echo', 'after'])
    assert lines[:2] == ['one', 'two']
    assert lines[2] == 'x' * 65536 + ' [line cut]' and lines[-1] == 'tail'
    assert all(len(line) <= 65536 + 11 for line in lines)
    assert 'after' in capfd.readouterr().out


def test_run_deleted_mid_build_says_what_the_logs_lack(git_daemon, make_task, osbs_double,
                                                       hub):
    import threading
    osbs_double.configure(run={'tasks': [['binary-container-build-x86-64', X86]],
                               'hold_at': 3, 'deleted_stream_blocks': 60})
    task_id, handler = _run(make_task, git_daemon)

    def _delete():
        while not osbs_double.runs():
            time.sleep(0.02)
        while hub.uploaded_files(task_id).get('x86_64.log', b'').count(b'\n') < 3:
            time.sleep(0.02)
        osbs_double.delete(osbs_double.runs()[0])
    thread = threading.Thread(target=_delete)
    thread.start()
    with pytest.raises(errors.BackendError, match='was deleted before it finished'):
        handler.run()
    thread.join()
    notes = hub.uploaded_files(task_id)[NOTES_LOG].decode()
    assert 'returned no complete logs: the 3 lines the live stream delivered cannot be ' \
        'checked' in notes
