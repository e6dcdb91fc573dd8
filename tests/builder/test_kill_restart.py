"""Cancellation by real signals (kojid's order and timing) and restart safety, with the
handler in a real child process started by the kojid double."""

import json
import os
import time

import koji
import pytest

from tests.builder.conftest import TARGET, write_builder_conf
from tests.doubles.kojid import Kojid

LINES = ['line %d' % i for i in range(20)]


def wait_for(cond, timeout=60, what='condition'):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError('timed out waiting for %s' % what)


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
                                                               builder_conf, osbs_double,
                                                               make_task):
    task_id, params, name = _start(kojid, hub, git_daemon, builder_conf, osbs_double)
    kojid.kill9(task_id)
    before = hub.uploaded_files(task_id)
    record = json.loads(before['osbs-run.json'])
    assert record['state'] == 'running' and record['name'] == name
    # kojid restarts: the task is freed and runs again from scratch with the same id
    hub.free_task(task_id)
    hub.open_task(task_id)
    osbs_double.release(name)
    cls = type(make_task('buildContainer', params)[1])
    handler = cls(task_id, 'buildContainer', params, hub, kojid.options)
    handler.config_file = builder_conf
    result = handler.run()
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
