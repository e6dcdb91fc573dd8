"""The native buildContainer flow end to end: real task handlers, real createContainer runs
(buildah, git daemon, docker-distribution registry on 127.0.0.1), the hub double."""

import json

import koji
import pytest

from koji_containerbuild.registry import MEDIA_LIST, Registry
from tests.native_koji.conftest import SECRET, buildah_available, dockerfile, make_repo

pytestmark = pytest.mark.skipif(not buildah_available(), reason='needs buildah as root')


def _registry(url):
    return Registry(url, tls_verify=False)


def test_build_import_tag_publish(world_factory, git_server, small_rootfs, registry_url):
    world = world_factory()
    src, sha = make_repo(git_server, 'flow-ok', {
        'Dockerfile': dockerfile(name='acme/flow-ok'), 'rootfs.tar': small_rootfs,
        'additional-tags': 'stable\n'})
    task_id, result = world.run_parent(src)
    hub = world.hub

    build = hub.getBuild('demo-container-1.0-1')
    assert build['state'] == koji.BUILD_STATES['COMPLETE']
    assert result['koji_builds'] == [str(build['id'])]
    assert 'user_warnings' not in result
    # owner is the task owner, not the builder; the task id and exact commit recorded
    assert build['owner_name'] == 'alice'
    assert build['source'] == src.split('#')[0] + '#' + sha
    assert build['task_id'] == task_id
    assert build['cg_name'] == 'koji-containerbuild'
    extra = build['extra']
    assert extra['container_koji_task_id'] == task_id
    image = extra['image']
    assert image['isolated'] is False
    assert image['parent_images'] == ['scratch']
    assert 'parent_build_id' not in image
    index = image['index']
    list_digest = index['digests'][MEDIA_LIST]
    host = registry_url.split('://')[1]
    assert index['pull'] == ['%s/acme/flow-ok@%s' % (host, list_digest),
                             '%s/acme/flow-ok:1.0-1' % host]
    assert index['tags'] == ['1.0-1']
    assert index['floating_tags'] == ['latest', '1.0', 'stable']
    unique = index['unique_tags'][0]
    assert unique.startswith('f40-container-candidate-')

    # every tag serves the list the metadata names
    reg = _registry(registry_url)
    for tag in [unique, '1.0-1', 'latest', '1.0', 'stable']:
        assert reg.tag_digest('acme/flow-ok', tag) == list_digest
    assert result['repositories'] == ['%s/acme/flow-ok:%s' % (host, t) for t in
                                      [unique, '1.0-1', 'latest', '1.0', 'stable']]

    # archives: one image per arch with its docker extra; the log imported too
    archives = [a for a in hub.listArchives(buildID=build['id']) if a['type_name'] == 'tar']
    assert [a['filename'].split('.')[-3] for a in archives] == ['x86_64']
    extra = archives[0]['extra']          # the hub keeps the output's whole extra
    assert extra['image'] == {'arch': 'x86_64'}
    docker = extra['docker']
    assert docker['tags'] == ['%s-x86_64' % unique]
    assert docker['repositories'][0] == '%s/acme/flow-ok:%s-x86_64' % (host, unique)
    imported = [o for (m, a, k) in hub.calls if m == 'CGImport' for o in [a]]
    assert imported and imported[0][0] == 'metadata.json'
    upload_dir = imported[0][1]
    assert upload_dir.startswith('cg_importer/%d-' % task_id)
    meta = json.loads(hub.uploads[(upload_dir, 'metadata.json')])
    logs = [o for o in meta['output'] if o['type'] == 'log']
    assert [o['filename'] for o in logs] == ['x86_64.log']
    assert meta['build']['build_id'] == build['id']
    assert meta['build']['owner'] == 'alice'

    # tagged through a tagBuild subtask with kojid's argument list
    children = [hub.task(t) for t in hub.children(task_id)]
    tag_tasks = [c for c in children if c['method'] == 'tagBuild']
    dest = hub.getTag('f40-container-candidate')
    assert [(c['label'], c['_request']) for c in tag_tasks] == [
        ('tag', [dest['id'], build['id'], False, None, True])]
    assert hub.tagged('f40-container-candidate') == [build['id']]
    arch_tasks = [c for c in children if c['method'] == 'createContainer']
    assert [(c['label'], c['arch']) for c in arch_tasks] == [('x86_64', 'x86_64')]
    assert hub.getChannel(arch_tasks[0]['channel_id'])['name'] == 'container-native'
    child_files = hub.uploaded_files(arch_tasks[0]['id'])
    assert 'x86_64.log' in child_files
    # the child's own checkout, logged as kojid's checkouts are
    assert 'Fetched %s' % src.split('#')[0] in child_files['checkout.log'].decode()
    arch_meta = json.loads(child_files['metadata-x86_64.json'])
    assert arch_meta['manifest_digest'] == docker['digests'][
        'application/vnd.docker.distribution.manifest.v2+json']

    # credentials from the auth file never left the builder
    assert SECRET not in world.all_text()


def test_scratch_pushes_unique_tag_only(world_factory, git_server, small_rootfs,
                                        registry_url):
    world = world_factory()
    src, _sha = make_repo(git_server, 'flow-scratch', {
        'Dockerfile': dockerfile(name='acme/flow-scratch', release=None),
        'rootfs.tar': small_rootfs})
    _task_id, result = world.run_parent(src, {'scratch': True})
    hub = world.hub
    assert result['koji_builds'] == []
    assert len(result['repositories']) == 1
    unique = result['repositories'][0].rsplit(':', 1)[1]
    assert not hub.calls_of('CGInitBuild') and not hub.calls_of('CGImport')
    reg = _registry(registry_url)
    assert reg.get_manifest('acme/flow-scratch', unique)[0] == MEDIA_LIST
    with pytest.raises(koji.GenericError):
        reg.get_manifest('acme/flow-scratch', 'latest')
