"""kojid killed after CGImport, before the SBOM and provenance were attached in the
registry: the re-run of the same task id attaches them from the files Koji imported
(the hub double's topdir, served over HTTP as kojid's topurl), byte-identical to what
the killed run would have pushed, checked against the archives' sha256, before the
tagBuild. Real buildah, docker-distribution and git daemon."""

import functools
import hashlib
import pathlib
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import koji
import pytest
import requests

from koji_containerbuild import ownership, registry as registry_mod, supply_chain
from koji_containerbuild.backends import native_import, native_reattach
from koji_containerbuild.backends.retry import TaskLost
from koji_containerbuild.errors import BackendError
from tests.native_koji.conftest import buildah_available, dockerfile, make_repo
from tests.native_koji.signals_support import registry_tags

BUILD = koji.BUILD_STATES
needs_buildah = pytest.mark.skipif(not buildah_available(), reason='needs buildah as root')
NVR = 'demo-container-1.0-1'


class Killed(BaseException):
    """SIGKILL of the whole kojid: nothing in the task runs any more."""


class KojiFiles(object):
    """The hub's topdir (CGImport stores the build's files there) behind an HTTP server
    on 127.0.0.1 at <url>/kojifiles, which the World's kojid options use as topurl."""

    def __init__(self, world, tmp_path):
        served = tmp_path / 'served'
        self.topdir = served / 'kojifiles'
        self.topdir.mkdir(parents=True)
        world.hub.topdir = str(self.topdir)        # before anything is uploaded
        self.requests = []
        files = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                files.requests.append(self.path)
                return super().do_GET()
        self.server = ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(
            Handler, directory=str(served)))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        world.options.topurl = 'http://127.0.0.1:%d/kojifiles' % self.server.server_address[1]

    def image_file(self, build, name):
        return pathlib.Path(koji.PathInfo(topdir=str(self.topdir)).imagebuild(build)) / name

    def close(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def koji_files(world, tmp_path):
    files = KojiFiles(world, tmp_path)
    yield files
    files.close()


def kill_before_attaching(monkeypatch, docs_seen):
    """The parent is killed right after CGImport, before its first attachment PUT."""
    def killed(self, docs, build_id=None):
        docs_seen.extend(docs)
        raise Killed()
    monkeypatch.setattr(native_import.ImportSteps, '_attach_supply_chain', killed)


def served_attachment(registry_url, repository, tag):
    """(manifest digest, document bytes) the registry serves for an attachment tag."""
    base = '%s/v2/%s' % (registry_url, repository)
    resp = requests.get('%s/manifests/%s' % (base, tag), timeout=10,
                        headers={'Accept': registry_mod.MEDIA_OCI})
    resp.raise_for_status()
    layer = resp.json()['layers'][0]['digest']
    blob = requests.get('%s/blobs/%s' % (base, layer), timeout=10)
    blob.raise_for_status()
    return registry_mod.digest_of(resp.content), blob.content


def attachment_tags(registry_url, repository):
    return sorted(t for t in registry_tags(registry_url, repository)
                  if t.startswith('sha256-'))


@needs_buildah
def test_rerun_attaches_the_documents_the_killed_run_did_not(
        world, koji_files, git_server, small_rootfs, registry_url, monkeypatch):
    src = make_repo(git_server, 'reattach', {
        'Dockerfile': dockerfile(name='acme/reattach'), 'rootfs.tar': small_rootfs})[0]
    first_docs = []
    real_attach_step = native_import.ImportSteps._attach_supply_chain
    kill_before_attaching(monkeypatch, first_docs)
    task_id, _params = world.start_parent(src)
    with pytest.raises(Killed):
        world.run_parent(src, task_id=task_id)
    hub = world.hub
    build = hub.getBuild(NVR)
    assert build['state'] == BUILD['COMPLETE'] and hub.tagged('f40-container-candidate') == []
    assert attachment_tags(registry_url, 'acme/reattach') == []
    monkeypatch.setattr(native_import.ImportSteps, '_attach_supply_chain', real_attach_step)
    # a re-run that is itself an orphan (kojid killed again) attaches nothing
    monkeypatch.setattr(ownership.TaskOwnership, 'orphaned', lambda self: True)
    with pytest.raises(TaskLost):
        world.run_parent(src, task_id=task_id)
    monkeypatch.undo()
    assert attachment_tags(registry_url, 'acme/reattach') == []
    assert hub.tagged('f40-container-candidate') == []
    assert len(koji_files.requests) == 2        # it got as far as the fence check
    koji_files.requests[:] = []
    # the re-run attaches before its tagBuild, as the first run does
    tagged_when_attached = []
    real_attach = supply_chain.attach

    def attach(*args, **kwargs):
        tagged_when_attached.append(hub.tagged('f40-container-candidate'))
        return real_attach(*args, **kwargs)
    monkeypatch.setattr(supply_chain, 'attach', attach)

    _tid, result = world.run_parent(src, task_id=task_id)
    assert result['koji_builds'] == [str(build['id'])]
    assert len(hub.calls_of('CGImport')) == 1 and hub.getBuild('demo-container-1.0-2') is None
    assert hub.tagged('f40-container-candidate') == [build['id']]
    assert tagged_when_attached == [[]]
    named = build['extra']['image']['supply_chain']['x86_64']
    assert attachment_tags(registry_url, 'acme/reattach') == sorted(
        named[k]['registry_tag'] for k in supply_chain.KINDS)
    archives = dict((a['filename'], a) for a in hub.listArchives(buildID=build['id'],
                                                                 type='image'))
    [doc] = first_docs
    for kind in supply_chain.KINDS:
        name, first_bytes = doc['files'][kind]
        digest, served = served_attachment(registry_url, 'acme/reattach',
                                           named[kind]['registry_tag'])
        # the bytes Koji imported (its archive checksum), in the manifest the killed run
        # would have pushed (same subject, same created): PUTs of either are idempotent
        assert hashlib.sha256(served).hexdigest() == archives[name]['checksum']
        assert served == first_bytes
        assert digest == registry_mod.digest_of(supply_chain.artifact_manifest(
            kind, first_bytes, name, doc['image'], doc['created']))
    assert sorted(koji_files.requests) == sorted(
        '/kojifiles/packages/demo-container/1.0/1/images/%s' % named[k]['filename']
        for k in supply_chain.KINDS)
    tags = registry_tags(registry_url, 'acme/reattach')
    assert {'latest', '1.0', '1.0-1'} <= set(tags)


@needs_buildah
def test_rerun_refuses_a_document_that_does_not_match_koji(
        world, koji_files, git_server, small_rootfs, registry_url, monkeypatch):
    src = make_repo(git_server, 'reattach-bad', {
        'Dockerfile': dockerfile(name='acme/reattach-bad'), 'rootfs.tar': small_rootfs})[0]
    kill_before_attaching(monkeypatch, [])
    task_id, _params = world.start_parent(src)
    with pytest.raises(Killed):
        world.run_parent(src, task_id=task_id)
    monkeypatch.undo()
    hub = world.hub
    build = hub.getBuild(NVR)
    # the file behind topurl is not the one Koji recorded (same size, other bytes)
    path = koji_files.image_file(build, 'sbom-x86_64.spdx.json')
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"SPDX-2.3"', b'"SPDX-2.4"'))
    with pytest.raises(BackendError) as info:
        world.run_parent(src, task_id=task_id)
    message = str(info.value)
    assert message.startswith('%s was imported as build %d but its SBOM and provenance '
                              'were not attached in the registry: sbom-x86_64.spdx.json '
                              'from http://127.0.0.1:' % (NVR, build['id']))
    assert 'does not match Koji\'s archive record (%d bytes' % len(data) in message
    assert 'expected %d bytes, sha256 %s' % (len(data), hashlib.sha256(data).hexdigest()) \
        in message
    named = build['extra']['image']['supply_chain']['x86_64']
    assert 'Missing: %s, %s' % (named['sbom']['registry_tag'],
                                named['provenance']['registry_tag']) in message
    assert 'koji tag-build' in message
    # nothing attached, not tagged (the first run does not tag either when attaching fails)
    assert attachment_tags(registry_url, 'acme/reattach-bad') == []
    assert hub.tagged('f40-container-candidate') == []
    assert not [t for t in hub.children(task_id) if hub.task(t)['method'] == 'tagBuild']
    assert 'latest' not in registry_tags(registry_url, 'acme/reattach-bad')
    # a file far longer than Koji's record: read no further than the record's size
    path.write_bytes(data + b' ' * (8 * 1024 * 1024))
    with pytest.raises(BackendError) as info:
        world.run_parent(src, task_id=task_id)
    assert 'does not match Koji\'s archive record (more than %d bytes' % len(data) \
        in str(info.value)
    assert attachment_tags(registry_url, 'acme/reattach-bad') == []
    # Koji's files unreachable: the same fault, with the reason
    path.write_bytes(data)
    koji_files.close()
    with pytest.raises(BackendError) as info:
        world.run_parent(src, task_id=task_id)
    assert str(info.value).startswith(
        '%s was imported as build %d but its SBOM and provenance were not attached in the '
        'registry: cannot download sbom-x86_64.spdx.json from %s/packages/demo-container/'
        '1.0/1/images/sbom-x86_64.spdx.json: ' % (NVR, build['id'], world.options.topurl))
    assert attachment_tags(registry_url, 'acme/reattach-bad') == []
    assert hub.tagged('f40-container-candidate') == []


@needs_buildah
def test_rerun_with_nothing_missing_downloads_nothing(world, koji_files, git_server,
                                                      small_rootfs, registry_url):
    src = make_repo(git_server, 'reattach-none', {
        'Dockerfile': dockerfile(name='acme/reattach-none'), 'rootfs.tar': small_rootfs})[0]
    task_id, first = world.run_parent(src)
    tags = registry_tags(registry_url, 'acme/reattach-none')
    assert len(attachment_tags(registry_url, 'acme/reattach-none')) == 2
    lists_before = len(world.hub.calls_of('listArchives'))
    _tid, again = world.run_parent(src, task_id=task_id)     # the task is still OPEN
    assert again == first
    assert koji_files.requests == []
    assert len(world.hub.calls_of('listArchives')) == lists_before
    assert registry_tags(registry_url, 'acme/reattach-none') == tags


class _NoRegistry(object):
    def __getattr__(self, name):
        raise AssertionError('the registry was used: %s' % name)


def test_build_naming_no_documents_needs_nothing():
    """Builds imported before this feature have no extra.image.supply_chain."""
    build = {'id': 7, 'nvr': NVR, 'extra': {'image': {'index': {}}}}
    assert native_reattach.reattach(None, build, _NoRegistry(), 'acme/x', b'{}', None) == []


@pytest.mark.parametrize('supply', [
    ['x86_64'],
    {'x86_64': {'sbom': {'filename': 'sbom-x86_64.spdx.json',
                         'registry_tag': 'sha256-%s.sbom' % ('a' * 64)}}},
    {'x86_64': {k: {'filename': '../%s' % supply_chain.filename(k, 'x86_64'),
                    'registry_tag': 'sha256-%s.%s' % ('a' * 64, supply_chain.TAG_SUFFIX[k])}
                for k in supply_chain.KINDS}},
    {'x86_64': {k: {'filename': supply_chain.filename(k, 'x86_64'),
                    'registry_tag': 'sha256-%s.%s' % (c * 64, supply_chain.TAG_SUFFIX[k])}
                for k, c in zip(supply_chain.KINDS, 'ab')}},
])
def test_malformed_supply_chain_entry_is_a_clear_error(supply):
    build = {'id': 7, 'nvr': NVR, 'extra': {'image': {'supply_chain': supply}}}
    with pytest.raises(BackendError) as info:
        native_reattach.reattach(None, build, _NoRegistry(), 'acme/x', b'{}', None)
    assert str(info.value) == ('Build %s (id 7) has a malformed extra.image.supply_chain: '
                               'attach its SBOM and provenance by hand' % NVR)
