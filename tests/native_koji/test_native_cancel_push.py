"""A cancelled or orphaned createContainer pushes nothing: real task processes (the kojid
double), kojid's own cancel (TaskManager.cleanupTask: deepest process first), real
buildah and docker-distribution."""

import os

import koji
import pytest

from tests.native_koji.conftest import buildah_available
from tests.native_koji.signals_support import (SLEEP_RUN, arch_task, busybox_repo,
                                               gone_or_zombie, registry_tags, storage_left,
                                               task_log, task_workdir, wait_for)

needs_buildah = pytest.mark.skipif(not buildah_available(), reason='needs buildah as root')


def _start(world, kojid, registry_url, git_server, repo_name, repository, **kw):
    src, sha = busybox_repo(git_server, repo_name, repository, SLEEP_RUN)
    task_id, args = arch_task(world, registry_url, src, sha, repository)
    kojid.start(task_id, 'createContainer', args,
                config_file=str(world.tmp / 'builder_containerbuild.conf'), **kw)
    wait_for(lambda: 'start' in task_log(world.hub, task_id).splitlines(),
             'the RUN step to start')
    return task_id


@needs_buildah
def test_cancel_during_run_pushes_nothing(world, kojid, registry_url, git_server):
    """The issue's case: kojid signals `sleep` first, the shell goes on and buildah
    commits; the task checks its task right before pushing and stops."""
    task_id = _start(world, kojid, registry_url, git_server, 'cancel-run', 'acme/cancel-run')
    world.hub.cancel_task(task_id)           # the user cancels; kojid notices and kills
    kojid.cancel(task_id)
    assert world.hub.task(task_id)['state'] == koji.TASK_STATES['CANCELED']
    assert registry_tags(registry_url, 'acme/cancel-run') == []
    assert 'Pushing' not in task_log(world.hub, task_id)
    assert storage_left(world) == []
    assert not os.path.exists(task_workdir(world.options, task_id))
    assert not [p for p in _pids() if _cmdline(p).startswith('/bin/busybox sleep 60')]


@needs_buildah
def test_orphan_stops_its_build_and_pushes_nothing(world, kojid, registry_url, git_server):
    """kill -9 kojid during the RUN step: the task process, now an orphan, kills its
    buildah process group within a second, leaves the work directory (its task's re-run
    uses the same path) and the task OPEN, and pushes nothing."""
    task_id = _start(world, kojid, registry_url, git_server, 'orphan-run',
                     'acme/orphan-run', via_kojid=True)
    pid = kojid.pid(task_id)
    kojid.kill_kojid(task_id)
    kojid.wait(task_id, timeout=20)
    assert not os.path.exists('/proc/%d/cmdline' % pid) or gone_or_zombie(pid)
    assert registry_tags(registry_url, 'acme/orphan-run') == []
    assert world.hub.task(task_id)['state'] == koji.TASK_STATES['OPEN']
    assert os.path.isdir(task_workdir(world.options, task_id))
    assert storage_left(world) == []
    # no buildah of the orphan is left running, nor the RUN step's sleep
    assert not [p for p in _buildah_pids() if str(world.storage_root) in _cmdline(p)]
    assert not [p for p in _pids() if _cmdline(p).startswith('/bin/busybox sleep 60')]


def _cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read().replace(b'\0', b' ').decode('utf-8', 'replace')
    except OSError:
        return ''


def _pids():
    return [int(p) for p in os.listdir('/proc') if p.isdigit()]


def _buildah_pids():
    return [p for p in _pids() if 'buildah' in _cmdline(p)]
