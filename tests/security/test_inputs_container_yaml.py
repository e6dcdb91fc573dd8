"""container.yaml is hostile YAML: bounded size, deep nesting a clear error."""

import pytest

from koji_containerbuild import source
from koji_containerbuild.errors import SourceError


def write(tmp_path, data):
    (tmp_path / 'container.yaml').write_bytes(data)
    return str(tmp_path)


def test_size_limit(tmp_path):
    srcdir = write(tmp_path, b'tags:\n' + b'- t\n' * (source.MAX_CONTAINER_YAML // 4))
    with pytest.raises(SourceError, match='larger than %d bytes' % source.MAX_CONTAINER_YAML):
        source.read_container_yaml(srcdir)


@pytest.mark.parametrize('data', [b'a: ' + b'[' * (source.MAX_CONTAINER_YAML - 10),
                                  b'a: ' + b'{b: ' * 16000])
def test_deep_nesting_is_a_clear_error(tmp_path, data):
    with pytest.raises(SourceError, match='container.yaml is not valid YAML'):
        source.read_container_yaml(write(tmp_path, data))


def test_aliases_do_not_expand(tmp_path):
    lines = [b'a0: &a0 [x, x, x, x, x, x, x, x, x, x]']
    for i in range(1, 12):
        lines.append(b'a%d: &a%d [' % (i, i) + b', '.join([b'*a%d' % (i - 1)] * 10) + b']')
    lines.append(b'tags: *a11')
    srcdir = write(tmp_path, b'\n'.join(lines) + b'\n')
    value = source.read_container_yaml(srcdir)
    with pytest.raises(SourceError, match='"tags" must be a list of strings'):
        source.read_additional_tags(srcdir, container_yaml=value)
