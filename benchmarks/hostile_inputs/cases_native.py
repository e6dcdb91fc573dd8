"""Native backend hostile inputs (registry answers, yum repo files, the loopback rule)
at the limits the code enforces. Run through run.py (each case in its own process)."""

import hashlib
import ipaddress
import json

from koji_containerbuild import netrules, registry as registry_mod, repofetch
from koji_containerbuild.registry import MEDIA_LIST, MEDIA_V2S2, Registry
from tests.support.hostile_http import Answer, HostileServer, endless

MIB = 1024 * 1024
LOOPBACK = (ipaddress.ip_network('127.0.0.0/8'),)
_state = {}


def _server():
    if 'server' not in _state:
        _state['server'] = HostileServer()
    return _state['server']


def _manifest(body, media=MEDIA_V2S2):
    _server().set('/v2/acme/app/manifests/1', Answer(200, {'Content-Type': media}, body))


def _gzip_bomb(size):
    import zlib
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b' ' * MIB
    return b''.join([packer.compress(block) for _ in range(size // MIB)] + [packer.flush()])


def _list_4mib():
    entry = {'mediaType': MEDIA_V2S2, 'size': 1, 'digest': 'sha256:' + 'a' * 64,
             'platform': {'architecture': 'riscv64', 'os': 'linux'}}
    one = len(json.dumps(entry)) + 2
    count = (registry_mod.MAX_MANIFEST - 200) // one
    return json.dumps({'schemaVersion': 2, 'mediaType': MEDIA_LIST,
                       'manifests': [entry] * count}).encode()


def _labels_config():
    # as many labels as fit the 4 MiB a config may have when the tag guard reads it
    labels = dict(('label.%06d' % i, 'v' * 40) for i in range(68900))
    labels['com.redhat.component'] = 'other-container'
    data = json.dumps({'config': {'Labels': labels}, 'rootfs': {'diff_ids': []}}).encode()
    assert len(data) <= registry_mod.MAX_MANIFEST, len(data)
    return data


SETUPS = {
    'registry: manifest body without end': lambda: _manifest(endless(seconds=30)),
    'registry: manifest of "[" at the limit': lambda: _manifest(
        b'[' * registry_mod.MAX_MANIFEST),
    'registry: manifest of {"a": at the limit': lambda: _manifest(
        b'{"a":' * (registry_mod.MAX_MANIFEST // 5)),
    'registry: manifest list at the limit': lambda: _manifest(_list_4mib(), MEDIA_LIST),
    'registry: gzip-compressed manifest': lambda: _server().set(
        '/v2/acme/app/manifests/1', Answer(200, {'Content-Type': MEDIA_V2S2,
                                                 'Content-Encoding': 'gzip'},
                                           _gzip_bomb(256 * MIB))),
    'registry: drip-fed manifest (deadline 0.5 s)': lambda: _manifest(endless(drip=0.05)),
    'registry: token answer without end': lambda: (
        _server().set('/v2/acme/app/manifests/1', Answer(
            401, {'WWW-Authenticate': 'Bearer realm="%s/token",service="r"' % _server().url},
            b'')),
        _server().set('/token', Answer(200, {}, endless(seconds=30)))),
    'registry: PUT error body without end': lambda: _server().set(
        '/v2/acme/app/manifests/latest', Answer(400, {}, endless(seconds=30))),
    'tag guard: image config at the limit': lambda: _config_case(),
    'tag guard: tag list without end': lambda: _server().set(
        '/v2/acme/app/tags/list', Answer(200, {}, endless(seconds=30))),
    'repo fetch: body without end': lambda: _server().set('/x.repo', Answer(
        200, {}, endless(seconds=30))),
    'repo fetch: drip-fed (deadline 0.5 s)': lambda: _server().set('/x.repo', Answer(
        200, {}, endless(drip=0.05))),
}


def _config_case():
    config = _labels_config()
    digest = 'sha256:' + hashlib.sha256(config).hexdigest()
    manifest = json.dumps({'schemaVersion': 2, 'mediaType': MEDIA_V2S2,
                           'config': {'digest': digest, 'size': len(config)},
                           'layers': []}).encode()
    _manifest(manifest)
    _server().set('/v2/acme/app/blobs/' + digest, Answer(200, {}, config))


def setup(name):
    if name in SETUPS:
        SETUPS[name]()
    if name.startswith('repo file'):
        _state['data'] = INPUTS[name]()


def _client(**kwargs):
    return Registry(_server().url, **kwargs)


INPUTS = {
    'repo file: one line of spaces at the limit': lambda: (
        b'[demo]\nbaseurl=http://x/\na' + b' ' * (repofetch.MAX_REPO_FILE - 40) + b'b\n'),
    'repo file: sections at the limit': lambda: (
        b''.join(b'[r%06d]\nbaseurl=http://x/\n' % i for i in range(40000))
        [:repofetch.MAX_REPO_FILE].rsplit(b'\n[', 1)[0] + b'\n'),
    'repo file: "[" lines at the limit': lambda: b'[\n' * (repofetch.MAX_REPO_FILE // 2),
}

CASES = [
    ('registry: manifest body without end', 'endless (limit 4 MiB)',
     lambda: _client().get_manifest('acme/app', '1')),
    ('registry: manifest of "[" at the limit', '4 MiB',
     lambda: _client().get_manifest('acme/app', '1')),
    ('registry: manifest of {"a": at the limit', '4 MiB',
     lambda: _client().get_manifest('acme/app', '1')),
    ('registry: manifest list at the limit', '4 MiB, ~27,000 entries',
     lambda: _client().arch_manifest('acme/app', '1', 'amd64')),
    ('registry: gzip-compressed manifest', '256 MiB in ~250 KiB gzip',
     lambda: _client().get_manifest('acme/app', '1')),
    ('registry: drip-fed manifest (deadline 0.5 s)', '1 byte / 50 ms',
     lambda: _client(deadline=0.5).get_manifest('acme/app', '1')),
    ('registry: token answer without end', 'endless (limit 64 KiB)',
     lambda: _client().get_manifest('acme/app', '1')),
    ('registry: PUT error body without end', 'endless (limit 64 KiB)',
     lambda: _client().put_manifest('acme/app', 'latest', MEDIA_LIST, b'{}')),
    ('tag guard: image config at the limit', '4 MiB, 68,900 labels',
     lambda: _client().image_labels('acme/app', '1')),
    ('tag guard: tag list without end', 'endless (limit 64 KiB)',
     lambda: _client().first_tags('acme/app')),
    ('repo fetch: body without end', 'endless (limit 1 MiB)',
     lambda: repofetch.fetch(_server().url + '/x.repo', 10, LOOPBACK)),
    ('repo fetch: drip-fed (deadline 0.5 s)', '1 byte / 50 ms',
     lambda: repofetch.fetch(_server().url + '/x.repo', 0.5, LOOPBACK)),
    ('repo file: one line of spaces at the limit', '1 MiB',
     lambda: repofetch.parse_repo_config(_state['data'])),
    ('repo file: sections at the limit', '1 MiB, ~37,000 sections',
     lambda: repofetch.parse_repo_config(_state['data'])),
    ('repo file: "[" lines at the limit', '1 MiB',
     lambda: repofetch.parse_repo_config(_state['data'])),
    ('loopback rule: host name', '1 MiB',
     lambda: [netrules.is_loopback_host(h) for h in
              ('127.0.0.1.' + 'a' * MIB, 'localhost' + '.a' * (MIB // 2), '[' + ':' * MIB)]),
    ('registry URL rule', '1 MiB',
     lambda: registry_mod.split_url('http://' + 'a' * MIB + '!')),
]
