"""kojid killed in the middle of a native build, then the same task id runs again:
exactly one Koji build per task, a re-run that finishes what the killed run left, an
orphan that never acts. Task processes are real (the kojid double), and so are buildah
and docker-distribution."""

import os

import koji
import pytest

from tests.doubles.hub_session import HubSessionDouble
from tests.doubles.kojid import Kojid
from tests.native_koji.conftest import buildah_available, dockerfile, make_repo
from tests.native_koji.signals_support import (GATE_RUN, arch_task, busybox_repo,
                                               gone_or_zombie, registry_tags, storage_left,
                                               task_log, task_workdir, wait_for)
from tests.support.slowgit import slow_git

BUILD = koji.BUILD_STATES
needs_buildah = pytest.mark.skipif(not buildah_available(), reason='needs buildah as root')


class Killed(BaseException):
    """SIGKILL of the whole kojid: nothing in the task runs any more."""


def _conf(world):
    return str(world.tmp / 'builder_containerbuild.conf')


@needs_buildah
def test_kojid_killed_after_import_rerun_finishes_the_same_build(kojid_world, git_server,
                                                                 small_rootfs, registry_url):
    """The issue's worst case: kojid killed after CGImport (here: while the tagBuild
    waits). The orphan must not publish anything more; the re-run of the task id must
    not auto-release a second build but finish the first one: floating tags, the same
    tagBuild, the same result."""
    # kojid runs the parent and its createContainer children (a real kojid frees OPEN
    # tasks of its host that it has no process for, so no child runs in this process)
    world = kojid_world()
    kojid = world.kojid
    hub = world.hub
    src = make_repo(git_server, 'crash-import', {
        'Dockerfile': dockerfile(name='acme/crash-import', release=None),
        'rootfs.tar': small_rootfs})[0]
    # the tagBuild child stays FREE: another builder takes it later (a child OPEN on
    # this host with no process would be freed by kojid's own bookkeeping)
    world.tag_behaviour = 'free'
    task_id, params = world.start_parent(src)
    kojid.start(task_id, 'buildContainer', params, config_file=_conf(world), via_kojid=True)
    tag_child = wait_for(lambda: [t for t in hub.children(task_id)
                                  if hub.task(t)['method'] == 'tagBuild'],
                         'the tagBuild subtask')[0]
    build = hub.getBuild('demo-container-1.0-1')
    assert build['state'] == BUILD['COMPLETE']
    assert registry_tags(registry_url, 'acme/crash-import') != []
    assert 'latest' not in registry_tags(registry_url, 'acme/crash-import')
    kojid.kill_kojid(task_id)                      # kill -9 kojid
    # meanwhile the tagBuild subtask ran on another builder; the orphan wakes up
    dest, build_id = hub.task(tag_child)['_request'][:2]
    hub.open_task(tag_child)
    hub.host.tagBuild(tag_child, dest, build_id, False, None)
    hub.finish_task(tag_child, result=None)
    kojid.wait(task_id, timeout=30)
    assert 'latest' not in registry_tags(registry_url, 'acme/crash-import'), \
        'the orphan published a floating tag'
    # kojid restarted: the same task id runs again from the start
    hub.free_task(task_id)
    hub.open_task(task_id)
    _tid, result = world.run_parent(src, task_id=task_id)
    assert result['koji_builds'] == [str(build['id'])]
    assert hub.getBuild('demo-container-1.0-2') is None
    assert len(hub.calls_of('CGInitBuild')) == 1 and len(hub.calls_of('CGImport')) == 1
    assert [t for t in hub.children(task_id) if hub.task(t)['method'] == 'tagBuild'] \
        == [tag_child]
    assert hub.tagged('f40-container-candidate') == [build['id']]
    # the SBOM/provenance attachments (sha256-<hex>.sbom/.att) are not image tags
    tags = [t for t in registry_tags(registry_url, 'acme/crash-import')
            if not t.startswith('sha256-')]
    assert {'latest', '1.0', '1.0-1'} <= set(tags)
    assert sorted(t.rsplit('/', 1)[1].split(':', 1)[1] for t in result['repositories']) \
        == sorted(t for t in tags if not t.endswith('-x86_64'))


@needs_buildah
def test_kill_between_reservation_and_record_leaves_no_building_nvr(
        world, git_server, small_rootfs, monkeypatch):
    """Killed right after CGInitBuild answered, before the reservation was recorded:
    the re-run finds the intent, cancels the build the killed run reserved (cancelBuild:
    the builder's user owns it) and builds the NVR once."""
    src = make_repo(git_server, 'crash-reserve', {
        'Dockerfile': dockerfile(name='acme/crash-reserve'), 'rootfs.tar': small_rootfs})[0]
    real = HubSessionDouble._api_CGInitBuild

    def killed_after_answer(self, cg, data):
        real(self, cg, data)
        raise Killed()
    monkeypatch.setattr(HubSessionDouble, '_api_CGInitBuild', killed_after_answer)
    task_id, _params = world.start_parent(src)
    with pytest.raises(Killed):
        world.run_parent(src, task_id=task_id)
    hub = world.hub
    reserved = hub.getBuild('demo-container-1.0-1')
    assert reserved['state'] == BUILD['BUILDING']
    # Koji makes the builder's user the owner of a reservation; its extra names the task
    # and the user it is for (Koji web shows it)
    assert reserved['extra'] == {'koji_containerbuild': {'task_id': task_id,
                                                         'owner': 'alice'}}
    monkeypatch.setattr(HubSessionDouble, '_api_CGInitBuild', real)
    _tid, result = world.run_parent(src, task_id=task_id)
    assert [tuple(a) for a, _k in hub.calls_of('cancelBuild')] == [(reserved['id'],)]
    assert result['koji_builds'] == [str(reserved['id'])]
    assert hub.getBuild(reserved['id'])['state'] == BUILD['COMPLETE']


def test_intent_of_another_reservation_is_left_alone(world):
    """An intent whose NVR is BUILDING but reserved for another task (its extra names
    that task) is not cancelled."""
    from koji_containerbuild.backends import native_reserve
    hub = world.hub
    task_id = hub.add_task('buildContainer', [], owner='alice')
    hub.add_build('demo-container-2.0-1', state=BUILD['BUILDING'],
                  cg='koji-containerbuild',
                  extra={'koji_containerbuild': {'task_id': task_id + 1, 'owner': 'bob'}})
    path = world.tmp / 'intent.json'
    import json
    record = native_reserve.intent_record('demo-container-2.0-1', 'koji-containerbuild',
                                          task_id)
    path.write_text(json.dumps(record))
    hub.uploadWrapper(str(path), koji.pathinfo.taskrelpath(task_id), 'reservation.json')
    assert native_reserve.settle_earlier(hub, task_id, 'koji-containerbuild',
                                         world.logger)[0] == 'other'
    assert hub.getBuild('demo-container-2.0-1')['state'] == BUILD['BUILDING']
    assert not hub.calls_of('cancelBuild')


@needs_buildah
def test_rerun_of_a_crashed_arch_task_while_the_orphan_lives(world, kojid, git_server,
                                                             registry_url):
    """kill -9 kojid during a createContainer RUN step and re-run the task id at once:
    the orphan and the re-run each keep their own storage; the orphan removes neither the
    re-run's storage nor its work directory; the re-run's first attempt succeeds."""
    hub = world.hub
    src, sha = busybox_repo(git_server, 'crash-arch', 'acme/crash-arch', GATE_RUN)
    task_id, args = arch_task(world, registry_url, src, sha, 'acme/crash-arch')
    kojid.start(task_id, 'createContainer', args, config_file=_conf(world), via_kojid=True)
    wait_for(lambda: 'start' in task_log(hub, task_id).splitlines(), 'the RUN step')
    orphan = kojid.pid(task_id)
    kojid.kill_kojid(task_id)
    # kojid restarted: the task is FREE and the hub hands the same id to it again (left
    # OPEN, the new kojid's start-up bookkeeping would free it under the test)
    hub.free_task(task_id)
    rerun = kojid.start(task_id, 'createContainer', args, config_file=_conf(world))  # its pid
    gate = os.path.join(task_workdir(world.options, task_id), 'build',
                        'yum.repos.d-x86_64', 'go')

    def rerun_done():
        if os.path.isdir(os.path.dirname(gate)) and not os.path.exists(gate):
            open(gate, 'w').close()                # lets the re-run's RUN step finish
        return not os.path.exists('/proc/%d' % rerun) or gone_or_zombie(rerun)
    wait_for(rerun_done, 'the re-run', timeout=180)
    assert not os.path.exists('/proc/%d/cmdline' % orphan) or gone_or_zombie(orphan)
    task = hub.task(task_id)
    assert task['state'] == koji.TASK_STATES['CLOSED'], (task['_fault'],
                                                         open(kojid.logfile).read()[-3000:])
    result = hub.getTaskResult(task_id)
    assert result['tags'] == ['u-1-x86_64']
    assert registry_tags(registry_url, 'acme/crash-arch') == ['u-1-x86_64']
    assert storage_left(world) == []


def test_orphan_neither_reserves_nor_refunds(world):
    """The reservation's own fence: an orphan (its parent is no longer kojid) may not call
    CGInitBuild, and leaves a reservation it holds to the re-run of its task."""
    from koji_containerbuild import ownership, source
    from koji_containerbuild.backends import native_reserve
    from koji_containerbuild.backends.retry import TaskLost
    hub = world.hub
    task_id = hub.add_task('buildContainer', [], owner='alice')
    owned = ownership.TaskOwnership(task_id, hub)
    res = native_reserve.Reservation(hub, 'koji-containerbuild', world.logger, fence=owned)
    ident = source.image_identity({'com.redhat.component': 'demo-container',
                                   'name': 'acme/fence', 'version': '3.0', 'release': '1'})
    build_id = res.reserve(ident, task_id=task_id, owner='alice')
    res.fence = ownership.TaskOwnership(task_id, hub, parent_pid=-1)     # kojid gone
    res.refund(canceled=True)
    assert hub.getBuild(build_id)['state'] == BUILD['BUILDING']
    assert not hub.calls_of('CGRefundBuild')
    other = native_reserve.Reservation(hub, 'koji-containerbuild', world.logger,
                                       fence=res.fence)
    with pytest.raises(TaskLost):
        other.reserve(source.image_identity({'com.redhat.component': 'demo-container',
                                             'name': 'acme/fence', 'version': '3.0',
                                             'release': '2'}), task_id=task_id)
    assert len(hub.calls_of('CGInitBuild')) == 1


def test_orphan_killed_while_planning_never_reserves(world, git_server, small_rootfs):
    """kill -9 kojid while the parent fetches its source: once the fetch returns, the
    orphan stops before recording anything or calling CGInitBuild."""
    bindir, gate = slow_git(world.tmp)
    daemon = Kojid(world.hub, world.options,
                   env={'PATH': '%s:%s' % (bindir, os.environ['PATH'])})
    try:
        src = make_repo(git_server, 'crash-plan', {
            'Dockerfile': dockerfile(name='acme/crash-plan'), 'rootfs.tar': small_rootfs})[0]
        task_id, params = world.start_parent(src)
        daemon.start(task_id, 'buildContainer', params, config_file=_conf(world),
                     via_kojid=True)
        wait_for(lambda: os.path.exists('%s.waiting' % gate), 'the orphan in git fetch')
        daemon.kill_kojid(task_id)
        open('%s.open' % gate, 'w').close()
        daemon.wait(task_id, timeout=60)
    finally:
        daemon.close()
    hub = world.hub
    assert not hub.calls_of('CGInitBuild')
    assert 'reservation.json' not in hub.uploaded_files(task_id)
    assert hub.getBuild('demo-container-1.0-1') is None
    assert hub.children(task_id) == []
    assert hub.task(task_id)['state'] == koji.TASK_STATES['OPEN']


def test_orphan_waiting_for_its_children_stops_at_once(world, kojid, git_server,
                                                       small_rootfs):
    """kill -9 kojid while the parent waits for a createContainer child that another
    builder still runs: the orphan stops waiting within a poll, and leaves the child,
    the reservation and the task to the re-run (nothing cancelled, nothing refunded)."""
    hub = world.hub
    world.arch_behaviour['x86_64'] = 'leave'        # the child stays with its builder
    src = make_repo(git_server, 'crash-wait', {
        'Dockerfile': dockerfile(name='acme/crash-wait'), 'rootfs.tar': small_rootfs})[0]
    task_id, params = world.start_parent(src)
    kojid.start(task_id, 'buildContainer', params, config_file=_conf(world), via_kojid=True)
    wait_for(lambda: hub.calls_of('host.taskSetWait'), 'the parent waiting for its child')
    child = [t for t in hub.children(task_id)
             if hub.task(t)['method'] == 'createContainer'][0]
    kojid.kill_kojid(task_id)
    kojid.wait(task_id, timeout=30)                # before: it waited for the child
    assert hub.task(child)['state'] not in (koji.TASK_STATES['CANCELED'],
                                            koji.TASK_STATES['FAILED'])
    assert not hub.calls_of('cancelTask') and not hub.calls_of('cancelTaskChildren')
    assert hub.getBuild('demo-container-1.0-1')['state'] == BUILD['BUILDING']
    assert not hub.calls_of('CGRefundBuild')
    assert hub.task(task_id)['state'] == koji.TASK_STATES['OPEN']
