"""RPM components read with the rpm bindings from a real rpmdb made with `rpm --root`."""

import os
import subprocess
import sys
import tarfile

import pytest

from koji_containerbuild import rpmdb
from koji_containerbuild.errors import BackendError


@pytest.fixture(scope='module')
def rootfs(examples, tmp_path_factory):
    dest = str(tmp_path_factory.mktemp('rootfs'))
    with tarfile.open(os.path.join(examples, 'base', 'rootfs.tar')) as tar:
        tar.extractall(dest, members=[m for m in tar.getmembers()
                                      if m.name.startswith(('./var', './usr'))])
    return dest


def test_components_from_rootfs(rootfs):
    comps = rpmdb.rpm_components(rootfs)
    assert len(comps) == 1
    comp = comps[0]
    assert comp['name'] == 'koji-example-hello' and comp['epoch'] is None
    assert comp['signature'] is None and comp['type'] == 'rpm'
    expected = subprocess.run(
        ['rpm', '--root', rootfs, '--dbpath', '/var/lib/rpm', '-qa', '--qf', '%{SIGMD5}'],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True).stdout.decode()
    assert comp['sigmd5'] == expected
    # the db directory itself works too
    assert rpmdb.rpm_components(os.path.join(rootfs, 'var/lib/rpm')) == comps


def test_sysimage_location_through_relative_symlink(rootfs, tmp_path):
    root = tmp_path / 'img'
    (root / 'usr/lib/sysimage').mkdir(parents=True)
    os.rename(os.path.join(rootfs, 'var/lib/rpm'), str(root / 'usr/lib/sysimage/rpm'))
    try:
        (root / 'var/lib').mkdir(parents=True)
        os.symlink('../../usr/lib/sysimage/rpm', str(root / 'var/lib/rpm'))
        assert [c['name'] for c in rpmdb.rpm_components(str(root))] == ['koji-example-hello']
    finally:
        os.rename(str(root / 'usr/lib/sysimage/rpm'), os.path.join(rootfs, 'var/lib/rpm'))


def test_symlink_cannot_escape_the_image(tmp_path):
    root = tmp_path / 'img'
    (root / 'var/lib').mkdir(parents=True)
    os.symlink('/var/lib/dpkg', str(root / 'var/lib/rpm'))       # absolute: stays inside
    os.symlink('../../../../../../etc', str(root / 'var/lib/x'))
    assert rpmdb.resolve_in_root(str(root), 'var/lib/rpm') is None
    assert rpmdb.resolve_in_root(str(root), 'var/lib/x') is None or \
        rpmdb.resolve_in_root(str(root), 'var/lib/x').startswith(str(root))
    assert rpmdb.rpm_components(str(root)) == []


def test_scratch_image_has_no_rpms(tmp_path):
    assert rpmdb.rpm_components(str(tmp_path)) == []
    with pytest.raises(BackendError, match='not a directory'):
        rpmdb.rpm_components(str(tmp_path / 'missing'))


def test_signature_key_id():
    assert rpmdb._signature(['(none)', 'RSA/SHA256, Mon 01 Jan 2024, Key ID 199e2f91fd431d51',
                             '(none)']) == '199e2f91fd431d51'
    assert rpmdb._signature(['(none)'] * 4) is None


def test_host_components_never_see_an_image_dbpath(rootfs):
    """The pipeline reads host and image RPMs in parallel threads; _dbpath is global."""
    import threading

    import rpm

    alone = rpmdb.host_components()
    image_db = os.path.join(rootfs, 'var/lib/rpm')
    assert alone != rpmdb.rpm_components(image_db)
    got = []
    with rpmdb._LOCK:      # what rpm_components holds while _dbpath names the image
        rpm.addMacro('_dbpath', image_db)
        try:
            worker = threading.Thread(target=lambda: got.append(rpmdb.host_components()))
            worker.start()
            worker.join(1.0)   # give an unlocked reader time to pick up the image path
        finally:
            rpm.delMacro('_dbpath')
    worker.join()
    assert got == [alone]


def test_missing_rpm_bindings_are_a_clear_fault(monkeypatch, tmp_path):
    """A builder whose Python has no rpm module gets one line saying what to install."""
    monkeypatch.setitem(sys.modules, 'rpm', None)     # import rpm -> ImportError
    with pytest.raises(BackendError) as info:
        rpmdb.rpm_components_and_licenses(str(tmp_path))
    assert 'install python3-rpm' in str(info.value)
