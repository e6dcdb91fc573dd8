"""The registry client against a hostile registry on 127.0.0.1 (issue 7 item 14): every
answer gives a clear BackendError, bounded in memory and in time."""

import json
import resource
import time

import pytest

from koji_containerbuild.errors import BackendError
from koji_containerbuild.registry import MEDIA_LIST, MEDIA_V2S2, Registry
from tests.support.hostile_http import Answer, HostileServer, endless

MANIFEST = '/v2/acme/app/manifests/1'


@pytest.fixture
def hostile():
    with HostileServer() as server:
        yield server


def _client(server, **kwargs):
    return Registry(server.url, **kwargs)


def _json(body, media=MEDIA_V2S2):
    return Answer(200, {'Content-Type': media}, body)


@pytest.mark.parametrize('body, message', [
    (b'[' * 200000, 'nested too deeply'),
    (b'{"a":' * 100000, 'nested too deeply'),
    (b'[]', 'expected a JSON object'),
    (b'"text"', 'expected a JSON object'),
    (b'\xff\xfe', 'invalid manifest'),
    (b'{', 'invalid manifest'),
])
def test_bad_manifest_bodies_are_clear_errors(hostile, body, message):
    hostile.set(MANIFEST, _json(body))
    with pytest.raises(BackendError) as info:
        _client(hostile).get_manifest('acme/app', '1')
    assert message in str(info.value)


@pytest.mark.parametrize('manifest', [
    {'mediaType': MEDIA_LIST, 'manifests': {'x': 1}},
    {'mediaType': MEDIA_LIST, 'manifests': [1, 'a', None]},
    {'mediaType': MEDIA_LIST, 'manifests': [{'platform': 'amd64', 'digest': 'x'}]},
    {'mediaType': MEDIA_LIST, 'manifests': [{'platform': {'architecture': 'amd64'},
                                              'digest': ['sha256:x']}]},
    {'mediaType': MEDIA_V2S2, 'schemaVersion': 2, 'config': []},
    {'mediaType': MEDIA_V2S2, 'schemaVersion': 2, 'config': {'digest': 5}},
    {'mediaType': ['x'], 'schemaVersion': 2},
])
def test_wrong_shapes_in_manifests_are_clear_errors(hostile, manifest):
    hostile.set(MANIFEST, _json(json.dumps(manifest).encode()))
    with pytest.raises(BackendError):
        _client(hostile).arch_manifest('acme/app', '1', 'amd64')


def test_huge_manifest_is_refused_without_reading_it_whole(hostile):
    hostile.set(MANIFEST, Answer(200, {'Content-Type': MEDIA_V2S2}, endless(seconds=20)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        _client(hostile).get_manifest('acme/app', '1')
    assert 'too large' in str(info.value)
    assert time.monotonic() - started < 10
    # a manifest is at most 4 MiB: the peak grows by about that, never by the body
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 64 * 1024


def _gzip_bomb(size):
    import zlib
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)      # gzip framing
    block = b' ' * (1024 * 1024)
    return b''.join([packer.compress(block) for _ in range(size // len(block))] +
                    [packer.flush()])


def test_compressed_manifest_is_limited_after_decoding(hostile):
    """64 MiB of JSON whitespace in ~64 KiB of gzip: refused at the 4 MiB limit."""
    body = _gzip_bomb(64 * 1024 * 1024)
    hostile.set(MANIFEST, Answer(200, {'Content-Type': MEDIA_V2S2,
                                       'Content-Encoding': 'gzip'}, body))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(BackendError) as info:
        _client(hostile).get_manifest('acme/app', '1')
    assert 'too large' in str(info.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 32 * 1024
    assert hostile.requests[-1][2].get('Accept-Encoding') == 'identity'


@pytest.mark.parametrize('answer', [
    Answer(200, {'Content-Type': MEDIA_V2S2}, endless(drip=0.2)),   # body drip
    Answer(drip=0.2),                                                # header drip
])
def test_drip_feeding_registry_is_cut_by_the_total_deadline(hostile, answer):
    hostile.set(MANIFEST, answer)
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        _client(hostile, timeout=5, deadline=1.5).get_manifest('acme/app', '1')
    assert 'deadline' in str(info.value)
    assert time.monotonic() - started < 6


@pytest.mark.parametrize('token_body', [b'[' * 100000, b'[]', b'{"token": ["x"]}',
                                        b'x' * 200000])
def test_hostile_token_answers(hostile, token_body):
    hostile.set(MANIFEST, Answer(401, {'WWW-Authenticate': 'Bearer realm="%s/token",'
                                       'service="r"' % hostile.url}, b''))
    hostile.set('/token', Answer(200, {'Content-Type': 'application/json'}, token_body))
    with pytest.raises(BackendError) as info:
        _client(hostile).get_manifest('acme/app', '1')
    assert 'token' in str(info.value)


def test_huge_error_body_on_put_is_bounded(hostile):
    hostile.set('/v2/acme/app/manifests/latest', Answer(400, {}, endless(seconds=20)))
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        _client(hostile).put_manifest('acme/app', 'latest', MEDIA_LIST, b'{}')
    assert 'HTTP 400' in str(info.value)
    assert len(str(info.value)) < 1000
    assert time.monotonic() - started < 10


def test_local_command_prints_one_line_for_a_hostile_registry(hostile, tmp_path, capsys):
    """The local command used to print a RecursionError traceback."""
    from koji_containerbuild.local import cli
    hostile.set('/v2/', Answer(200, {}, b'{}'))
    hostile.set('/v2/acme/base/manifests/1', _json(b'[' * 200000))
    (tmp_path / 'Dockerfile').write_text(
        'FROM acme/base:1\nLABEL com.redhat.component=h-container name=acme/h version=1 '
        'release=1\n')
    rc = cli.main(['build', '-q', '--registry', hostile.url, '--storage-driver', 'vfs',
                   '--output-dir', str(tmp_path / 'out'), str(tmp_path)])
    _out, err = capsys.readouterr()
    assert rc == 1
    assert 'nested too deeply' in err and 'Traceback' not in err
    assert len(err.strip().splitlines()) == 1
