"""A real yum repository for hermetic-build tests: the example RPM
(examples/base/koji-example-hello.spec, built with rpmbuild) indexed by createrepo_c."""

import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = os.path.join(ROOT, 'examples', 'base', 'koji-example-hello.spec')


def available():
    return bool(shutil.which('createrepo_c') and shutil.which('rpmbuild'))


def make_yum_repo(dest, work):
    """Build the example RPM under `work`, copy it into `dest` and index `dest`."""
    topdir = os.path.join(work, 'rpmbuild')
    subprocess.run(['rpmbuild', '-bb', '--quiet', '--define', '_topdir %s' % topdir,
                    '--define', '_build_id_links none', SPEC], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.makedirs(dest, exist_ok=True)
    rpms = os.path.join(topdir, 'RPMS', 'noarch')
    for name in os.listdir(rpms):
        shutil.copy(os.path.join(rpms, name), dest)
    subprocess.run(['createrepo_c', '--quiet', dest], check=True,
                   stdout=subprocess.DEVNULL)
    return dest
