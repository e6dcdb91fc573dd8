"""Bearer-token handling of registry.Registry against a small token-auth registry on
loopback: expired tokens are renewed once, credentials only go to a safe realm."""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from koji_containerbuild.errors import BackendError
from koji_containerbuild.registry import Registry, digest_of

MANIFEST = json.dumps({'schemaVersion': 2, 'mediaType':
                       'application/vnd.docker.distribution.manifest.v2+json',
                       'config': {'digest': 'sha256:' + '0' * 64, 'size': 1,
                                  'mediaType': 'x'}, 'layers': []}).encode()
SECRET = 'tok3n-s3cret-pw'


class _State(object):
    def __init__(self):
        self.valid = set()
        self.issued = 0
        self.token_auth = []     # Authorization headers the token endpoint received
        self.realm = None


def _server(host, state):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, code, body=b'', headers=()):
            self.send_response(code)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path.startswith('/token'):
                state.token_auth.append(self.headers.get('Authorization'))
                state.issued += 1
                token = 'tok-%d' % state.issued
                state.valid.add(token)
                return self._send(200, json.dumps({'token': token}).encode())
            auth = self.headers.get('Authorization') or ''
            if auth.startswith('Bearer ') and auth[7:] in state.valid:
                return self._send(200, MANIFEST, [('Content-Type', json.loads(
                    MANIFEST)['mediaType'])])
            return self._send(401, b'{}', [('WWW-Authenticate', 'Bearer realm="%s",'
                                            'service="reg",scope="repository:acme/x:pull"'
                                            % state.realm)])

    server = ThreadingHTTPServer((host, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def token_registry(tmp_path):
    state = _State()
    server = _server('127.0.0.1', state)
    url = 'http://127.0.0.1:%d' % server.server_address[1]
    state.realm = url + '/token'
    auth = tmp_path / 'auth.json'
    auth.write_text(json.dumps({'auths': {url.split('://')[1]: {'auth': base64.b64encode(
        ('builder:' + SECRET).encode()).decode()}}}))
    yield url, state, str(auth)
    server.shutdown()
    server.server_close()


def test_expired_token_is_renewed_once(token_registry):
    url, state, auth = token_registry
    reg = Registry(url, credentials_file=auth)
    assert reg.get_manifest('acme/x', 'latest')[2] == digest_of(MANIFEST)
    assert state.issued == 1
    state.valid.clear()                       # the registry expired tok-1
    assert reg.get_manifest('acme/x', 'latest')[2] == digest_of(MANIFEST)
    assert state.issued == 2
    state.valid.clear()
    state.issued = 100                        # and again: still one renewal per request
    assert reg.get_manifest('acme/x', 'latest')[1] == MANIFEST


def test_credentials_never_go_to_a_foreign_http_realm(token_registry):
    url, state, auth = token_registry
    other_state = _State()
    other = _server('127.0.0.2', other_state)     # another host, plain http
    try:
        state.realm = 'http://127.0.0.2:%d/token' % other.server_address[1]
        reg = Registry(url, credentials_file=auth)
        with pytest.raises(BackendError) as info:
            reg.get_manifest('acme/x', 'latest')
        assert 'https realm is required' in str(info.value)
        assert SECRET not in str(info.value)
        assert other_state.token_auth == []
    finally:
        other.shutdown()
        other.server_close()


def test_same_loopback_http_registry_realm_is_allowed(token_registry):
    url, state, auth = token_registry
    reg = Registry(url, credentials_file=auth)
    reg.get_manifest('acme/x', 'latest')
    assert state.token_auth and state.token_auth[0].startswith('Basic ')
