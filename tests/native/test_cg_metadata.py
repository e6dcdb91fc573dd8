"""Content-generator metadata facts Koji web and clients show: the buildroot's host OS
and container, each arch's log on its own buildroot, placeholder archive names."""

import gzip
import io
import tarfile

from koji_containerbuild import cg


def _result(arch, digest):
    return {'arch': arch, 'config_digest': 'sha256:' + digest * 64,
            'repositories': ['reg.example.com/acme/demo:t-%s' % arch],
            'manifest_digest': 'sha256:' + 'e' * 64, 'config': {}, 'layer_sizes': [],
            'tags': ['t-%s' % arch], 'components': [], 'parent_images': ['scratch'],
            'buildroot': {'id': '%s-b' % arch, 'host': {'os': 'Fedora Linux 40', 'arch': arch},
                          'container': {'type': 'buildah', 'arch': arch},
                          'tools': [], 'components': []}}


def test_host_os_from_os_release(tmp_path):
    path = tmp_path / 'os-release'
    path.write_text('NAME="Fedora Linux"\nVERSION_ID=40\nPRETTY_NAME="Fedora Linux 40 '
                    '(Forty)"\n')
    assert cg.host_os(str(path)) == 'Fedora Linux 40 (Forty)'
    path.write_text("NAME='Red Hat Enterprise Linux'\nVERSION_ID=\"9.4\"\n")
    assert cg.host_os(str(path)) == 'Red Hat Enterprise Linux 9.4'
    # missing or empty: the kernel's name, never None
    assert cg.host_os(str(tmp_path / 'absent')) == 'Linux'
    path.write_text('garbage without equals\n' * 10000)
    assert cg.host_os(str(path)) == 'Linux'


def test_each_arch_log_is_an_output_of_its_own_buildroot(tmp_path):
    logs = []
    for name in ('x86_64.log', 'aarch64.log', 'extra.log'):
        (tmp_path / name).write_text('log %s\n' % name)
        logs.append((str(tmp_path / name), name))
    meta = cg.build_metadata({'component': 'demo', 'version': '1', 'release': '1'},
                             'git://x/y#a', 'alice', 7, 0, 1,
                             [_result('x86_64', 'a'), _result('aarch64', 'b')], logs=logs)
    by_name = dict((o['filename'], o) for o in meta['output'] if o['type'] == 'log')
    assert (by_name['x86_64.log']['buildroot_id'], by_name['x86_64.log']['arch']) == \
        ('x86_64-b', 'x86_64')
    assert (by_name['aarch64.log']['buildroot_id'], by_name['aarch64.log']['arch']) == \
        ('aarch64-b', 'aarch64')
    # a log of no arch: the first buildroot, noarch
    assert (by_name['extra.log']['buildroot_id'], by_name['extra.log']['arch']) == \
        ('aarch64-b', 'noarch')


def test_placeholder_cannot_be_taken_for_an_image():
    name, data = cg.placeholder_archive(_result('x86_64', 'a'))
    assert name == 'registry-pointer-sha256:%s.x86_64.tar.gz' % ('a' * 64)
    assert not name.startswith('docker-image-')
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        assert tar.getnames() == ['README']
        text = tar.extractfile('README').read().decode()
    assert text.startswith('This is not a container image')
    assert 'reg.example.com/acme/demo:t-x86_64' in text
