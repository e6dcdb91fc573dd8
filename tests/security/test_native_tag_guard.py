"""One component cannot move another component's images (issue 7 item 3): real
docker-distribution on 127.0.0.1, the native parent flow with the hub double."""

import pytest

from koji_containerbuild import cg, tag_guard
from koji_containerbuild.errors import BackendError, OptionError
from koji_containerbuild.registry import Registry
from tests.native_koji.conftest import (  # noqa: F401 (fixtures)
    buildah_available, dockerfile, git_server, make_repo, registry_url, small_rootfs,
    world_factory)

needs_buildah = pytest.mark.skipif(not buildah_available(), reason='needs buildah as root')
REPO = 'acme/shared'


def _src(git_server, name, small_rootfs, component, version='1.0', release='1', repo=REPO):
    return make_repo(git_server, name, {
        'Dockerfile': dockerfile(component=component, name=repo, version=version,
                                 release=release),
        'rootfs.tar': small_rootfs})[0]


def _tags(registry, tags):
    return dict((t, registry.get_manifest(REPO, t, missing_ok=True)) for t in tags)


@needs_buildah
def test_another_component_cannot_move_tags(world_factory, git_server, small_rootfs,
                                            registry_url):
    world = world_factory()
    hub = world.hub
    for pkg in ('owner-container', 'intruder-container'):
        hub.add_package('f40-container-candidate', pkg)
    registry = Registry(registry_url)
    world.run_parent(_src(git_server, 'owner', small_rootfs, 'owner-container'))
    before = _tags(registry, ['1.0-1', '1.0', 'latest'])
    assert all(before.values())
    # the owner's own NVR tag: fine before a build (a re-run), decided by digest at publish
    tag_guard.check_tags(registry, REPO, {'primary': ['1.0-1']}, 'owner-container')
    with pytest.raises(BackendError):
        tag_guard.check_tags(registry, REPO, {'primary': ['1.0-1']}, 'owner-container',
                             list_digest='sha256:' + '0' * 64)

    # same NVR tag, another component: the NVR tag is never overwritten
    with pytest.raises(BackendError) as info:
        world.run_parent(_src(git_server, 'intruder1', small_rootfs, 'intruder-container'))
    assert '1.0-1 (the NVR tag) already holds' in str(info.value)
    assert 'latest holds an image of component owner-container' in str(info.value)
    # a fresh release: latest and 1.0 still belong to the owner
    with pytest.raises(BackendError) as info:
        world.run_parent(_src(git_server, 'intruder2', small_rootfs, 'intruder-container',
                              release='7'))
    assert 'latest holds an image of component owner-container' in str(info.value)
    assert '1.0 holds an image of component owner-container' in str(info.value)
    assert _tags(registry, ['1.0-1', '1.0', 'latest']) == before
    assert registry.get_manifest(REPO, '1.0-7', missing_ok=True) is None
    # nothing was built for the refused builds: no createContainer after the owner's
    arch_children = [c for c in world.child_runs]
    assert len(arch_children) == 1
    for nvr in ('intruder-container-1.0-1', 'intruder-container-1.0-7'):
        build = hub.getBuild(nvr)
        assert build is None or build['state'] != 1

    # the owner itself moves its floating tags
    world.run_parent(_src(git_server, 'owner2', small_rootfs, 'owner-container',
                          release='2'))
    after = _tags(registry, ['1.0-1', '1.0-2', 'latest'])
    assert after['1.0-1'] == before['1.0-1']
    assert after['latest'][2] == after['1.0-2'][2] != before['latest'][2]


class _CountingRegistry(Registry):
    """A Registry that counts the config blobs it reads."""
    blobs = 0

    def get_blob(self, *args, **kwargs):
        self.blobs += 1
        return Registry.get_blob(self, *args, **kwargs)


@needs_buildah
def test_owner_labels_are_read_once_per_image(world_factory, git_server, small_rootfs,
                                             registry_url):
    """The tag check runs before the build and again before publishing: the second one
    asks the registry where each tag points now, but reads an image's labels (its config)
    only once, whichever tags point at it."""
    world = world_factory()
    world.hub.add_package('f40-container-candidate', 'reader-container')
    world.run_parent(_src(git_server, 'reader', small_rootfs, 'reader-container',
                          repo='acme/reader'))
    registry = _CountingRegistry(registry_url)
    tags = {'primary': ['1.0-2'], 'floating': ['1.0', 'latest']}
    tag_guard.check_tags(registry, 'acme/reader', tags, 'reader-container')
    assert registry.blobs == 1          # latest and 1.0: one image, one config
    tag_guard.check_tags(registry, 'acme/reader', tags, 'reader-container')
    assert registry.blobs == 1
    with pytest.raises(BackendError) as info:     # still checked: another component
        tag_guard.check_tags(registry, 'acme/reader', tags, 'other-container')
    assert 'latest holds an image of component reader-container' in str(info.value)


@needs_buildah
def test_publish_checks_every_tag_before_the_first_put(world_factory, git_server,
                                                       small_rootfs, registry_url):
    """The publish step checks again (a tag may change hands while a build runs), all
    tags before the first PUT."""
    world = world_factory()
    world.hub.add_package('f40-container-candidate', 'late-container')
    world.run_parent(_src(git_server, 'late', small_rootfs, 'late-container',
                          version='3.0', repo='acme/late'))
    # another build's list (same image, another platform entry: another digest)
    result = dict(world.child_runs[-1][1], goarch='arm64')
    registry = Registry(registry_url)
    tags = {'unique': ['u-123'], 'primary': ['3.0-9'], 'floating': ['latest']}
    # "latest" holds late-container's image: another component may not move it
    with pytest.raises(BackendError) as info:
        cg.publish_manifest_list(registry, 'acme/late', [result], tags,
                                 component='other-container')
    assert 'latest holds an image of component late-container' in str(info.value)
    # checked before the first PUT: the unique and NVR tags were not created either
    assert registry.get_manifest('acme/late', 'u-123', missing_ok=True) is None
    assert registry.get_manifest('acme/late', '3.0-9', missing_ok=True) is None
    # tags that do not exist yet cannot be squatted in a repository of another component
    squat = {'unique': ['u-200'], 'primary': ['9.9-1'], 'floating': ['9.9']}
    with pytest.raises(BackendError) as info:
        cg.publish_manifest_list(registry, 'acme/late', [result], squat,
                                 component='other-container')
    assert 'holds images of component late-container (tag latest)' in str(info.value)
    assert registry.get_manifest('acme/late', '9.9', missing_ok=True) is None
    # a repository without "latest" (scratch builds only): its first tag names the owner
    world.run_parent(_src(git_server, 'scratchonly', small_rootfs, 'late-container',
                          repo='acme/scratchonly'), {'scratch': True})
    assert registry.get_manifest('acme/scratchonly', 'latest', missing_ok=True) is None
    with pytest.raises(BackendError) as info:
        cg.publish_manifest_list(registry, 'acme/scratchonly', [world.child_runs[-1][1]],
                                 squat, component='other-container')
    assert 'holds images of component late-container (tag f40' in str(info.value)
    # the same list by the owner goes through
    cg.publish_manifest_list(registry, 'acme/late', [result], dict(tags, unique=['u-124']),
                             component='late-container')
    assert registry.get_manifest('acme/late', '3.0-9', missing_ok=True) is not None


def test_repository_binding():
    tag_guard.check_binding('acme/shared', 'any-container', 'none')
    tag_guard.check_binding('ns/foo', 'foo-container', 'component')
    tag_guard.check_binding('ns/foo-container', 'foo-container', 'component')
    tag_guard.check_binding('foo', 'foo', 'component')
    with pytest.raises(OptionError) as info:
        tag_guard.check_binding('acme/shared', 'intruder-container', 'component')
    assert "'intruder'" in str(info.value) and 'repository_binding' in str(info.value)


@needs_buildah
def test_binding_refuses_before_reserving(world_factory, git_server, small_rootfs):
    world = world_factory(registry_extra='repository_binding = component\n')
    world.hub.add_package('f40-container-candidate', 'intruder-container')
    with pytest.raises(OptionError):
        world.run_parent(_src(git_server, 'bound', small_rootfs, 'intruder-container'))
    assert not world.hub.calls_of('CGInitBuild')


@needs_buildah
def test_refused_tags_after_import_are_not_retried(world_factory, git_server, small_rootfs,
                                                    monkeypatch):
    """A tag taken by another component between the import and the floating tags: the
    refusal is final (no registry-error backoff), and the fault says what was left."""
    world = world_factory()
    world.hub.add_package('f40-container-candidate', 'norety-container')
    calls = []
    real = cg.publish_manifest_list

    def publish(registry, repository, arch_results, tags, stages=None, **kwargs):
        calls.append(stages)
        if stages == ('floating',):
            raise tag_guard.TagRefused('Refusing to publish: latest holds an image of '
                                       'component squatter-container')
        return real(registry, repository, arch_results, tags, stages=stages, **kwargs)
    monkeypatch.setattr(cg, 'publish_manifest_list', publish)
    with pytest.raises(BackendError) as info:
        world.run_parent(_src(git_server, 'noretry', small_rootfs, 'norety-container',
                              repo='acme/noretry'))
    assert 'were not published' in str(info.value)
    assert 'squatter-container' in str(info.value)
    assert calls == [('unique', 'primary'), ('floating',)]
