"""Image identity from labels, additional tags, container.yaml, file reading rules."""

import os

import koji
import pytest

from koji_containerbuild import source
from koji_containerbuild.errors import SourceError

FULL = {'com.redhat.component': 'demo-container', 'name': 'demo/app', 'version': '1.0',
        'release': '3'}


def test_preferred_labels():
    ident = source.image_identity(FULL)
    assert ident.to_dict() == {'component': 'demo-container', 'name': 'demo/app',
                               'version': '1.0', 'release': '3',
                               'nvr': 'demo-container-1.0-3'}


def test_legacy_labels_and_preference():
    ident = source.image_identity({'BZComponent': 'old', 'Name': 'old', 'Version': '2',
                                   'Release': '1', 'com.redhat.component': 'new'})
    assert (ident.component, ident.name, ident.version, ident.release) == \
        ('new', 'old', '2', '1')


def test_release_override_and_auto_release():
    assert source.image_identity(FULL, release_override='7.el9').nvr == \
        'demo-container-1.0-7.el9'
    no_release = dict(FULL)
    del no_release['release']
    ident = source.image_identity(no_release)
    assert ident.release is None and ident.nvr is None


def test_missing_labels_listed_in_one_error():
    with pytest.raises(SourceError) as info:
        source.image_identity({'release': '1', 'name': '  '})
    message = str(info.value)
    assert "component (label 'com.redhat.component' or 'BZComponent')" in message
    assert "version (label 'version' or 'Version')" in message
    assert "name (label 'name' or 'Name')" in message
    assert 'release' not in message.split('missing:')[1]
    assert isinstance(info.value, koji.BuildError)


@pytest.mark.parametrize('changes, message', [
    ({'version': '1-0'}, '"-" character is not allowed in the version'),
    ({'release': '1-0'}, '"-" character is not allowed in the release'),
    ({'release': 'a1'}, 'Invalid release'),
    ({'release': '1..2'}, 'Invalid release'),
    ({'version': '1.0+git'}, 'Invalid version'),
    ({'version': '1 0'}, 'Invalid version'),
    ({'com.redhat.component': 'de mo'}, 'Invalid component'),
    ({'com.redhat.component': 'a/b'}, 'Invalid component'),
    ({'com.redhat.component': 'x' * 300}, 'Invalid component'),
    ({'name': 'Demo'}, 'Invalid name'),
    ({'name': 'demo//app'}, 'Invalid name'),
    ({'name': 'registry.example.com/app'}, 'would be read as a registry host'),
])
def test_bad_values(changes, message):
    labels = dict(FULL, **changes)
    with pytest.raises(SourceError, match=message):
        source.image_identity(labels)


def test_bad_release_override():
    with pytest.raises(SourceError, match='Invalid release'):
        source.image_identity(FULL, release_override='x-1')


def test_flatpak_identity_from_container_yaml():
    yaml_data = {'flatpak': {'component': 'eog-flatpak', 'name': 'eog'},
                 'compose': {'modules': ['eog:f40-x']}}
    ident = source.image_identity({}, flatpak=True, container_yaml=yaml_data)
    assert (ident.component, ident.name, ident.version, ident.release) == \
        ('eog-flatpak', 'eog', 'f40_x', None)
    ident = source.image_identity({}, flatpak=True,
                                  container_yaml={'compose': {'modules': ['eog:stable']}},
                                  release_override='2')
    assert ident.nvr == 'eog-stable-2'
    # labels, when a Dockerfile exists, still count for flatpaks
    ident = source.image_identity(FULL, flatpak=True, container_yaml={})
    assert ident.nvr == 'demo-container-1.0-3'


@pytest.mark.parametrize('labels,container_yaml,expected', [
    # nothing at all: no label checks for flatpaks, the identity stays unknown
    ({}, {}, (None, None, None, None)),
    ({}, None, (None, None, None, None)),
    # only a name label (no component/version): no "Required Dockerfile label" error
    ({'name': 'eog'}, {}, (None, 'eog', None, None)),
    # component from the flatpak: key, no version anywhere
    ({}, {'flatpak': {'component': 'eog-flatpak'}}, ('eog-flatpak', 'eog-flatpak', None,
                                                     None)),
    # module with a profile and no stream version part
    ({}, {'compose': {'modules': ['eog:f40/default']}}, ('eog', 'eog', 'f40', None)),
    ({}, {'compose': {'modules': ['eog']}}, ('eog', 'eog', None, None)),
    ({}, {'compose': {'modules': []}, 'flatpak': {'name': 'eog'}}, (None, 'eog', None, None)),
])
def test_flatpak_skips_label_checks(labels, container_yaml, expected):
    ident = source.image_identity(labels, flatpak=True, container_yaml=container_yaml)
    assert (ident.component, ident.name, ident.version, ident.release) == expected
    assert ident.nvr is None
    # a release makes an NVR only when component and version are known too
    component, _, version, _ = expected
    with_release = source.image_identity(labels, flatpak=True, container_yaml=container_yaml,
                                         release_override='1')
    assert with_release.nvr == ('%s-%s-1' % (component, version)
                                if component and version else None)


def test_non_flatpak_still_needs_labels():
    with pytest.raises(SourceError, match='Required Dockerfile labels are missing'):
        source.image_identity({}, container_yaml={'flatpak': {'component': 'eog'}})


@pytest.mark.parametrize('container_yaml,message', [
    ({'flatpak': 'junk'}, '"flatpak" must be a mapping'),
    ({'compose': ['eog:stable']}, '"compose" must be a mapping'),
    ({'compose': {'modules': 'eog:stable'}}, '"compose.modules" must be a list'),
    ({'compose': {'modules': [1]}}, '"compose.modules" must be a list'),
    ({'flatpak': {'component': ['eog']}}, '"flatpak.component" must be a string'),
    ({'flatpak': {'name': 7}}, '"flatpak.name" must be a string'),
    ({'flatpak': {'component': 'bad component'}}, 'Invalid component'),
    ({'flatpak': {'name': 'Eog'}}, 'Invalid name'),
    ({'compose': {'modules': ['eog:a b']}}, 'Invalid version'),
])
def test_flatpak_container_yaml_values_still_checked(container_yaml, message):
    with pytest.raises(SourceError, match=message):
        source.image_identity({}, flatpak=True, container_yaml=container_yaml)


def test_tag_lengths():
    source.check_tag_lengths('1' * 64, '2' * 63, ['a' * 128])
    with pytest.raises(SourceError, match='version-release .* 129 characters'):
        source.check_tag_lengths('1' * 64, '2' * 64, [])
    with pytest.raises(SourceError, match='Additional tag longer than 128'):
        source.check_tag_lengths('1', '1', ['ok', 'b' * 129])
    source.check_tag_lengths('1' * 126, None, [])   # auto-release adds at least "-1"
    with pytest.raises(SourceError, match='too long for an image tag'):
        source.check_tag_lengths('1' * 127, None, [])


def test_split_valid_tags():
    assert source.split_valid_tags(['latest', 'v1.0', 'bad-tag', '.dot', 'ü', 'a_b']) == \
        (['latest', 'v1.0', 'a_b'], ['bad-tag', '.dot', 'ü'])


def _write(path, name, data):
    with open(os.path.join(path, name), 'wb') as handle:
        handle.write(data)


def test_additional_tags_file(tmp_path):
    d = str(tmp_path)
    assert source.read_additional_tags(d) == []
    _write(d, 'additional-tags', b' latest \n\nstable\nlatest\r\n')
    assert source.read_additional_tags(d) == ['latest', 'stable']
    _write(d, 'container.yaml', b'tags: [one, two]\n')
    assert source.read_additional_tags(d) == ['one', 'two']
    _write(d, 'container.yaml', b'tags: []\ncompose: {}\n')
    assert source.read_additional_tags(d) == ['latest', 'stable']


def test_additional_tags_errors(tmp_path):
    d = str(tmp_path)
    _write(d, 'additional-tags', b'\xff\n')
    with pytest.raises(SourceError, match='not valid UTF-8'):
        source.read_additional_tags(d)
    _write(d, 'additional-tags', b'x' * (source.MAX_SMALL_FILE + 1))
    with pytest.raises(SourceError, match='larger than'):
        source.read_additional_tags(d)
    with pytest.raises(SourceError, match='list of strings'):
        source.read_additional_tags(d, container_yaml={'tags': [1, 2]})
    os.unlink(os.path.join(d, 'additional-tags'))
    os.mkdir(os.path.join(d, 'additional-tags'))
    with pytest.raises(SourceError, match='not a regular file'):
        source.read_additional_tags(d)


@pytest.mark.parametrize('data, message', [
    (b'a: [\n', 'not valid YAML'),
    (b'- a\n- b\n', 'mapping at the top level'),
    (b'a: !!python/object:os.system x\n', 'not valid YAML'),
])
def test_container_yaml_errors(tmp_path, data, message):
    _write(str(tmp_path), 'container.yaml', data)
    with pytest.raises(SourceError, match=message):
        source.read_container_yaml(str(tmp_path))


def test_container_yaml_empty(tmp_path):
    _write(str(tmp_path), 'container.yaml', b'')
    assert source.read_container_yaml(str(tmp_path)) == {}


def test_read_labels_file_rules(tmp_path):
    d = str(tmp_path)
    _write(d, 'Dockerfile', b'FROM x\nLABEL release=1\n')
    path = os.path.join(d, 'Dockerfile')
    assert source.read_labels(path, overrides={'release': '5', 'x': None}) == {'release': '5'}
    os.symlink(path, os.path.join(d, 'link'))
    with pytest.raises(SourceError, match='symbolic link'):
        source.read_labels(os.path.join(d, 'link'))
    with pytest.raises(SourceError, match='Cannot read'):
        source.read_labels(os.path.join(d, 'missing'))
