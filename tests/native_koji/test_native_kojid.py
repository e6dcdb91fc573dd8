"""The native flow as kojid runs it (koji.daemon.TaskManager in a kojid process takes the
parent and then its createContainer children), and Koji's conventions the parent follows:
the build tag's repo through BaseTaskHandler.getRepo, waiting with wait(all, failany)."""

import os
import time

import koji
import pytest

from koji_containerbuild.errors import BackendError
from tests.doubles.kojid import _alive
from tests.native_koji.conftest import buildah_available, dockerfile, make_repo

TASK = koji.TASK_STATES


@pytest.mark.skipif(not buildah_available(), reason='needs buildah as root')
def test_parent_and_children_taken_by_kojid(kojid_world, git_server, small_rootfs):
    world = kojid_world()
    hub = world.hub
    src, _sha = make_repo(git_server, 'kojid-flow', {
        'Dockerfile': dockerfile(name='acme/kojid-flow'), 'rootfs.tar': small_rootfs})
    task_id, _params = world.start_parent(src)
    parent_pid = world.kojid.start(task_id)
    result = world.kojid.result(task_id, timeout=300)
    build = hub.getBuild('demo-container-1.0-1')
    assert result['koji_builds'] == [str(build['id'])]
    assert build['state'] == koji.BUILD_STATES['COMPLETE']
    (child,) = [t for t in hub.children(task_id)
                if hub.task(t)['method'] == 'createContainer']
    assert hub.task(child)['state'] == TASK['CLOSED']
    # the same kojid took the child, in its own process
    taken = dict((e[1], e[2]) for e in world.kojid.events if e[0] == 'taken')
    assert taken[task_id] == parent_pid and taken[child] not in (parent_pid, None)
    # wait(all=True, failany=True): one taskSetWait and one taskWaitResults for the arch
    # children (per-child results would clear the waiting flag and count the weight)
    waits = [a for a, _k in hub.calls_of('host.taskWaitResults') if a[1] == [child]]
    assert len(waits) == 1
    assert [a for a, _k in hub.calls_of('host.taskSetWait') if a[1] == [child]]
    # the kojid double reported no lost task
    with open(world.kojid.logfile) as fobj:
        log = fobj.read()
    assert 'TaskLost' not in log and 'lost' not in log


def test_repo_requested_and_waited_for_like_kojid(world_factory, git_server, small_rootfs):
    """No ready repo: a repo request and a waitrepo subtask (BaseTaskHandler.getRepo);
    the children get the repo it returns."""
    world = world_factory()
    hub = world.hub
    hub._repos.clear()
    world.arch_behaviour = {'x86_64': 'fail'}
    src, _sha = make_repo(git_server, 'repo-wait', {
        'Dockerfile': dockerfile(), 'rootfs.tar': small_rootfs})
    task_id, _params = world.start_parent(src)
    with pytest.raises(BackendError):
        world.run_parent(src, task_id=task_id)
    (req,) = hub.repo_requests('f40-container-build')
    tasks = [hub.task(t) for t in hub.children(task_id)]
    (waitrepo,) = [t for t in tasks if t['method'] == 'waitrepo']
    assert waitrepo['label'] == 'waitrepo' and waitrepo['_request'][0] == 'f40-container-build'
    (arch,) = [t for t in tasks if t['method'] == 'createContainer']
    assert arch['_request'][3]['repo_id'] == waitrepo['_result']['id']


def test_repo_that_never_becomes_ready_says_what_to_do(world_factory, git_server,
                                                      small_rootfs):
    world = world_factory()
    world.hub._repos.clear()
    world.waitrepo_behaviour = 'fail'
    src, _sha = make_repo(git_server, 'repo-never', {
        'Dockerfile': dockerfile(), 'rootfs.tar': small_rootfs})
    task_id, _params = world.start_parent(src)
    with pytest.raises(BackendError) as info:
        world.run_parent(src, task_id=task_id)
    text = str(info.value)
    assert 'f40-container-build' in text and 'kojira' in text and 'createrepo' in text
    assert 'Unsuccessfully waited' in text
    assert not [t for t in world.hub.children(task_id)
                if world.hub.task(t)['method'] == 'createContainer']
    # nothing stays reserved
    assert world.hub.getBuild('demo-container-1.0-1')['state'] == koji.BUILD_STATES['FAILED']


def test_children_scm_policy_sees_their_channel(world_factory, git_server, small_rootfs):
    """kojid's build_from_scm policy data: user_id, channel, scratch (a policy on channel
    must see the child's own channel)."""
    world = world_factory()
    world.options.allowed_scms_use_policy = True
    seen = []

    def policy(data):
        seen.append(data)
        return 'deny not here' if data.get('channel') == 'container-native' else 'allow'
    world.hub.set_policy('build_from_scm', policy)
    src, _sha = make_repo(git_server, 'policy-channel', {
        'Dockerfile': dockerfile(), 'rootfs.tar': small_rootfs})
    with pytest.raises(BackendError) as info:
        world.run_parent(src)
    assert 'not here' in str(info.value)
    owner = world.hub.getUser('alice')['id']
    assert [(d['channel'], d['user_id'], d['scratch']) for d in seen] == [
        ('container', owner, False), ('container-native', owner, False)]


def _gated_git(tmp_path):
    """A `git` first on PATH that blocks `git fetch` in every repository but the first
    one it sees (the parent's check fetch passes, the child's full fetch waits)."""
    bindir = tmp_path / 'gatebin'
    bindir.mkdir()
    gate = tmp_path / 'gate'
    script = bindir / 'git'
    script.write_text(
        '#!/bin/sh\n'
        '[ -e {g}.first ] || pwd > {g}.first\n'
        'if [ "$(pwd)" != "$(cat {g}.first)" ]; then\n'
        '  for arg in "$@"; do\n'
        '    if [ "$arg" = fetch ]; then\n'
        '      touch {g}.waiting\n'
        '      while [ ! -e {g}.open ]; do sleep 0.05; done\n'
        '      break\n'
        '    fi\n'
        '  done\n'
        'fi\n'
        'exec /usr/bin/git "$@"\n'.format(g=gate))
    script.chmod(0o755)
    return bindir, gate


def test_cancel_while_the_parent_waits(kojid_world, git_server, small_rootfs, tmp_path):
    """The user cancels while a child fetches: kojid kills both process trees (real
    cleanupTask), the parent refunds the reservation as CANCELED; while it waited the
    parent was marked waiting on the hub (its weight did not count)."""
    world = kojid_world()
    hub = world.hub
    bindir, gate = _gated_git(tmp_path)
    world.kojid.env['PATH'] = '%s:%s' % (bindir, os.environ['PATH'])
    src, _sha = make_repo(git_server, 'kojid-cancel', {
        'Dockerfile': dockerfile(), 'rootfs.tar': small_rootfs})
    task_id, _params = world.start_parent(src)
    parent_pid = world.kojid.start(task_id)
    deadline = time.time() + 60
    while not gate.with_suffix('.waiting').exists():
        assert time.time() < deadline, 'child never fetched'
        time.sleep(0.05)
    (child,) = [t for t in hub.children(task_id) if hub.task(t)['method'] == 'createContainer']
    child_pid = world.kojid.pid(child)
    assert hub.task(task_id)['waiting'] is True
    world.kojid.cancel(task_id)
    world.kojid.wait(child, timeout=30)
    assert hub.task(task_id)['state'] == TASK['CANCELED']
    assert hub.task(child)['state'] == TASK['CANCELED']
    assert not _alive(parent_pid) and not _alive(child_pid)
    assert hub.getBuild('demo-container-1.0-1')['state'] == koji.BUILD_STATES['CANCELED']
    assert not hub.calls_of('CGImport')
