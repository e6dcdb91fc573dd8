"""Base and layered builds through the real pipeline, metadata checked field by field
against docs/shared container-image-metadata.md section 2 and through the hub double."""

import gzip
import hashlib
import io
import json
import os
import re
import tarfile

import koji
import pytest

from koji_containerbuild import buildah, cg
from koji_containerbuild.errors import BackendError
from koji_containerbuild.registry import MEDIA_LIST, MEDIA_V2S2
from tests.doubles.hub_session import HubSessionDouble
from tests.native.conftest import APP, BASE, build

DIGEST = re.compile(r'^sha256:[0-9a-f]{64}$')


def test_base_image_result(base_image, registry):
    result = base_image['result']
    assert result['arch'] == 'x86_64' and result['goarch'] == 'amd64'
    assert DIGEST.match(result['image_id']) and result['config_digest'] == result['image_id']
    assert DIGEST.match(result['manifest_digest'])
    assert result['manifest_media_type'] == MEDIA_V2S2
    assert result['parent_id'] is None and result['parent_images'] == ['scratch']
    assert [c['name'] for c in result['components']] == ['koji-example-hello']
    comp = result['components'][0]
    assert comp == {'type': 'rpm', 'name': 'koji-example-hello', 'version': '1.0',
                    'release': '1', 'epoch': None, 'arch': 'noarch',
                    'sigmd5': comp['sigmd5'], 'signature': None}
    assert re.match(r'^[0-9a-f]{32}$', comp['sigmd5'])
    tag = 'test-00001-20240501093012-x86_64'
    assert result['tags'] == [tag]
    assert result['repositories'] == ['%s/koji-example/base:%s' % (registry.host, tag),
                                      '%s/koji-example/base@%s' % (registry.host,
                                                                   result['manifest_digest'])]
    # the registry serves exactly what we recorded
    client = registry.client()
    assert client.tag_digest('koji-example/base', tag) == result['manifest_digest']
    config = json.loads(client.get_blob('koji-example/base', result['image_id']))
    config.pop('container_config', None)
    assert config == result['config']
    labels = config['config']['Labels']
    for key, value in (('com.redhat.component', BASE.component), ('name', BASE.name),
                       ('version', '1.0'), ('release', '1'), ('architecture', 'x86_64'),
                       ('build-date', '2024-05-01T09:30:12Z'), ('vcs-type', 'git'),
                       ('vcs-ref', 'a' * 40), ('vcs-url', 'git://git.example.com/x'),
                       ('com.redhat.build-host', 'builder-1')):
        assert labels[key] == value
    assert [s['diff_id'] for s in result['layer_sizes']] == config['rootfs']['diff_ids']
    assert all(s['size'] > 0 for s in result['layer_sizes'])
    assert any(line.startswith('STEP') for line in base_image['log'])


def test_manifest_list_published(base_image, registry):
    client = registry.client()
    index = base_image['index']
    list_digest = index['digests'][MEDIA_LIST]
    assert index['pull'] == ['%s/koji-example/base@%s' % (registry.host, list_digest),
                             '%s/koji-example/base:1.0-1' % registry.host]
    assert index['tags'] == ['1.0-1'] and index['floating_tags'] == ['latest', '1.0']
    assert index['unique_tags'] == ['test-00001-20240501093012']
    for tag in ('1.0-1', 'latest', '1.0', 'test-00001-20240501093012'):
        media, data, digest = client.get_manifest('koji-example/base', tag)
        assert (media, digest) == (MEDIA_LIST, list_digest)
    body = json.loads(data)
    assert body['schemaVersion'] == 2 and body['mediaType'] == MEDIA_LIST
    entry, = body['manifests']
    result = base_image['result']
    assert entry == {'mediaType': MEDIA_V2S2, 'digest': result['manifest_digest'],
                     'size': result['manifest_size'],
                     'platform': {'architecture': 'amd64', 'os': 'linux'}}


def test_manifest_list_sorted_by_arch():
    results = [{'manifest_digest': 'sha256:' + c * 64, 'manifest_size': 10, 'goarch': g}
               for c, g in (('a', 's390x'), ('b', 'amd64'), ('c', 'arm64'))]
    data, digest = cg.manifest_list_for(results)
    assert [m['platform']['architecture'] for m in json.loads(data)['manifests']] == \
        ['amd64', 'arm64', 's390x']
    assert digest == 'sha256:' + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope='module')
def layered(examples, registry, storage, native_dir, base_image):
    unique = 'test-00002-20240501093013'
    result, lines = build(examples, 'app', APP, registry, storage,
                          os.path.join(native_dir, 'work-app'), unique)
    tags = cg.tag_plan(APP, additional_tags=['stable'], unique=unique)
    index = cg.publish_manifest_list(registry.client(), APP.name, [result], tags)
    return result, lines, index, tags


def test_layered_build_pins_parent(layered, base_image, registry):
    result, lines, _index, _tags = layered
    base = base_image['result']
    assert result['parent_images'] == ['koji-example/base:1.0-1']
    assert result['parent_id'] == base['image_id']
    assert result['parent_pullspecs'] == {
        'koji-example/base:1.0-1': '%s/koji-example/base:1.0-1' % registry.host}
    assert result['parent_pinned'] == {
        'koji-example/base:1.0-1': '%s/koji-example/base@%s' % (registry.host,
                                                                 base['manifest_digest'])}
    # parent layers first, then the new one
    assert [s['diff_id'] for s in result['layer_sizes']][:1] == \
        [s['diff_id'] for s in base['layer_sizes']]
    assert len(result['layer_sizes']) == 2
    assert [c['name'] for c in result['components']] == ['koji-example-hello']
    assert any(base['manifest_digest'] in line for line in lines)


def _metadata(layered, base_image, logs=(), **kwargs):
    result, _lines, index, _tags = layered
    return cg.build_metadata(APP, 'git://git.example.com/app#' + 'a' * 40, 'alice', 4242,
                             1714555812, 1714556990, [result], index=index,
                             parent_build={'id': 17, 'nvr': BASE.nvr}, logs=logs,
                             submitter='builder-01.example.com', **kwargs)


def test_metadata_fields(layered, base_image, registry, tmp_path):
    result, _lines, index, tags = layered
    logfile = tmp_path / 'x86_64.log'
    logfile.write_text('line one\n')
    meta = _metadata(layered, base_image, logs=[(str(logfile), 'x86_64.log')], build_id=99)
    assert set(meta) == {'metadata_version', 'build', 'buildroots', 'output'}
    assert meta['metadata_version'] == 0
    build = meta['build']
    assert set(build) == {'name', 'version', 'release', 'source', 'start_time', 'end_time',
                          'extra', 'owner', 'build_id'}
    assert (build['name'], build['version'], build['release']) == \
        ('koji-example-app-container', '1.0', '1')
    assert build['source'] == 'git://git.example.com/app#' + 'a' * 40
    assert (build['start_time'], build['end_time'], build['owner'], build['build_id']) == \
        (1714555812, 1714556990, 'alice', 99)
    extra = build['extra']
    assert set(extra) == {'image', 'container_koji_task_id', 'osbs_build', 'submitter'}
    assert 'typeinfo' not in extra
    assert extra['container_koji_task_id'] == 4242
    assert extra['submitter'] == 'builder-01.example.com'
    assert extra['osbs_build'] == {'kind': 'container_build', 'engine': 'buildah',
                                   'subtypes': []}
    image = extra['image']
    assert image['isolated'] is False
    assert image['parent_build_id'] == 17
    assert image['parent_images'] == ['koji-example/base:1.0-1']
    assert image['index'] == index
    assert image['index']['pull'][0].split('@')[1] == index['digests'][MEDIA_LIST]
    assert image['media_types'] == [MEDIA_LIST, MEDIA_V2S2]
    root, = meta['buildroots']
    assert root == {'id': 'x86_64-builder-1', 'host': {'os': cg.host_os(), 'arch': 'x86_64'},
                    'content_generator': {'name': 'koji-containerbuild',
                                          'version': root['content_generator']['version']},
                    'container': {'type': 'buildah', 'arch': 'x86_64'},
                    'extra': root['extra'],
                    'tools': root['tools'], 'components': root['components']}
    assert root['host']['os'] and root['extra']['buildah']['isolation']
    assert [t['name'] for t in root['tools']] == ['buildah', 'koji-containerbuild']
    image_out, log_out = meta['output']
    name, data = cg.placeholder_archive(result)
    assert image_out['filename'] == name == \
        'registry-pointer-%s.x86_64.tar.gz' % result['config_digest']
    assert image_out['filesize'] == len(data)
    assert image_out['checksum'] == hashlib.sha256(data).hexdigest()
    assert image_out['checksum_type'] == 'sha256'
    assert image_out['type'] == 'docker-image' and image_out['arch'] == 'x86_64'
    assert image_out['buildroot_id'] == root['id']
    assert image_out['components'] == result['components']
    assert image_out['extra']['image'] == {'arch': 'x86_64'}
    docker = image_out['extra']['docker']
    assert docker == {
        'id': result['config_digest'], 'parent_id': base_image['result']['image_id'],
        'repositories': result['repositories'],
        'digests': {MEDIA_V2S2: result['manifest_digest']},
        'config': result['config'], 'layer_sizes': result['layer_sizes'],
        'tags': ['test-00002-20240501093013-x86_64']}
    assert 'container_config' not in docker['config']
    # the arch's log belongs to that arch's buildroot
    assert log_out == {'buildroot_id': root['id'], 'type': 'log', 'arch': 'x86_64',
                       'filename': 'x86_64.log', 'filesize': 9, 'checksum_type': 'sha256',
                       'checksum': hashlib.sha256(b'line one\n').hexdigest()}
    # the placeholder names the pull specs
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        readme = tar.extractfile('README').read().decode()
    assert result['repositories'][0] in readme and result['repositories'][1] in readme


def test_metadata_is_deterministic(layered, base_image):
    one = cg.dumps(_metadata(layered, base_image))
    two = cg.dumps(_metadata(layered, base_image))
    assert one == two
    assert cg.placeholder_archive(layered[0]) == cg.placeholder_archive(layered[0])


def test_metadata_imports_through_hub_double(layered, base_image, tmp_path):
    """What Koji's CGImport requires: the hub double validates shape, btype, files."""
    session = HubSessionDouble()
    session.add_user('alice')
    session.grant_cg_access('builder-01.example.com', 'koji-containerbuild')
    reservation = session.CGInitBuild('koji-containerbuild', {
        'name': APP.component, 'version': APP.version, 'release': APP.release})
    logfile = tmp_path / 'x86_64.log'
    logfile.write_text('build output\n')
    logs = [(str(logfile), 'x86_64.log')]
    meta = _metadata(layered, base_image, logs=logs, build_id=reservation['build_id'])
    meta['build']['extra']['image'].pop('parent_build_id')   # no such build in the double
    outdir = tmp_path / 'import'
    names = cg.write_import_dir(str(outdir), meta, [layered[0]], logs)
    session.claim_upload_dir('cg-import/1', 'builder-01.example.com')
    for name in names:
        session.uploadWrapper(str(outdir / name), 'cg-import/1', name=name)
    session.CGImport('metadata.json', 'cg-import/1', token=reservation['token'])
    record = session.getBuild(APP.nvr)
    assert record['state'] == koji.BUILD_STATES['COMPLETE']
    assert record['owner_name'] == 'alice'
    archives = session.listArchives(buildID=record['id'])
    assert [a['filename'] for a in archives if a.get('btype') == 'image' or
            a['filename'].endswith('.tar.gz')] == [cg.placeholder_filename(layered[0])]


def test_control_characters_escaped():
    meta = cg._clean({'a\x01': ['x\x1by', 'tab\tnew\n'], 'n': 5})
    assert meta == {'a\\x01': ['x\\x1by', 'tab\tnew\n'], 'n': 5}


def test_tag_plan_kinds():
    assert cg.tag_plan(APP, scratch=True, unique='u') == \
        {'unique': ['u'], 'primary': [], 'floating': []}
    assert cg.tag_plan(APP, isolated=True, unique='u') == \
        {'unique': ['u'], 'primary': ['1.0-1'], 'floating': []}
    assert cg.tag_plan(APP, additional_tags=['1.0', 'x'], unique='u')['floating'] == \
        ['latest', '1.0', 'x']
    tag = cg.unique_tag('f40-container', now=1714555812, rand=123)
    assert tag == 'f40-container-00123-20240501093012'


def test_no_arch_results_refused():
    with pytest.raises(BackendError):
        cg.build_metadata(APP, 's', 'o', 1, 0, 0, [])


def test_goarch_unknown():
    with pytest.raises(BackendError, match='unknown architecture'):
        buildah.goarch('sparc')
