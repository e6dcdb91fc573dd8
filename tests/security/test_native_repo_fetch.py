"""yum_repourls fetched by the task process (issue 7 item 5): nothing reachable only
from the builder host, checked after resolution and after every redirect, bounded in
size and time, parsed as a yum repo config."""

import ipaddress
import time

import pytest

from koji_containerbuild import repofetch
from koji_containerbuild.backends import native_arch
from koji_containerbuild.errors import BackendError
from tests.native_koji.conftest import (  # noqa: F401 (fixtures)
    dockerfile, git_server, make_repo, registry_url, small_rootfs, world_factory)
from tests.support.hostile_http import Answer, HostileServer, endless

REPO = b'[demo]\nname=Demo\nbaseurl=http://mirror.example.com/demo/$basearch/\nenabled=1\n'
LOOPBACK_OK = (ipaddress.ip_network('127.0.0.1/32'),)


@pytest.fixture
def hostile():
    with HostileServer() as server:
        server.set('/demo.repo', Answer(200, {}, REPO))
        yield server


def test_loopback_refused_by_default_and_fetched_when_listed(hostile, tmp_path):
    url = hostile.url + '/demo.repo'
    with pytest.raises(BackendError) as info:
        native_arch.fetch_repo_file(url, str(tmp_path / 'a.repo'), 5)
    assert '127.0.0.1 is a loopback address' in str(info.value)
    assert hostile.requests == []           # refused before connecting
    path = native_arch.fetch_repo_file(url, str(tmp_path / 'a.repo'), 5, LOOPBACK_OK)
    assert open(path, 'rb').read() == REPO


@pytest.mark.parametrize('url, reason', [
    ('http://localhost:1/x.repo', 'loopback'),              # by name, after resolution
    ('http://[::1]:1/x.repo', 'loopback'),
    ('http://169.254.169.254/latest/meta-data', 'link-local'),
    ('http://10.0.0.1/x.repo', 'private'),
    ('http://0.0.0.0/x.repo', 'unspecified'),
    ('http://[::ffff:127.0.0.1]:1/x.repo', 'loopback'),
    ('http://224.0.0.1/x.repo', 'multicast'),
])
def test_internal_targets_refused(url, reason, tmp_path):
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        repofetch.fetch(url, 5)
    assert reason in str(info.value)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize('location', [
    'http://[::1]:%(port)d/demo.repo',
    'http://127.0.0.2:%(port)d/demo.repo',
    'http://169.254.169.254/',
])
def test_every_redirect_target_is_checked(hostile, location):
    """The first host is allowed (listed), the redirect goes to a builder-only address."""
    hostile.set('/r', Answer(302, {'Location': location % {'port': hostile.port}}, b''))
    with pytest.raises(BackendError) as info:
        repofetch.fetch(hostile.url + '/r', 5, LOOPBACK_OK)
    assert 'Refusing to fetch' in str(info.value)
    assert [r[1] for r in hostile.requests] == ['/r']


def test_redirect_chain_is_bounded(hostile):
    hostile.set('/loop', Answer(302, {'Location': '/loop'}, b''))
    with pytest.raises(BackendError) as info:
        repofetch.fetch(hostile.url + '/loop', 5, LOOPBACK_OK)
    assert 'redirects more than' in str(info.value)


def test_credentials_never_follow_a_redirect_to_another_host(hostile):
    other = HostileServer()
    try:
        other.set('/demo.repo', Answer(200, {}, REPO))
        hostile.set('/r', Answer(302, {'Location': 'http://127.0.0.1:%d/demo.repo'
                                       % other.port}, b''))
        url = 'http://user:s3cret@127.0.0.1:%d/r' % hostile.port
        assert repofetch.fetch(url, 5, LOOPBACK_OK) == REPO
        assert 'Authorization' in hostile.requests[0][2]
        # same IP, but another origin (port): credentials stay with the first request only
        assert 'Authorization' not in other.requests[0][2]
    finally:
        other.stop()


def test_credentials_stay_with_their_origin_across_redirects(hostile):
    hostile.set('/r', Answer(302, {'Location': 'http://127.0.0.1:%d/demo.repo'
                                   % hostile.port}, b''))
    url = 'http://user:s3cret@127.0.0.1:%d/r' % hostile.port
    assert repofetch.fetch(url, 5, LOOPBACK_OK) == REPO
    # the Location carries no credentials: the same origin gets none either way, and a
    # relative redirect keeps them (same origin)
    hostile.set('/r2', Answer(302, {'Location': '/demo.repo'}, b''))
    hostile.requests[:] = []
    repofetch.fetch('http://user:s3cret@127.0.0.1:%d/r2' % hostile.port, 5, LOOPBACK_OK)
    assert all('Authorization' in r[2] for r in hostile.requests)


@pytest.fixture
def proxy_env(hostile, monkeypatch):
    for name in ('no_proxy', 'NO_PROXY', 'https_proxy', 'HTTPS_PROXY'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('http_proxy', hostile.url)
    return hostile


def test_through_a_proxy_names_only_the_proxy_can_resolve_are_left_to_it(proxy_env):
    proxy_env.set('http://repos.invalid:80/demo.repo', Answer(200, {}, REPO))
    assert repofetch.fetch('http://repos.invalid/demo.repo', 5) == REPO
    assert proxy_env.requests[-1][1] == 'http://repos.invalid:80/demo.repo'


@pytest.mark.parametrize('url', ['http://localhost:1/x.repo', 'http://127.0.0.1:1/x.repo',
                                 'http://169.254.169.254/x'])
def test_through_a_proxy_internal_targets_are_still_refused(proxy_env, url):
    with pytest.raises(BackendError) as info:
        repofetch.fetch(url, 5)
    assert 'Refusing to fetch' in str(info.value)
    assert proxy_env.requests == []


def test_huge_body_is_bounded(hostile):
    hostile.set('/big', Answer(200, {}, endless(seconds=20)))
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        repofetch.fetch(hostile.url + '/big', 10, LOOPBACK_OK)
    assert 'larger than' in str(info.value)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize('answer', [Answer(200, {}, endless(drip=0.2)), Answer(drip=0.2)])
def test_drip_feeding_server_is_cut_by_the_deadline(hostile, answer):
    hostile.set('/slow', answer)
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        repofetch.fetch(hostile.url + '/slow', 1.5, LOOPBACK_OK)
    assert 'within 1.5 s' in str(info.value)
    assert time.monotonic() - started < 4


@pytest.mark.parametrize('body, message', [
    (b'[not a repo]\n', 'invalid section header'),
    (b'<html>[x]</html>', 'outside a [repository] section'),
    (b'no section\n', 'outside a [repository] section'),
    (b'[demo]\nname=x\n', 'has no baseurl, metalink or mirrorlist'),
    (b'[a]\nbaseurl=http://x/\n[a]\nbaseurl=http://y/\n', 'appears twice'),
    (b'[demo]\nbaseurl http://x/\n', 'expected key=value'),
    (b'\xff[demo]', 'not UTF-8'),
    (b'', 'no [repository] section'),
    (b'# only a comment\n', 'no [repository] section'),
])
def test_repo_file_must_parse_as_a_yum_config(body, message):
    with pytest.raises(BackendError) as info:
        repofetch.parse_repo_config(body, 'x.repo')
    assert message in str(info.value)


def test_repo_file_parsing_is_linear():
    # configparser's option regex backtracks on such a line (quadratic)
    line = b'[demo]\nbaseurl=http://x/\na' + b' ' * (repofetch.MAX_REPO_FILE - 40) + b'b\n'
    started = time.monotonic()
    with pytest.raises(BackendError):
        repofetch.parse_repo_config(line)
    assert time.monotonic() - started < 1
    sections = repofetch.parse_repo_config(
        b'[a]\nmetalink=https://m/\n  continued\n[b]\nmirrorlist=http://l/\n')
    assert sections == [('a', {'metalink': 'https://m/ continued'}),
                        ('b', {'mirrorlist': 'http://l/'})]


def test_build_with_a_loopback_repo_url_fails_before_building(hostile, world_factory,
                                                              git_server, small_rootfs):
    """Through the native flow: the createContainer task refuses the builder's own
    loopback service (here a server holding a valid .repo file) and builds nothing."""
    world = world_factory()
    src = make_repo(git_server, 'loop-repo', {'Dockerfile': dockerfile(),
                                             'rootfs.tar': small_rootfs})[0]
    with pytest.raises(BackendError) as info:
        world.run_parent(src, {'yum_repourls': [hostile.url + '/demo.repo']})
    assert 'loopback address' in str(info.value)
    assert hostile.requests == []
    assert world.child_runs == []


def test_allowed_networks_config():
    import configparser
    from koji_containerbuild.backends import native_config
    from koji_containerbuild.errors import ConfigError

    def parse(text):
        parser = configparser.RawConfigParser()
        parser.read_string('[native]\nregistry = https://r.example.com\n' + text)
        return native_config.parse(parser)
    nets = parse('yum_repourl_allowed_networks = 10.20.0.0/16, fd00::/8 127.0.0.1\n'
                 ).yum_repourl_networks
    assert [str(n) for n in nets] == ['10.20.0.0/16', 'fd00::/8', '127.0.0.1/32']
    assert parse('').yum_repourl_networks == ()
    with pytest.raises(ConfigError) as info:
        parse('yum_repourl_allowed_networks = intranet\n')
    assert 'yum_repourl_allowed_networks' in str(info.value)
    # a listed network is fetched from, others stay refused
    assert repofetch.checked_address('10.20.3.4', 80, nets) == '10.20.3.4'
    with pytest.raises(BackendError):
        repofetch.checked_address('10.21.3.4', 80, nets)
