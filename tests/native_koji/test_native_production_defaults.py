"""A build with the production defaults (isolation = oci, network = private,
pull = always). Skipped, with the runtime's own reason, where the OCI runtime cannot
start a container (e.g. crun on a host with hybrid cgroups)."""

import shutil
import subprocess

import pytest

from koji_containerbuild import buildah
from tests.native_koji.conftest import buildah_available, make_repo

LABELS = 'LABEL com.redhat.component="demo-container" name="acme/prod" version="1.0" ' \
         'release="1"\n'


def oci_runtime_problem(tmp_path):
    """None if `buildah run --isolation oci --network private` works here, else why not."""
    storage = buildah.Storage.temporary(str(tmp_path))
    try:
        ctr = storage.run(['from', 'scratch'], what='from').strip()
        mnt = storage.run(['mount', ctr], what='mount').strip()
        shutil.copy('/bin/busybox', mnt + '/busybox')
        proc = subprocess.run(storage.args() + ['run', '--isolation', 'oci', '--network',
                                                'private', ctr, '/busybox', 'true'],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=120)
        if proc.returncode != 0:
            lines = [l.strip() for l in proc.stdout.decode('utf-8', 'replace').splitlines()
                     if l.strip()]
            # the runtime's own complaint (e.g. crun's cgroups message) says most
            useful = [l for l in lines if 'runtime' in l or 'crun' in l or 'runc' in l]
            return (useful or lines or ['exit status %d' % proc.returncode])[0]
        return None
    finally:
        storage.destroy()


@pytest.mark.skipif(not buildah_available(), reason='needs buildah as root')
def test_build_with_production_defaults(world_factory, git_server, tmp_path):
    probe = tmp_path / "probe"
    probe.mkdir()
    problem = oci_runtime_problem(probe)
    if problem:
        pytest.skip('OCI runtime unusable on this host: %s' % problem)
    world = world_factory(isolation='oci', network='private', pull='always')
    src = make_repo(git_server, 'prod-defaults', {
        'Dockerfile': 'FROM scratch\nCOPY --chmod=755 busybox /bin/busybox\n'
                      'RUN ["/bin/busybox", "true"]\n' + LABELS,
        'busybox': open('/bin/busybox', 'rb').read()})[0]
    _task_id, result = world.run_parent(src)
    assert result['koji_builds']
    assert world.hub.getBuild('demo-container-1.0-1')['state'] == 1
