"""Tags a build that did not complete leaves in the registry are removed where the
registry allows deletion, else listed for the admin (real buildah + docker-distribution)."""

import logging

import koji
import pytest

from tests.native_koji.conftest import World, buildah_available, dockerfile, make_repo
from tests.native_koji.signals_support import registry_tags
from tests.support.registry import RunningRegistry

needs_buildah = pytest.mark.skipif(not buildah_available(), reason='needs buildah as root')


class Killed(BaseException):
    """SIGKILL of the whole kojid: nothing in the task runs any more."""


@pytest.fixture(scope='module')
def deleting_registry(tmp_path_factory):
    """A registry with `storage: delete: enabled: true`."""
    reg = RunningRegistry(str(tmp_path_factory.mktemp('delreg') / 'registry'), delete=True)
    yield reg.url
    reg.stop()


def _src(git_server, small_rootfs, repo_name, name):
    return make_repo(git_server, repo_name, {'Dockerfile': dockerfile(name=name),
                                             'rootfs.tar': small_rootfs})[0]


def _failing_sibling(world, src):
    world.arch_behaviour = {'aarch64': 'fail'}
    with pytest.raises(koji.GenericError, match='aarch64'):
        world.run_parent(src)
    [(_tid, result)] = world.child_runs            # x86_64 was built and pushed
    return result


@needs_buildah
def test_failed_build_removes_its_pushed_arch_images(tmp_path, deleting_registry, git_server,
                                                     small_rootfs):
    world = World(tmp_path, deleting_registry, arches='x86_64 aarch64')
    src = _src(git_server, small_rootfs, 'left-del', 'acme/left-del')
    pushed = _failing_sibling(world, src)
    assert pushed['tags'][0].endswith('-x86_64')
    assert registry_tags(deleting_registry, 'acme/left-del') == []
    assert world.hub.getBuild('demo-container-1.0-1')['state'] == koji.BUILD_STATES['FAILED']


@needs_buildah
def test_registry_without_deletion_lists_the_leftovers(world_factory, registry_url,
                                                       git_server, small_rootfs, caplog):
    world = world_factory(arches='x86_64 aarch64')
    src = _src(git_server, small_rootfs, 'left-keep', 'acme/left-keep')
    with caplog.at_level(logging.WARNING):
        pushed = _failing_sibling(world, src)
    tag = pushed['tags'][0]
    assert registry_tags(registry_url, 'acme/left-keep') == [tag]
    assert 'deletion is disabled' in caplog.text
    assert 'registry references left by this build' in caplog.text
    assert 'acme/left-keep:%s' % tag in caplog.text


@needs_buildah
@pytest.mark.parametrize('scratch', [False, True])
def test_rerun_removes_what_the_killed_run_pushed(tmp_path, deleting_registry, git_server,
                                                  small_rootfs, scratch):
    world = World(tmp_path, deleting_registry)
    name = 'acme/left-rerun-%s' % ('scratch' if scratch else 'build')
    src = _src(git_server, small_rootfs, name.replace('/', '-'), name)

    def pushed_then_killed(task_id, arglist):
        world.run_child(task_id, arglist)
        raise Killed()
    world.arch_behaviour = {'x86_64': pushed_then_killed}
    task_id, _params = world.start_parent(src, opts={'scratch': scratch})
    with pytest.raises(Killed):
        world.run_parent(src, task_id=task_id)
    [old] = registry_tags(deleting_registry, name)
    world.arch_behaviour = {}
    _tid, result = world.run_parent(src, task_id=task_id)
    # the SBOM/provenance attachments (sha256-<hex>.sbom/.att) are not image tags
    tags = [t for t in registry_tags(deleting_registry, name) if not t.startswith('sha256-')]
    assert old not in tags
    assert len(tags) == (2 if scratch else 5)     # unique(-x86_64) [+ 1.0-1, 1.0, latest]
    assert sorted(r.rsplit(':', 1)[1] for r in result['repositories']) == sorted(
        t for t in tags if not t.endswith('-x86_64'))


def test_orphaned_rerun_removes_nothing(world, monkeypatch):
    """A re-run whose kojid is gone by then must not delete what the earlier run pushed
    (the next re-run owns the task)."""
    from koji_containerbuild import ownership
    from koji_containerbuild.backends import native_cleanup, native_config
    from koji_containerbuild.backends.retry import TaskLost

    deleted = []
    monkeypatch.setattr(native_cleanup, 'delete_left', lambda *a, **k: deleted.append(a))

    class Handler(object):
        id = 7
        logger = logging.getLogger('test')
        session = world.hub
    handler = Handler()
    handler.ownership = ownership.TaskOwnership(7, world.hub, parent_pid=-1)   # orphan
    record = {'tags': {'unique': ['u-1']}, 'repository': 'acme/x', 'arches': ['x86_64']}
    native = native_config.from_builder_config(world.config)
    with pytest.raises(TaskLost):
        native_cleanup.remove_earlier(handler, native, record, unique_too=True)
    assert deleted == []
