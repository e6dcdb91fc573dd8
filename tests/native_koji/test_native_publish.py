"""Registry failures after the import: tags are retried, and a final failure says the
build exists but its tags are missing."""

import koji
import pytest

from koji_containerbuild import registry as registry_mod
from koji_containerbuild.backends import native_parent
from koji_containerbuild.errors import BackendError
from koji_containerbuild.registry import Registry
from tests.native_koji.conftest import buildah_available, dockerfile, make_repo

needs_buildah = pytest.mark.skipif(not buildah_available(), reason='needs buildah as root')


def _flaky_tag_puts(monkeypatch, failures):
    """Tagged manifest PUTs fail `failures` times (as an HTTP 503 would); by-digest PUTs
    (before the import) go through."""
    real = Registry.put_manifest
    count = {'failed': 0}

    def put(self, repo, tag, media_type, data):
        if not tag.startswith('sha256:') and count['failed'] < failures:
            count['failed'] += 1
            raise BackendError('Registry %s: PUT manifest %s:%s gave HTTP 503'
                               % (self.host, repo, tag))
        return real(self, repo, tag, media_type, data)
    monkeypatch.setattr(registry_mod.Registry, 'put_manifest', put)
    monkeypatch.setattr(native_parent, 'PUBLISH_RETRY_DELAYS', (0, 0, 0))
    return count


@needs_buildah
def test_publish_retries_after_import(world_factory, git_server, small_rootfs,
                                      registry_url, monkeypatch):
    world = world_factory()
    src = make_repo(git_server, 'publish-retry', {
        'Dockerfile': dockerfile(name='acme/publish-retry'), 'rootfs.tar': small_rootfs})[0]
    count = _flaky_tag_puts(monkeypatch, 2)
    _task_id, result = world.run_parent(src)
    assert count['failed'] == 2
    build = world.hub.getBuild('demo-container-1.0-1')
    assert build['state'] == koji.BUILD_STATES['COMPLETE']
    reg = Registry(registry_url, tls_verify=False)
    assert reg.get_manifest('acme/publish-retry', '1.0-1')[0] == registry_mod.MEDIA_LIST
    assert reg.get_manifest('acme/publish-retry', 'latest')[0] == registry_mod.MEDIA_LIST
    assert result['koji_builds'] == [str(build['id'])]


@needs_buildah
def test_publish_failure_after_import_names_the_build(world_factory, git_server,
                                                      small_rootfs, monkeypatch):
    world = world_factory()
    src = make_repo(git_server, 'publish-fail', {
        'Dockerfile': dockerfile(name='acme/publish-fail'), 'rootfs.tar': small_rootfs})[0]
    _flaky_tag_puts(monkeypatch, 1000)
    with pytest.raises(BackendError) as info:
        world.run_parent(src)
    build = world.hub.getBuild('demo-container-1.0-1')
    message = str(info.value)
    assert message.startswith('demo-container-1.0-1 was imported as build %d but tags '
                              % build['id'])
    assert '1.0-1' in message.split('tags', 1)[1] and 'HTTP 503' in message
    assert build['state'] == koji.BUILD_STATES['COMPLETE']
    assert len(world.hub.calls_of('CGImport')) == 1
