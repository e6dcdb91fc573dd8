"""additional-tags and container.yaml tags: linear, bounded, split like the builders."""

import pytest

from koji_containerbuild import source
from koji_containerbuild.errors import SourceError


def write(tmp_path, data):
    (tmp_path / 'additional-tags').write_bytes(data)
    return str(tmp_path)


def test_duplicates_removed_in_file_order(tmp_path):
    srcdir = write(tmp_path, b'b\na\n b \n\n\r\na\r\nc\n')
    assert source.read_additional_tags(srcdir, container_yaml={}) == ['b', 'a', 'c']


@pytest.mark.parametrize('count', [source.MAX_ADDITIONAL_TAGS + 1, 100000])
def test_too_many_tags_refused_naming_the_limit(tmp_path, count):
    srcdir = write(tmp_path, b''.join(b't%d\n' % i for i in range(count)))
    with pytest.raises(SourceError, match='at most %d' % source.MAX_ADDITIONAL_TAGS):
        source.read_additional_tags(srcdir, container_yaml={})


def test_yaml_tags_bounded_too(tmp_path):
    tags = ['t%d' % i for i in range(source.MAX_ADDITIONAL_TAGS + 1)]
    with pytest.raises(SourceError, match='container.yaml'):
        source.read_additional_tags(str(tmp_path), container_yaml={'tags': tags})


def test_many_duplicates_at_the_size_limit_are_linear(tmp_path):
    # 1 MiB of the same few tags: the old list-membership dedupe was quadratic only in
    # distinct tags; this checks the whole file is handled and gives the few tags.
    line = b'x%d\n'
    data = b''.join(line % (i % 10) for i in range(source.MAX_SMALL_FILE // 4))
    srcdir = write(tmp_path, data[:source.MAX_SMALL_FILE])
    assert source.read_additional_tags(srcdir, container_yaml={}) == [
        'x%d' % i for i in range(10)]


@pytest.mark.parametrize('sep', ['\x0c', '\x85', '\u2028', '\x1c', '\r'])
def test_lines_end_at_newline_only(tmp_path, sep):
    srcdir = write(tmp_path, ('good\nbad%sworse\n' % sep).encode('utf-8'))
    tags = source.read_additional_tags(srcdir, container_yaml={})
    assert tags[0] == 'good' and len(tags) == 2
    valid, invalid = source.split_valid_tags(tags)
    assert valid == ['good'] and invalid == ['bad%sworse' % sep]
