"""One loopback rule and one transport rule for registries (issue 7 item 6, issue 8
item 6): the URL's scheme is what is used, plain HTTP or unverified TLS only on loopback
hosts unless the site opts in by name, and a preflight fails in seconds, before
anything is reserved or built."""

import socket
import time

import pytest

from koji_containerbuild import netrules
from koji_containerbuild.backends import native_config
from koji_containerbuild.errors import BackendError, ConfigError
from koji_containerbuild.local import cli
from koji_containerbuild.registry import Registry
from tests.native.conftest import (  # noqa: F401 (fixtures)
    BASE, auth_registry, build, examples, native_dir, registry, storage)
from tests.native_koji.conftest import (  # noqa: F401 (fixtures)
    World, buildah_available, dockerfile, git_server, make_repo, small_rootfs)
from tests.support.net import free_port

needs_buildah = pytest.mark.skipif(not buildah_available(), reason='needs buildah as root')


@pytest.mark.parametrize('host, loopback', [
    ('localhost', True), ('127.0.0.1', True), ('127.200.3.4', True), ('::1', True),
    ('[::1]', True), ('::ffff:127.0.0.1', True),
    ('localhost.attacker.example', False), ('127.0.0.1.nip.io', False),
    ('localhost.', False), ('127.0.0.1:5000', False), ('10.0.0.1', False),
    ('0.0.0.0', False), ('::', False), ('example.com', False), ('', False), (None, False),
])
def test_one_loopback_rule(host, loopback):
    assert netrules.is_loopback_host(host) is loopback


@pytest.mark.parametrize('url', [
    'http://localhost.attacker.example:5000', 'http://127.0.0.1.nip.io',
    'http://registry.example.com', 'http://10.1.2.3:5000',
])
def test_local_command_refuses_plain_http_to_non_loopback_hosts(url, tmp_path, capsys):
    (tmp_path / 'Dockerfile').write_text('FROM scratch\n')
    auth = tmp_path / 'auth.json'
    auth.write_text('{"auths": {}}')
    started = time.monotonic()
    rc = cli.main(['build', '--registry', url, '--authfile', str(auth),
                   '--output-dir', str(tmp_path / 'o'), str(tmp_path)])
    _out, err = capsys.readouterr()
    assert rc == 1 and 'Refusing plain HTTP' in err and 'only loopback' in err, err
    assert '--allow-insecure-registry' in err
    assert time.monotonic() - started < 5


def _native(text):
    import configparser
    parser = configparser.RawConfigParser()
    parser.read_string('[native]\n' + text)
    return native_config.parse(parser)


def test_koji_config_refuses_http_unless_opted_in():
    with pytest.raises(ConfigError) as info:
        _native('registry = http://registry.example.com\n')
    assert 'registry_allow_insecure' in str(info.value)
    with pytest.raises(ConfigError):
        _native('registry = https://registry.example.com\nregistry_tls_verify = false\n')
    assert _native('registry = http://registry.example.com\n'
                   'registry_allow_insecure = true\n').registry == 'http://registry.example.com'
    assert _native('registry = http://127.0.0.1:5000\n').registry == 'http://127.0.0.1:5000'
    assert _native('registry = http://[::1]:5000\n').registry == 'http://[::1]:5000'


def test_buildah_speaks_what_the_scheme_says():
    assert Registry('http://127.0.0.1:5000').buildah_tls_verify is False
    assert Registry('https://reg.example.com').buildah_tls_verify is True
    assert Registry('https://localhost:5000', tls_verify=False).buildah_tls_verify is False


@needs_buildah
def test_http_registry_with_default_tls_verify_pushes(examples, registry, storage, tmp_path):
    """`registry = http://...` with registry_tls_verify left true: pushes really use
    HTTP (before: `http: server gave HTTP response to HTTPS client`)."""
    client = Registry(registry.url)          # tls_verify defaults to True
    result, _lines = build(examples, 'base', BASE, None, storage, str(tmp_path / 'w'),
                           'plain-http-00001', registry_client=client)
    assert result['repositories'][0].startswith(registry.host + '/')


def test_preflight_unreachable_fails_in_seconds():
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        Registry('http://127.0.0.1:%d' % free_port()).check_access()
    assert 'unreachable' in str(info.value)
    assert time.monotonic() - started < 5


def test_preflight_https_to_plain_http_registry_names_the_reason(registry):
    with pytest.raises(BackendError) as info:
        Registry('https://%s' % registry.host, tls_verify=False).check_access()
    assert 'does not speak TLS' in str(info.value) and 'http://' in str(info.value)


def test_preflight_wrong_credentials(auth_registry, tmp_path):
    auth = tmp_path / 'auth.json'
    auth.write_text('{"auths": {"%s": {"username": "kcbuser", "password": "wrong"}}}'
                    % auth_registry.host)
    with pytest.raises(BackendError) as info:
        Registry(auth_registry.url, credentials_file=str(auth)).check_access()
    assert 'refused the credentials' in str(info.value)
    Registry(auth_registry.url, credentials_file=auth_registry.authfile).check_access()


def test_preflight_silent_server_is_cut_by_the_deadline():
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen(5)
    try:
        started = time.monotonic()
        with pytest.raises(BackendError) as info:
            Registry('http://127.0.0.1:%d' % server.getsockname()[1], timeout=60).check_access(
                deadline=1.0)
        assert 'deadline' in str(info.value)
        assert time.monotonic() - started < 5
    finally:
        server.close()


def test_koji_parent_fails_before_reserving_when_registry_is_down(tmp_path, git_server,
                                                                 small_rootfs):
    world = World(tmp_path, 'http://127.0.0.1:%d' % free_port())
    src = make_repo(git_server, 'down', {'Dockerfile': dockerfile(),
                                         'rootfs.tar': small_rootfs})[0]
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        world.run_parent(src)
    assert 'unreachable' in str(info.value)
    assert time.monotonic() - started < 10
    assert not world.hub.calls_of('CGInitBuild')
