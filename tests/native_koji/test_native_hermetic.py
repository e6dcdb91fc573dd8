"""Hermetic native builds ([native] hermetic): RUN steps get no network and only the
build tag's repo, bind-mounted read-only from the Koji volume (kojid's topdir), with a
.repo file pointing at it; network sources are refused before anything is reserved;
the import and the provenance say the build was hermetic.

Real buildah with runc (isolation oci), a real createrepo'd repository holding the
example RPM, the test registry on the builder's loopback as the service a RUN step
must not reach."""

import json
import os
import shutil

import pytest

from koji_containerbuild import hermetic
from koji_containerbuild.backends import native_config
from koji_containerbuild.errors import BackendError, ConfigError, OptionError, SourceError
from tests.native_koji.conftest import buildah_available, make_repo
from tests.support import yumrepo

LABELS = 'LABEL com.redhat.component="demo-container" name="acme/herm" version="1.0" ' \
         'release="1"\n'
RUNC = 'runtime = runc\n'
needs_runc = pytest.mark.skipif(
    not (buildah_available() and shutil.which('runc') and yumrepo.available()),
    reason='needs buildah as root, runc and createrepo_c (scripts/setup.sh)')
BUSYBOX = '/bin/busybox'


@pytest.fixture(scope='module')
def yum_repo(tmp_path_factory):
    work = tmp_path_factory.mktemp('hermetic-rpm')
    return yumrepo.make_yum_repo(str(work / 'repo'), str(work))


def _world(world_factory, mode='force', extra=''):
    return world_factory(isolation='oci', network='private',
                         registry_extra='%shermetic = %s\n%s' % (RUNC, mode, extra))


def _koji_repo_dir(world, arch='x86_64'):
    # the World's hub serves repo 77 of the build tag
    return os.path.join(world.options.topdir, 'repos', 'f40-container-build', '77', arch)


def _no_reservation(world):
    calls = [c[0] for c in world.hub.calls]
    assert 'CGInitBuild' not in calls and 'createContainer' not in repr(calls)


@needs_runc
def test_hermetic_build_sees_the_repo_and_no_network(world_factory, git_server,
                                                     registry_url, yum_repo):
    world = _world(world_factory)
    shutil.copytree(yum_repo, _koji_repo_dir(world))
    port = registry_url.rsplit(':', 1)[1]
    mount = hermetic.MOUNT_POINT
    # the quotes keep the markers out of the echoed RUN line
    script = (
        "set -e; grep -c '<repomd' %s/repodata/repomd.xml; ls %s | grep -c 'koji-example-hello'; "
        "cat /etc/yum.repos.d/*.repo; "
        "if touch %s/x 2>/dev/null; then echo WROTE'-'REPO; exit 1; fi; "
        "if nc -w 5 127.0.0.1 %s </dev/null; then echo REACHED'-'LOOPBACK; exit 1; fi; "
        "echo herm''etic-ok" % (mount, mount, mount, port))
    src = make_repo(git_server, 'hermetic-ok', {
        'Dockerfile': 'FROM scratch\nCOPY --chmod=755 busybox /bin/busybox\n'
                      'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && '
                      '%s"]\n' % script.replace('"', '\\"') + LABELS,
        'busybox': open(BUSYBOX, 'rb').read()})[0]
    _task_id, result = world.run_parent(src)
    build = world.hub.getBuild('demo-container-1.0-1')
    assert result['koji_builds'] == [str(build['id'])] and build['state'] == 1
    text = world.all_text()
    assert 'REACHED-LOOPBACK' not in text and 'WROTE-REPO' not in text
    assert 'hermetic-ok' in text
    # the RUN step ran where 127.0.0.1 is its own (empty) loopback
    assert "can't connect to remote host (127.0.0.1): Connection refused" in text
    # the one .repo file RUN steps saw points at the mount, not at the Koji web server
    log = b''.join(data for (_dir, name), data in world.hub.uploads.items()
                   if name == 'x86_64.log').decode()
    assert 'baseurl=file://%s' % mount in log and 'baseurl=http' not in log
    # the import records it, and the buildroot says how RUN steps ran
    assert build['extra']['image']['hermetic'] is True
    upload_dir = [a for (m, a, k) in world.hub.calls if m == 'CGImport'][0][1]
    meta = json.loads(world.hub.uploads[(upload_dir, 'metadata.json')])
    assert meta['buildroots'][0]['extra']['buildah'] == {
        'isolation': 'oci', 'network': 'none', 'hermetic': True}
    # the provenance: a hermetic build whose only resolved inputs are the source and
    # the build tag's repo (FROM scratch: no parent), read from the Koji volume
    prov = json.loads(world.hub.uploads[(upload_dir, 'provenance-x86_64.intoto.json')])
    definition = prov['predicate']['buildDefinition']
    assert definition['externalParameters']['options']['hermetic'] is True
    deps = definition['resolvedDependencies']
    assert [d['name'] for d in deps] == ['source', 'koji-repo']
    assert deps[1]['uri'] == 'http://127.0.0.1:9/kojifiles/repos/f40-container-build/77/x86_64/'
    assert deps[1]['annotations'] == {'build_tag': 'f40-container-build', 'repo_id': 77,
                                      'mounted_from': _koji_repo_dir(world)}

    # a hermetic build on top of it: the parent (pinned by digest by the builder, pulled
    # outside RUN) and the repo are the only resolved inputs besides the source
    world.hub.add_package('f40-container-candidate', 'herm-app-container')
    app_src = make_repo(git_server, 'hermetic-app', {
        'Dockerfile': 'FROM acme/herm:1.0-1\nRUN ["/bin/busybox", "grep", "-q", "repomd", '
                      '"%s/repodata/repomd.xml"]\nLABEL com.redhat.component=herm-app-container'
                      ' name=acme/herm-app version=1 release=1\n' % mount})[0]
    _task_id, app_result = world.run_parent(app_src)
    app = world.hub.getBuild(int(app_result['koji_builds'][0]))
    assert app['extra']['image']['hermetic'] is True
    assert app['extra']['image']['parent_build_id'] == build['id']
    upload_dir = [a for (m, a, k) in world.hub.calls if m == 'CGImport'][1][1]
    prov = json.loads(world.hub.uploads[(upload_dir, 'provenance-x86_64.intoto.json')])
    deps = prov['predicate']['buildDefinition']['resolvedDependencies']
    assert [d['name'] for d in deps] == ['source', 'FROM acme/herm:1.0-1', 'koji-repo']
    assert deps[1]['digest']['sha256']      # pinned


@needs_runc
def test_missing_koji_volume_repo_fails_at_once_with_the_path(world_factory, git_server):
    world = _world(world_factory)
    src = make_repo(git_server, 'hermetic-norepo', {
        'Dockerfile': 'FROM scratch\nCOPY busybox /bin/busybox\n'
                      'RUN ["/bin/busybox", "echo", "RAN"]\n' + LABELS,
        'busybox': open(BUSYBOX, 'rb').read()})[0]
    with pytest.raises(BackendError) as info:
        world.run_parent(src)
    assert 'repo directory %s does not exist' % _koji_repo_dir(world) in str(info.value)
    text = world.all_text()
    assert 'STEP' not in text and 'RAN' not in text      # buildah never started
    assert not world.hub.calls_of('CGImport')


def test_yum_repourls_refused_before_the_reservation(world_factory, git_server):
    world = _world(world_factory)
    src = make_repo(git_server, 'hermetic-repourls', {
        'Dockerfile': 'FROM scratch\n' + LABELS})[0]
    with pytest.raises(OptionError) as info:
        world.run_parent(src, {'yum_repourls': ['https://mirror.example.com/x.repo']})
    assert "'yum_repourls' is refused in a hermetic build" in str(info.value)
    _no_reservation(world)


@pytest.mark.parametrize('mode, yaml_text, opts, exc, error', [
    # allow: container.yaml decides; a hermetic image then refuses yum_repourls
    ('allow', 'hermetic: true\n', {'yum_repourls': ['https://m.example.com/a.repo']},
     OptionError, "'yum_repourls' is refused in a hermetic build"),
    # off: an image asking for a hermetic build is refused, never built with network
    ('off', 'hermetic: true\n', {}, OptionError,
     'does not offer them ([native] hermetic = off)'),
    ('allow', 'hermetic: "yes"\n', {}, SourceError,
     'container.yaml "hermetic" must be true or false'),
])
def test_container_yaml_choice(world_factory, git_server, mode, yaml_text, opts, exc, error):
    world = _world(world_factory, mode)
    src = make_repo(git_server, 'hermetic-yaml-%s-%d' % (mode, len(yaml_text)), {
        'Dockerfile': 'FROM scratch\n' + LABELS, 'container.yaml': yaml_text})[0]
    with pytest.raises(exc) as info:
        world.run_parent(src, opts)
    assert error in str(info.value)
    _no_reservation(world)


@pytest.mark.parametrize('lines, error', [
    ('ADD https://example.com/x.tar.gz /x\n', 'line 2: ADD of a URL is refused'),
    ('ADD --chown=1 ["git@example.com:a/b.git", "/src"]\n', 'line 2: ADD of a URL'),
    ('COPY --from=quay.example.com/x/y:1 /a /a\n',
     'line 2: --from=quay.example.com/x/y:1 names an image'),
    ('RUN --mount=type=bind,from=other:2,target=/x true\n', 'line 2: --from=other:2'),
    ('RUN --network=host true\n', 'line 2: RUN --network is refused'),
])
def test_network_sources_refused_before_the_reservation(world_factory, git_server, lines,
                                                        error):
    world = _world(world_factory)
    src = make_repo(git_server, 'hermetic-add-%d' % len(lines), {
        'Dockerfile': 'FROM scratch\n' + lines + LABELS})[0]
    with pytest.raises(SourceError) as info:
        world.run_parent(src)
    assert error in str(info.value)
    _no_reservation(world)


def test_stages_and_digests_are_not_network_sources():
    from koji_containerbuild import dockerfile
    parsed = dockerfile.parse(
        b'FROM scratch AS Build\nFROM scratch\nCOPY --from=build /a /a\nCOPY --from=0 /a /b\n'
        b'COPY --from=quay.example.com/x@sha256:' + b'a' * 64 + b' /a /c\n'
        b'RUN --mount=type=cache,target=/c true\n')
    assert hermetic.check_dockerfile(parsed, 'registry.example.com') is None


def test_unpinned_foreign_parent_refused(world_factory, git_server):
    world = _world(world_factory)
    src = make_repo(git_server, 'hermetic-from', {
        'Dockerfile': 'FROM quay.example.com/acme/base:1\n' + LABELS})[0]
    with pytest.raises(SourceError) as info:
        world.run_parent(src)
    assert 'FROM quay.example.com/acme/base:1: a hermetic build pulls parents from other ' \
        'registries only by digest' in str(info.value)
    _no_reservation(world)


def test_remote_adds_found_linearly():
    from koji_containerbuild import dockerfile
    parsed = dockerfile.parse(b'FROM scratch\nADD a.tar /\nCOPY http://x /y\n'
                              b'ADD \\\n  ftp://h/f /f\nADD ' + b'a' * 200000 + b' /\n')
    assert parsed.remote_adds == [4]


def test_wanted_rules():
    assert hermetic.wanted('force', {}) is True
    assert hermetic.wanted('allow', {}) is False
    assert hermetic.wanted('allow', {'hermetic': True}) is True
    assert hermetic.wanted('allow', {'hermetic': False}) is False
    assert hermetic.wanted('off', {'hermetic': False}) is False
    assert hermetic.wanted('force', {'hermetic': False}) is True   # the site decides


def test_config_refuses_hermetic_with_chroot_and_bad_modes():
    import configparser

    def parse(text):
        parser = configparser.RawConfigParser()
        parser.read_string('[native]\nregistry = https://reg.example.com\n' + text)
        return native_config.parse(parser)

    assert parse('').hermetic == 'off'
    assert parse('hermetic = allow\n').hermetic == 'allow'
    with pytest.raises(ConfigError) as info:
        parse('hermetic = force\nisolation = chroot\nnetwork = host\n')
    assert 'hermetic = force needs RUN steps without network' in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse('hermetic = yes\n')
    assert 'hermetic: expected one of off, allow, force' in str(info.value)


def test_repo_dir_checks(tmp_path):
    with pytest.raises(OptionError):
        hermetic.koji_repo_dir('/mnt/koji', '../etc', 1, 'x86_64')
    assert hermetic.koji_repo_dir('/mnt/koji', 'f40-build', 12, 'aarch64') == \
        '/mnt/koji/repos/f40-build/12/aarch64'
    with pytest.raises(BackendError) as info:
        hermetic.check_repo_dir(str(tmp_path))
    assert 'holds no repodata/repomd.xml' in str(info.value)
    with pytest.raises(OptionError):
        hermetic.check_repo_dir(str(tmp_path / 'a:b'))
