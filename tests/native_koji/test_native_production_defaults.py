"""A build with the production defaults (isolation = oci, network = private,
pull = always), with the OCI runtime named in [native] runtime: Debian's runc (crun
cannot start containers on hosts with hybrid cgroups, e.g. this kind of test machine).

What a site relies on: RUN steps run in their own network namespace (the builder's
loopback services, here the registry, are not reachable from a RUN step), and when the
runtime cannot start a container the task's fault names the runtime's own error."""

import shutil

import pytest

from koji_containerbuild.errors import BackendError
from tests.native_koji.conftest import buildah_available, make_repo

LABELS = 'LABEL com.redhat.component="demo-container" name="acme/prod" version="1.0" ' \
         'release="1"\n'
RUNTIME = shutil.which('runc')
needs_runc = pytest.mark.skipif(not (buildah_available() and RUNTIME),
                                reason='needs buildah as root and runc (scripts/setup.sh)')


@needs_runc
def test_build_with_production_defaults(world_factory, git_server, registry_url):
    world = world_factory(isolation='oci', network='private', pull='always',
                          registry_extra='runtime = runc\n')
    port = registry_url.rsplit(':', 1)[1]
    # The registry listens on the builder's 127.0.0.1: a RUN step must not reach it.
    # (the quotes keep the marker out of the echoed RUN line)
    probe = ("if /bin/busybox nc -w 5 127.0.0.1 %s </dev/null; "
             "then echo REACHED-BUILDER'-'LOOPBACK; exit 1; fi; echo isola''ted" % port)
    src = make_repo(git_server, 'prod-defaults', {
        'Dockerfile': 'FROM scratch\nCOPY --chmod=755 busybox /bin/busybox\n'
                      'RUN ["/bin/busybox", "sh", "-c", "%s"]\n' % probe + LABELS,
        'busybox': open('/bin/busybox', 'rb').read()})[0]
    _task_id, result = world.run_parent(src)
    assert result['koji_builds']
    assert world.hub.getBuild('demo-container-1.0-1')['state'] == 1
    text = world.all_text()
    assert 'REACHED-BUILDER-LOOPBACK' not in text
    # the RUN step really ran, in a namespace where 127.0.0.1 is its own loopback
    assert "can't connect to remote host (127.0.0.1): Connection refused" in text
    assert '\nisolated\n' in text


FAKE_RUNTIME = (
    '#!/bin/sh\n'
    '# fails like crun on hosts with hybrid cgroups: one line on stderr, exit 1\n'
    'echo "fake-runtime: cgroups in hybrid mode not supported" >&2\n'
    'exit 1\n')


@needs_runc
def test_runtime_failure_names_the_runtime_error(world_factory, git_server, tmp_path):
    runtime = tmp_path / 'fake-runtime'
    runtime.write_text(FAKE_RUNTIME)
    runtime.chmod(0o755)
    world = world_factory(isolation='oci', network='private',
                          registry_extra='runtime = %s\n' % runtime)
    src = make_repo(git_server, 'bad-runtime', {
        'Dockerfile': 'FROM scratch\nCOPY --chmod=755 busybox /bin/busybox\n'
                      'RUN ["/bin/busybox", "true"]\n' + LABELS,
        'busybox': open('/bin/busybox', 'rb').read()})[0]
    with pytest.raises(BackendError) as info:
        world.run_parent(src)
    message = str(info.value)
    # buildah's own last line says only "while running runtime: exit status 1"
    assert 'exit status 1' in message
    assert 'OCI runtime:' in message
    assert 'fake-runtime: cgroups in hybrid mode not supported' in message


def test_missing_runtime_is_named_before_the_build(world_factory, git_server):
    world = world_factory(isolation='oci', network='private',
                          registry_extra='runtime = /nonexistent/oci-runtime\n')
    src = make_repo(git_server, 'no-runtime', {'Dockerfile': 'FROM scratch\n' + LABELS})[0]
    with pytest.raises(BackendError) as info:
        world.run_parent(src)
    assert 'runtime /nonexistent/oci-runtime: no such executable' in str(info.value)
