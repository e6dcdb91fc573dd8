"""The native Koji flow (real task handlers, buildah, git daemon, docker-distribution on
127.0.0.1, the hub double): SBOM and provenance are CG outputs, named in
build.extra.image, attached to the per-arch image after the import, never for a build
whose import failed."""

import functools
import hashlib
import json
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import koji
import pytest
import requests

from tests.native_koji.conftest import (buildah_available, dockerfile, git_server,  # noqa: F401
                                        make_repo, registry_url, world_factory)
from tests.supply_chain.validators import assert_valid

pytestmark = pytest.mark.skipif(not buildah_available(), reason='needs buildah as root')
OCI = 'application/vnd.oci.image.manifest.v1+json'
REPO_FILE = b'[extra]\nname=extra\nbaseurl=http://127.0.0.1:9/extra/\n'


@pytest.fixture
def rpm_rootfs(examples):
    """The example base's rootfs.tar: an rpmdb with one RPM (License: MIT)."""
    with open(os.path.join(examples, 'base', 'rootfs.tar'), 'rb') as f:
        return f.read()


@pytest.fixture
def repo_server(tmp_path):
    served = tmp_path / 'served'
    served.mkdir()
    (served / 'extra.repo').write_bytes(REPO_FILE)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    server = ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(
        Quiet, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield 'http://127.0.0.1:%d/extra.repo' % server.server_address[1]
    server.shutdown()
    server.server_close()


def tags_of(registry_url, repo):
    resp = requests.get('%s/v2/%s/tags/list' % (registry_url, repo), timeout=10)
    return resp.json().get('tags') or [] if resp.status_code == 200 else []


def attachment(registry_url, repo, digest, suffix):
    tag = digest.replace(':', '-') + '.' + suffix
    base = '%s/v2/%s' % (registry_url, repo)
    manifest = requests.get('%s/manifests/%s' % (base, tag), headers={'Accept': OCI},
                            timeout=10).json()
    assert manifest['subject']['digest'] == digest
    return requests.get('%s/blobs/%s' % (base, manifest['layers'][0]['digest']),
                        timeout=10).content


def test_import_outputs_and_registry_attachments(world_factory, git_server, rpm_rootfs,
                                                 registry_url, repo_server):
    world = world_factory(registry_extra='yum_repourl_allowed_networks = 127.0.0.0/8\n')
    src, sha = make_repo(git_server, 'sc-ok', {
        'Dockerfile': dockerfile(name='acme/sc-ok'), 'rootfs.tar': rpm_rootfs})
    task_id, result = world.run_parent(src, opts={'yum_repourls': [repo_server]})
    hub = world.hub
    build = hub.getBuild('demo-container-1.0-1')
    assert build['state'] == koji.BUILD_STATES['COMPLETE']
    named = build['extra']['image']['supply_chain']
    assert named == {'x86_64': {
        'sbom': {'filename': 'sbom-x86_64.spdx.json', 'media_type': 'application/spdx+json',
                 'registry_tag': named['x86_64']['sbom']['registry_tag']},
        'provenance': {'filename': 'provenance-x86_64.intoto.json',
                       'media_type': 'application/vnd.in-toto+json',
                       'registry_tag': named['x86_64']['provenance']['registry_tag']}}}
    archives = dict((a['filename'], a) for a in hub.listArchives(buildID=build['id'],
                                                                   type='image'))
    upload_dir = [a for (m, a, k) in hub.calls if m == 'CGImport'][0][1]
    files = {}
    for kind, name in (('sbom', 'sbom-x86_64.spdx.json'),
                       ('provenance', 'provenance-x86_64.intoto.json')):
        archive = archives[name]
        assert archive['type_name'] == 'json'
        assert archive['extra']['image']['arch'] == 'x86_64'
        data = hub.uploads[(upload_dir, name)]
        assert archive['checksum'] == hashlib.sha256(data).hexdigest()
        files[kind] = (name, data)
    assert_valid(files)
    # the documents describe what was built and where from
    image_digest = [a for a in archives.values() if a['type_name'] == 'tar'][0][
        'extra']['docker']['digests'].popitem()[1]
    assert named['x86_64']['sbom']['registry_tag'] == \
        image_digest.replace(':', '-') + '.sbom'
    spdx = json.loads(files['sbom'][1])
    hello, = [p for p in spdx['packages'] if p['name'] == 'koji-example-hello']
    assert hello['licenseDeclared'] == 'MIT'
    prov = json.loads(files['provenance'][1])
    assert prov['subject'][0]['digest'] == {'sha256': image_digest.split(':')[1]}
    run = prov['predicate']['runDetails']
    assert run['builder']['id'] == 'http://hub.example.com/kojihub#task=%d' % task_id
    child, = [t for t in hub.children(task_id)
              if hub.task(t)['method'] == 'createContainer']
    assert run['metadata']['invocationId'] == 'http://hub.example.com/kojihub#task=%d' % child
    definition = prov['predicate']['buildDefinition']
    assert definition['externalParameters']['source'] == src.split('#')[0] + '#' + sha
    assert definition['externalParameters']['target'] == 'f40-container-candidate'
    assert definition['externalParameters']['options']['yum_repourls'] == [repo_server]
    deps = dict((d['name'], d) for d in definition['resolvedDependencies'])
    assert deps['source']['digest'] == {'gitCommit': sha}
    assert deps['koji-repo'] == {
        'name': 'koji-repo', 'uri': 'http://127.0.0.1:9/kojifiles/repos/'
                                    'f40-container-build/77/x86_64/',
        'annotations': {'build_tag': 'f40-container-build', 'repo_id': 77}}
    assert deps['yum_repourls[0]'] == {'name': 'yum_repourls[0]', 'uri': repo_server,
                                       'digest': {'sha256': hashlib.sha256(REPO_FILE)
                                                  .hexdigest()}}
    assert definition['internalParameters']['build_id'] == build['id']
    # in the registry, next to the image
    assert attachment(registry_url, 'acme/sc-ok', image_digest, 'sbom') == files['sbom'][1]
    assert attachment(registry_url, 'acme/sc-ok', image_digest, 'att') == \
        files['provenance'][1]


def test_failed_import_attaches_nothing(world_factory, git_server, rpm_rootfs,
                                        registry_url):
    world = world_factory()
    world.hub.fail_next('CGImport', koji.GenericError('cg_import policy says no'))
    src, _sha = make_repo(git_server, 'sc-fail', {
        'Dockerfile': dockerfile(name='acme/sc-fail'), 'rootfs.tar': rpm_rootfs})
    with pytest.raises(koji.GenericError):
        world.run_parent(src)
    tags = tags_of(registry_url, 'acme/sc-fail')
    assert any(t.endswith('-x86_64') for t in tags)        # the arch image was pushed
    assert not [t for t in tags if t.endswith(('.sbom', '.att'))]


def test_scratch_build_attaches_without_import(world_factory, git_server, rpm_rootfs,
                                               registry_url):
    world = world_factory()
    src, _sha = make_repo(git_server, 'sc-scratch', {
        'Dockerfile': dockerfile(name='acme/sc-scratch'), 'rootfs.tar': rpm_rootfs})
    _task_id, result = world.run_parent(src, opts={'scratch': True})
    assert result['koji_builds'] == []
    tags = tags_of(registry_url, 'acme/sc-scratch')
    assert len([t for t in tags if t.endswith('.sbom')]) == 1
    assert len([t for t in tags if t.endswith('.att')]) == 1


def test_attach_failure_after_import_names_the_build(world_factory, git_server, rpm_rootfs,
                                                     monkeypatch):
    from koji_containerbuild import supply_chain
    from koji_containerbuild.backends import native_parent
    from koji_containerbuild.errors import BackendError

    calls = []

    def refuse(*args):
        calls.append(args)
        raise BackendError('Registry 127.0.0.1: PUT manifest gave HTTP 500')
    monkeypatch.setattr(supply_chain, 'attach', refuse)
    monkeypatch.setattr(native_parent, 'PUBLISH_RETRY_DELAYS', (0,))
    world = world_factory()
    src, _sha = make_repo(git_server, 'sc-attach-fails', {
        'Dockerfile': dockerfile(name='acme/sc-attach-fails'), 'rootfs.tar': rpm_rootfs})
    with pytest.raises(BackendError) as info:
        world.run_parent(src)
    build = world.hub.getBuild('demo-container-1.0-1')
    assert build['state'] == koji.BUILD_STATES['COMPLETE']
    assert len(calls) == 2                                 # one retry
    assert str(info.value).startswith(
        'demo-container-1.0-1 was imported as build %d but its SBOM and provenance were '
        'not attached in the registry: Registry 127.0.0.1: PUT manifest gave HTTP 500'
        % build['id'])
