"""Parent image recording (FROM an image Koji built, koji_parent_build) and the [native]
configuration section."""

import configparser

import pytest

from koji_containerbuild.backends import native, native_config
from koji_containerbuild.errors import ConfigError, OptionError
from tests.native_koji.conftest import buildah_available, dockerfile, make_repo


@pytest.mark.skipif(not buildah_available(), reason='needs buildah as root')
def test_parent_build_recorded(world_factory, git_server, small_rootfs, registry_url):
    world = world_factory()
    hub = world.hub
    hub.add_package('f40-container-candidate', 'pbase-container')
    hub.add_package('f40-container-candidate', 'papp-container')
    hub.add_package('f40-container-candidate', 'papp2-container')
    base_src = make_repo(git_server, 'pbase', {
        'Dockerfile': dockerfile(component='pbase-container', name='acme/pbase'),
        'rootfs.tar': small_rootfs})[0]
    _t, base_result = world.run_parent(base_src)
    base_id = int(base_result['koji_builds'][0])

    # FROM the Koji-built image by name: found by its labels and matching digest
    app_src = make_repo(git_server, 'papp', {
        'Dockerfile': 'FROM acme/pbase:1.0-1\nLABEL com.redhat.component=papp-container '
                      'name=acme/papp version=2 release=1\n'})[0]
    app_task, app_result = world.run_parent(app_src)
    image = hub.getBuild(int(app_result['koji_builds'][0]))['extra']['image']
    host = registry_url.split('://')[1]
    assert image['parent_build_id'] == base_id
    assert image['parent_images'] == ['acme/pbase:1.0-1']
    assert image['parent_image_builds'] == {
        '%s/acme/pbase:1.0-1' % host: {'id': base_id, 'nvr': 'pbase-container-1.0-1'}}

    # koji_parent_build replaces the final FROM with the build's by-digest pull spec
    app2_src = make_repo(git_server, 'papp2', {
        'Dockerfile': 'FROM acme/does-not-exist:9\nLABEL com.redhat.component=papp2-container'
                      ' name=acme/papp2 version=2 release=1\n'})[0]
    app2_task, app2_result = world.run_parent(app2_src,
                                              {'koji_parent_build': 'pbase-container-1.0-1'})
    image2 = hub.getBuild(int(app2_result['koji_builds'][0]))['extra']['image']
    assert image2['parent_build_id'] == base_id

    # the builder's parent image cache: the first build pulled pbase into it, the second
    # (same digest) used it without pulling (backends/native_cache.py)
    def arch_log(task_id):
        child = [t for t in hub.children(task_id)
                 if hub.task(t)['method'] == 'createContainer'][0]
        return hub.uploaded_files(child)['x86_64.log'].decode('utf-8', 'replace')
    assert "pulling it into the builder's image cache" in arch_log(app_task)
    assert "from the builder's image cache" in arch_log(app2_task)
    assert "pulling it into" not in arch_log(app2_task)


def test_rewrite_base_keeps_stages():
    text = 'FROM a AS build\nRUN make\nFROM b\nCOPY --from=build /x /x\n'
    out = native.rewrite_base(text, 'reg/base@sha256:' + 'a' * 64)
    assert out.splitlines() == ['FROM a AS build', 'RUN make',
                                'FROM reg/base@sha256:' + 'a' * 64, 'COPY --from=build /x /x']
    with pytest.raises(OptionError):
        native.rewrite_base('FROM scratch\n', 'x')


def test_repository_and_unique_tag():
    assert native.repository_for('acme/demo') == 'acme/demo'
    assert native.repository_for('acme/demo', 'org') == 'org/acme-demo'
    with pytest.raises(OptionError):
        native.repository_for('Acme/Demo')
    tag = native.unique_tag('{target}-{random}-{timestamp}', 'f40/bad target', 5, now=0,
                            rand=42)
    assert tag == 'f40_bad_target-00042-19700101000000'
    assert native.bump_release('3.el9') == '4.el9'


def _parse(text):
    parser = configparser.ConfigParser()
    parser.read_string(text)
    return native_config.parse(parser)


def test_config_defaults_are_safe():
    conf = _parse('[native]\nregistry = https://registry.example.com\n')
    assert conf.registry_tls_verify is True
    assert conf.content_generator == 'koji-containerbuild'
    assert conf.channel == 'container-native'
    assert conf.isolation == 'oci'
    assert conf.network == 'private'
    assert conf.pull == 'always'
    assert _parse('[native]\nregistry = https://r\nisolation = chroot\nnetwork = host\n'
                  ).isolation == 'chroot'
    assert conf.registry_host == 'registry.example.com'
    assert 'registry = ' in native_config.sample_section()


@pytest.mark.parametrize('text, word', [
    ('', 'registry is required'),
    ('registry = https://u:p@reg.example.com\n', 'credentials'),
    ('registry = ftp://reg\n', 'http(s)'),
    ('registry = https://reg\nregistry_tls_verify = maybe\n', 'true or false'),
    ('registry = https://reg\nnetwork = bridge\n', 'network'),
    ('registry = https://reg\nunique_tag_format = {target}\n', 'unique_tag_format'),
    ('registry = https://reg\nunique_tag_format = {nope}-{random}\n', 'unknown field'),
    ('registry = https://reg\nregistry_credentials = auth.json\n', 'absolute'),
    ('registry = https://reg\nbogus = 1\n', 'unknown key'),
    ('registry = https://reg\npoll_interval = 0\n', 'positive'),
    ('registry = https://reg\nisolation = chroot\n', 'network = host'),
    ('registry = https://reg\nisolation = chroot\nnetwork = none\n', 'network = host'),
])
def test_config_errors(text, word):
    with pytest.raises(ConfigError) as info:
        _parse('[native]\n' + text)
    assert word in str(info.value)
    assert 'u:p' not in str(info.value)


def test_sample_builder_config_carries_the_native_defaults():
    """builder/builder_containerbuild.conf (shipped as the -builder RPM's config) holds the
    [native] section exactly as the code defines it, so the two cannot drift."""
    import configparser
    import os
    path = os.path.join(os.path.dirname(__file__), '..', '..', 'builder',
                        'builder_containerbuild.conf')
    with open(path) as f:
        text = f.read()
    assert text.endswith(native_config.sample_section())
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    assert dict(parser.items('native')) == dict(
        (key, str(default)) for key, default, _kind, _help in native_config.KEYS)


def test_parent_image_builds_has_every_stage():
    """metadata doc section 7: one entry per stage keyed by the full pullable reference,
    null when no Koji build is known (parents from other registries included)."""
    class Fake(object):
        def _koji_build_of(self, image, arch_results):
            return {'id': 7, 'nvr': 'base-container-1-1'} if image == 'acme/base:1' else None
    digest = 'sha256:' + 'b' * 64
    result = {'parent_images': ['quay.example.com/org/builder:2', 'other.example/x@' + digest,
                                'ghcr.example.com/tools', 'acme/base:1'],
              'parent_pullspecs': {'acme/base:1': 'reg:5000/acme/base:1'}}
    parent_build, builds = native.ParentBuild._parent_images(Fake(), [result], None)
    assert builds == {'quay.example.com/org/builder:2': None,
                      'other.example/x@' + digest: None,
                      'ghcr.example.com/tools:latest': None,
                      'reg:5000/acme/base:1': {'id': 7, 'nvr': 'base-container-1-1'}}
    assert parent_build == {'id': 7, 'nvr': 'base-container-1-1'}
    # FROM another registry as the final stage: recorded, no parent build
    result = {'parent_images': ['quay.example.com/org/base:3'], 'parent_pullspecs': {}}
    parent_build, builds = native.ParentBuild._parent_images(Fake(), [result], None)
    assert builds == {'quay.example.com/org/base:3': None} and parent_build is None
