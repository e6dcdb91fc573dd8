"""A user's cancel lets the pipeline's finally tasks run: the run is removed only after it
has ended, within kojid's real kill sequence (koji.daemon.TaskManager.cleanupTask:
SIGINT, 3 s, SIGTERM x2, SIGKILL), or left to the cluster's pruning when it cannot end in
time."""

import os
import time

import koji
import pytest

from koji_containerbuild.backends import osbs_cancel
from tests.builder.conftest import TARGET, write_builder_conf
from tests.doubles.kojid import Kojid
from tests.support.waiting import wait_for

LINES = ['line %d' % i for i in range(20)]
EXIT = ['exit: cleaning up', 'exit: reported']


@pytest.fixture
def kojid(hub, options):
    daemon = Kojid(hub, options)
    yield daemon
    daemon.close()


def _start_and_cancel(kojid, hub, git_daemon, osbs_double, tmp_path, finally_seconds):
    conf = write_builder_conf(str(tmp_path / 'cancel.conf'), str(tmp_path / 'osbs.conf'),
                              hub_check_interval='600', cancel_timeout='4.5')
    osbs_double.configure(run={'tasks': [['binary-container-build-x86-64', LINES]],
                               'hold_at': 10, 'finally': [['binary-container-exit', EXIT]],
                               'finally_seconds': finally_seconds})
    params = [git_daemon.url('demo'), TARGET, {'git_branch': 'main'}]
    task_id = hub.add_task('buildContainer', params, owner='alice')
    kojid.start(task_id, 'buildContainer', params, config_file=conf)
    name = wait_for(lambda: (osbs_double.runs() or [None])[0], what='run created')
    wait_for(lambda: hub.uploaded_files(task_id).get('x86_64.log', b'').count(b'\n') >= 10,
             what='lines on the hub')
    pid = kojid.pid(task_id)
    hub.cancel_task(task_id)
    kojid.cancel(task_id)          # the real cleanupTask: SIGINT, 3 s, SIGTERM, ...
    assert not os.path.exists('/proc/%d' % pid) or \
        open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()[0] == 'Z'
    return task_id, name, pid


def _kojid_log(kojid):
    path = getattr(kojid, 'logfile', None)
    return open(path).read() if path and os.path.exists(path) else None


def test_cancel_waits_for_the_finally_tasks_then_removes(kojid, hub, git_daemon,
                                                         osbs_double, tmp_path):
    task_id, name, pid = _start_and_cancel(kojid, hub, git_daemon, osbs_double, tmp_path,
                                           finally_seconds=1.5)
    removed = osbs_double.removed_run(name)
    assert removed is not None and osbs_double.runs() == []
    assert removed['spec_status'] == 'CancelledRunFinally'
    # deleted only after the finally tasks ended and the run reached Cancelled
    assert removed['finally_ended'] is True
    assert removed['condition']['reason'] == 'Cancelled'
    assert removed['deleted_at'] >= removed['finally_ended_at']
    assert [c['pid'] for c in osbs_double.calls('cancel_build:done')] == [pid]
    assert [c['pid'] for c in osbs_double.calls('remove_build')] == [pid]
    assert hub.task(task_id)['state'] == koji.TASK_STATES['CANCELED']


def test_cancel_that_cannot_end_in_time_leaves_the_run_and_says_so(kojid, hub, git_daemon,
                                                                  osbs_double, tmp_path):
    task_id, name, pid = _start_and_cancel(kojid, hub, git_daemon, osbs_double, tmp_path,
                                           finally_seconds=30)
    run = osbs_double.run(name)
    assert run is not None, 'the run was removed while its finally tasks ran'
    assert run['spec_status'] == 'CancelledRunFinally'
    assert run['condition']['reason'] == 'CancelledRunFinally'
    assert osbs_double.calls('remove_build') == []
    log = _kojid_log(kojid)
    if log is not None:
        assert "left for the cluster's pruning" in log


def test_kill_deadline_follows_kojids_signals():
    deadline = osbs_cancel.KillDeadline(10.0)
    assert 4.0 < deadline.left() <= osbs_cancel.AFTER_SIGINT_MAX   # capped before SIGKILL
    deadline.signalled(SystemExit(143))                 # SIGTERM: 2 s before SIGKILL
    assert deadline.left() <= osbs_cancel.AFTER_SIGTERM_MAX
    short = osbs_cancel.KillDeadline(0.5, KeyboardInterrupt())
    assert short.left() <= 0.5
    assert osbs_cancel.KillDeadline(4.5, SystemExit()).left() <= osbs_cancel.AFTER_SIGTERM_MAX


def test_cancel_seen_on_the_hub_also_waits_for_the_finally_tasks(git_daemon, make_task,
                                                                 osbs_double, hub):
    import threading
    from koji_containerbuild import errors
    osbs_double.configure(run={'tasks': [['binary-container-build-x86-64', LINES]],
                               'hold_at': 5, 'finally': [['binary-container-exit', EXIT]],
                               'finally_seconds': 1.0})
    task_id, handler = make_task('buildContainer', [git_daemon.url('demo'), TARGET,
                                                    {'git_branch': 'main'}])

    def _cancel():
        # followed (recorded): a run cancelled before it is recorded is removed at once
        while hub.uploaded_files(task_id).get('x86_64.log', b'').count(b'\n') < 5:
            time.sleep(0.02)
        hub.cancel_task(task_id)     # kojid could not signal (yet): the hub says so
    thread = threading.Thread(target=_cancel)
    thread.start()
    with pytest.raises(errors.BuildCanceled):
        handler.run()
    thread.join()
    (name,) = [c['name'] for c in osbs_double.calls('remove_build')]
    removed = osbs_double.removed_run(name)
    assert removed['finally_ended'] is True and removed['condition']['reason'] == 'Cancelled'
