"""A kojid restart re-runs the parent task id from scratch: the reservation made by the
killed run is kept on the hub (reservation.json) and reused or refunded."""

import json

import koji
import pytest

from tests.native_koji.conftest import buildah_available, dockerfile, make_repo

BUILD = koji.BUILD_STATES
needs_buildah = pytest.mark.skipif(not buildah_available(), reason='needs buildah as root')


class Killed(BaseException):
    """kojid SIGKILLed: nothing in the task runs any more (no refund, no finally work)."""


def _repo(git_server, repo_name, small_rootfs, **kwargs):
    return make_repo(git_server, repo_name, {'Dockerfile': dockerfile(**kwargs),
                                        'rootfs.tar': small_rootfs})[0]


@needs_buildah
@pytest.mark.parametrize('release', ['1', None])
def test_rerun_after_kill_reuses_the_reservation(world_factory, git_server, small_rootfs,
                                                 release):
    world = world_factory()
    src = _repo(git_server, 'rerun-%s' % release, small_rootfs, name='acme/rerun',
                release=release)

    def killed(task_id, arglist):
        raise Killed()
    world.arch_behaviour = {'x86_64': killed}
    task_id, _params = world.start_parent(src)
    with pytest.raises(Killed):
        world.run_parent(src, task_id=task_id)
    hub = world.hub
    [(first_args, _kw)] = hub.calls_of('CGInitBuild')
    reserved = hub.getBuild('demo-container-1.0-1')
    assert reserved['state'] == BUILD['BUILDING']
    record = json.loads(hub.uploaded_files(task_id)['reservation.json'])
    assert record['build_id'] == reserved['id'] and record['nvr'] == 'demo-container-1.0-1'
    assert record['cg'] == 'koji-containerbuild'

    world.arch_behaviour = {}
    _tid, result = world.run_parent(src, task_id=task_id)
    # the earlier reservation was refunded, then Koji recycled the same build entry
    assert result['koji_builds'] == [str(reserved['id'])]
    assert [a[3] for a, _k in hub.calls_of('CGRefundBuild')] == [BUILD['CANCELED']]
    assert len(hub.calls_of('CGInitBuild')) == 2
    build = hub.getBuild(reserved['id'])
    assert build['state'] == BUILD['COMPLETE'] and build['nvr'] == 'demo-container-1.0-1'


@needs_buildah
def test_rerun_refunds_a_reservation_for_another_nvr(world_factory, git_server,
                                                     small_rootfs):
    world = world_factory()
    src = _repo(git_server, 'rerun-other', small_rootfs, name='acme/rerun-other')
    task_id, _params = world.start_parent(src)
    hub = world.hub
    # what an earlier run left: a reservation for another NVR of this task
    old = hub.CGInitBuild('koji-containerbuild', {'name': 'demo-container',
                                                  'version': '0.9', 'release': '1'})
    path = world.tmp / 'old-reservation.json'
    path.write_text(json.dumps({'build_id': old['build_id'], 'token': old['token'],
                                'nvr': 'demo-container-0.9-1', 'cg': 'koji-containerbuild'}))
    hub.uploadWrapper(str(path), koji.pathinfo.taskrelpath(task_id), 'reservation.json')

    _tid, result = world.run_parent(src, task_id=task_id)
    assert hub.getBuild(old['build_id'])['state'] == BUILD['CANCELED']
    new = hub.getBuild('demo-container-1.0-1')
    assert new['state'] == BUILD['COMPLETE'] and new['id'] != old['build_id']
    assert result['koji_builds'] == [str(new['id'])]
    record = json.loads(hub.uploaded_files(task_id)['reservation.json'])
    assert record['build_id'] == new['id']


@needs_buildah
def test_rerun_ignores_a_malformed_record(world_factory, git_server, small_rootfs):
    world = world_factory()
    src = _repo(git_server, 'rerun-bad', small_rootfs, name='acme/rerun-bad')
    task_id, _params = world.start_parent(src)
    path = world.tmp / 'bad.json'
    path.write_text('{"build_id": "1; drop", "token": 5}')
    world.hub.uploadWrapper(str(path), koji.pathinfo.taskrelpath(task_id), 'reservation.json')
    _tid, result = world.run_parent(src, task_id=task_id)
    assert result['koji_builds']
    assert not world.hub.calls_of('CGRefundBuild')


def test_builder_native_path_is_guarded_for_orphans(world_factory):
    """builder_containerbuild runs the native parent through guarded(): an orphan (kojid
    gone) must leave the work directory to the re-run, whatever it raises."""
    from tests.support.plugins import builder_plugin
    plugin = builder_plugin()
    world = world_factory()
    params = ['git://127.0.0.1/none.git#abc', 'no-such-target', {'git_branch': 'main'}]
    task_id = world.hub.add_task('buildContainer', params, owner='alice')
    handler = plugin.BuildContainerTask(task_id, 'buildContainer', params, world.hub,
                                        world.options)
    handler.config_file = str(world.tmp / 'builder_containerbuild.conf')
    handler.parent_pid = -1          # as if kojid died: we are an orphan now
    assert handler.workdir
    with pytest.raises(koji.GenericError):
        handler.handler(*params)
    assert handler.workdir is None
