"""Cancellation by real signals (kojid's order and timing) and restart safety, with the
task run by the kojid double (koji.daemon.TaskManager in a separate kojid process)."""

import json
import os

import koji
import pytest

from tests.builder.conftest import TARGET, write_builder_conf
from tests.doubles.kojid import Kojid
from tests.support.waiting import wait_for
from tests.support.slowgit import slow_git

LINES = ['line %d' % i for i in range(20)]


@pytest.fixture
def kojid(hub, options):
    daemon = Kojid(hub, options)
    yield daemon
    daemon.close()


def _start(kojid, hub, git_daemon, builder_conf, osbs_double, **kw):
    osbs_double.configure(run={'tasks': [['binary-container-build-x86-64', LINES]],
                               'hold_at': 10})
    params = [git_daemon.url('demo'), TARGET, {'git_branch': 'main'}]
    task_id = hub.add_task('buildContainer', params, owner='alice')
    kojid.start(task_id, 'buildContainer', params, config_file=builder_conf, **kw)
    name = wait_for(lambda: (osbs_double.runs() or [None])[0], what='run created')
    wait_for(lambda: hub.uploaded_files(task_id).get('x86_64.log', b'').count(b'\n') >= 10,
             what='first 10 lines on the hub')
    return task_id, params, name


def test_kojid_cancel_cancels_the_run_before_the_process_dies(kojid, hub, git_daemon,
                                                               osbs_double, tmp_path):
    # the handler must not learn of the cancel from the hub first: only the signals tell it
    conf = write_builder_conf(str(tmp_path / 'slow-hub-check.conf'),
                              str(tmp_path / 'osbs.conf'), hub_check_interval='600')
    task_id, _params, name = _start(kojid, hub, git_daemon, conf, osbs_double)
    pid = kojid.pid(task_id)
    hub.cancel_task(task_id)             # the user cancels; kojid notices and kills
    kojid.cancel(task_id)
    done = [c for c in osbs_double.calls('cancel_build:done') if c['pid'] == pid]
    assert done, 'the OSBS run was not cancelled by the task process'
    assert not os.path.exists('/proc/%d' % pid)
    # cancelled, then removed, by the task process itself
    assert [c['pid'] for c in osbs_double.calls('remove_build')] == [pid]
    assert osbs_double.runs() == []
    assert osbs_double.removed_run(name)['spec_status'] == 'CancelledRunFinally'
    assert hub.task(task_id)['state'] == koji.TASK_STATES['CANCELED']
    assert osbs_double.calls('create_binary_container_build')[0]['pid'] == pid


def test_restart_after_sigkill_reattaches_without_duplicates(kojid, hub, git_daemon,
                                                               builder_conf, osbs_double):
    task_id, params, name = _start(kojid, hub, git_daemon, builder_conf, osbs_double)
    first = kojid.pid(task_id)
    kojid.kill9(task_id)
    before = hub.uploaded_files(task_id)
    record = json.loads(before['osbs-run.json'])
    assert record['state'] == 'running' and record['name'] == name
    # kojid reaps the dead process and frees the OPEN task it has no process for; the
    # hub gives it back and the same id runs again from scratch, in a new process
    hub.schedule = True
    second = kojid.wait_taken(task_id, not_pid=first)
    assert second != first
    osbs_double.release(name)
    result = kojid.result(task_id)
    assert result['koji_builds'] == ['987654']
    assert len(osbs_double.calls('create_binary_container_build')) == 1
    files = hub.uploaded_files(task_id)
    assert files['x86_64.log'].decode().splitlines() == LINES
    assert files['osbs-build.log'].decode().splitlines() == [
        'binary-container-build-x86-64: %s' % line for line in LINES]


def test_orphan_that_lost_its_task_leaves_run_and_workdir(kojid, hub, git_daemon,
                                                        builder_conf, osbs_double, options):
    task_id, _params, name = _start(kojid, hub, git_daemon, builder_conf, osbs_double,
                                    via_kojid=True)
    workdir = os.path.join(options.workdir, koji.pathinfo.taskrelpath(task_id))
    assert os.path.isdir(workdir)
    kojid.kill_kojid(task_id)            # kill -9 kojid: the task process is orphaned
    kojid.wait(task_id, timeout=30)
    assert osbs_double.calls('cancel_build') == []
    assert osbs_double.run(name)['spec_status'] is None     # still running for the re-run
    assert os.path.isdir(workdir)                           # not deleted under the re-run
    assert hub.task(task_id)['state'] == koji.TASK_STATES['OPEN']


def test_kojid_killed_during_planning_orphan_never_creates_nor_removes_workdir(
        hub, options, git_daemon, builder_conf, osbs_double, make_task, tmp_path):
    bindir, gate = slow_git(tmp_path)
    daemon = Kojid(hub, options, env={'PATH': '%s:%s' % (bindir, os.environ['PATH'])})
    try:
        osbs_double.configure(run={'tasks': [['binary-container-build-x86-64', LINES]],
                                   'hold_at': 10})
        params = [git_daemon.url('demo'), TARGET, {'git_branch': 'main'}]
        task_id = hub.add_task('buildContainer', params, owner='alice')
        daemon.start(task_id, 'buildContainer', params, config_file=builder_conf,
                     via_kojid=True)
        wait_for(lambda: os.path.exists('%s.waiting' % gate), what='orphan in git fetch')
        daemon.kill_kojid(task_id)       # kill -9 kojid while the task fetches its source
        # kojid restarts: the same task runs again, here, while the orphan still lives
        hub.free_task(task_id)
        hub.open_task(task_id)
        cls = type(make_task('buildContainer', params)[1])
        handler = cls(task_id, 'buildContainer', params, hub, options)
        handler.config_file = builder_conf
        box = {}
        import threading
        rerun = threading.Thread(target=lambda: box.setdefault('result', handler.run()))
        rerun.start()
        name = wait_for(lambda: (osbs_double.runs() or [None])[0], what='re-run created')
        workdir = handler.workdir
        assert os.path.isdir(workdir)
        open('%s.open' % gate, 'w').close()     # the orphan's fetch goes on
        daemon.wait(task_id, timeout=60)
        assert os.path.isdir(workdir)           # the orphan left the re-run's workdir alone
        osbs_double.release(name)
        rerun.join(60)
        assert box['result']['koji_builds'] == ['987654']
        creates = osbs_double.calls('create_binary_container_build')
        assert len(creates) == 1 and creates[0]['pid'] == os.getpid()
        assert osbs_double.calls('cancel_build') == []
    finally:
        daemon.close()


def test_sigint_during_create_cancels_and_removes_the_created_run(
        kojid, hub, git_daemon, osbs_double, tmp_path):
    conf = write_builder_conf(str(tmp_path / 'slow-hub-check.conf'),
                              str(tmp_path / 'osbs.conf'), hub_check_interval='600')
    # the POST is done but its answer takes a while: the name is not known yet
    osbs_double.configure(create={'answer_delay': 1.0})
    params = [git_daemon.url('demo'), TARGET, {'git_branch': 'main'}]
    task_id = hub.add_task('buildContainer', params, owner='alice')
    kojid.start(task_id, 'buildContainer', params, config_file=conf)
    (posted,) = wait_for(lambda: osbs_double.calls('create:posted'), what='POST done')
    pid = kojid.pid(task_id)
    hub.cancel_task(task_id)
    kojid.cancel(task_id)
    assert [c['name'] for c in osbs_double.calls('cancel_build:done')
            if c['pid'] == pid] == [posted['name']]
    assert [c['pid'] for c in osbs_double.calls('remove_build')] == [pid]
    assert osbs_double.runs() == []


def test_reattach_while_the_orphan_still_uploads(hub, options, git_daemon, osbs_double,
                                                make_task, tmp_path, builder_conf):
    lines = ['line %d' % i for i in range(200)]
    # the orphan notices its dead parent only after poll_interval: it keeps uploading
    slow = write_builder_conf(str(tmp_path / 'slow-orphan.conf'), str(tmp_path / 'osbs.conf'),
                              poll_interval='3', hub_check_interval='600')
    osbs_double.configure(run={'tasks': [['binary-container-build-x86-64', lines]],
                               'pace': 0.01})
    params = [git_daemon.url('demo'), TARGET, {'git_branch': 'main'}]
    task_id = hub.add_task('buildContainer', params, owner='alice')
    daemon = Kojid(hub, options)
    try:
        daemon.start(task_id, 'buildContainer', params, config_file=slow, via_kojid=True)
        wait_for(lambda: hub.uploaded_files(task_id).get('x86_64.log', b'').count(b'\n') >= 20,
                 what='orphan uploading')
        daemon.kill_kojid(task_id)
        hub.free_task(task_id)
        hub.open_task(task_id)
        cls = type(make_task('buildContainer', params)[1])
        handler = cls(task_id, 'buildContainer', params, hub, options)
        handler.config_file = builder_conf
        orphan = daemon.pid(task_id)
        assert os.path.exists('/proc/%d' % orphan)      # both alive at once
        result = handler.run()
        daemon.wait(task_id, timeout=30)
    finally:
        daemon.close()
    assert result['koji_builds'] == ['987654']
    assert len(osbs_double.calls('create_binary_container_build')) == 1
    files = hub.uploaded_files(task_id)
    assert files['x86_64.log'].decode().splitlines() == lines
    assert files['osbs-build.log'].decode().splitlines() == [
        'binary-container-build-x86-64: %s' % line for line in lines]
