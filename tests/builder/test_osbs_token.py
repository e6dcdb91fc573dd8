"""The plugin's own OSBS API request (the PipelineRun listing) sends osbs-client's bearer
token to the API's origin only: never to another host or port after a redirect, never
over a downgrade from https to http."""

import json
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from koji_containerbuild.backends import osbs_run

TOKEN = 'sha256~SECRET-TOKEN'
LISTING = {'kind': 'PipelineRunList', 'items': [{'metadata': {'name': 'r1'}}]}


class Server(object):
    """A loopback HTTP(S) server answering from a {path: (status, headers, body)} map and
    recording each request's path and Authorization header."""

    def __init__(self, routes, context=None):
        self.routes = routes
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                # routes by full path, else by path without the query (?limit=...)
                path = self.path if self.path in outer.routes else self.path.split('?')[0]
                outer.requests.append((path, self.headers.get('Authorization')))
                status, headers, body = outer.routes.get(path, (404, {}, b'{}'))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        if context is not None:
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.scheme = 'https' if context is not None else 'http'
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self):
        return '%s://127.0.0.1:%d/' % (self.scheme, self.port)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Conf(object):
    def __init__(self, base, verify_ssl=True):
        self.base = base
        self.verify = verify_ssl

    def get_openshift_base_uri(self):
        return self.base

    def get_namespace(self):
        return 'ns'

    def get_oauth2_token(self):
        return TOKEN

    def get_verify_ssl(self):
        return self.verify


PATH = '/apis/tekton.dev/v1beta1/namespaces/ns/pipelineruns'


@pytest.fixture
def servers():
    made = []

    def make(routes, context=None):
        server = Server(routes, context)
        made.append(server)
        return server
    yield make
    for server in made:
        server.close()


def _ok():
    return (200, {'Content-Type': 'application/json'}, json.dumps(LISTING).encode())


def test_redirect_to_another_port_is_refused_and_gets_nothing(servers):
    other = servers({PATH: _ok()})
    api = servers({PATH: (302, {'Location': '%s%s' % (other.base, PATH[1:])}, b'')})
    with pytest.raises(Exception) as info:
        osbs_run.list_runs(Conf(api.base))
    assert 'refusing a redirect' in str(info.value) and TOKEN not in str(info.value)
    assert api.requests == [(PATH, 'Bearer %s' % TOKEN)]
    assert other.requests == []          # not even contacted


def test_redirect_to_another_host_name_is_refused(servers):
    api = servers({PATH: (307, {'Location': 'http://localhost:%d%s' % (1, PATH)}, b'')})
    with pytest.raises(Exception, match='refusing a redirect'):
        osbs_run.list_runs(Conf(api.base))


def test_redirect_within_the_api_keeps_the_token(servers):
    api = servers({PATH: (301, {'Location': PATH + '/'}, b''), PATH + '/': _ok()})
    assert osbs_run.list_runs(Conf(api.base)) == LISTING['items']
    assert api.requests == [(PATH, 'Bearer %s' % TOKEN), (PATH + '/', 'Bearer %s' % TOKEN)]


@pytest.fixture(scope='module')
def tls_context(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('tls')
    key, cert = str(tmp / 'key.pem'), str(tmp / 'cert.pem')
    done = subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
                           '-keyout', key, '-out', cert, '-days', '1', '-subj',
                           '/CN=127.0.0.1'], capture_output=True)
    if done.returncode != 0:
        pytest.skip('openssl cannot make a test certificate: %s' % done.stderr[:200])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def test_https_to_http_downgrade_is_refused(servers, tls_context):
    plain = servers({PATH: _ok()})
    api = servers({PATH: (302, {'Location': 'http://127.0.0.1:%d%s' % (plain.port, PATH)},
                          b'')}, context=tls_context)
    with pytest.raises(Exception, match='refusing a redirect'):
        osbs_run.list_runs(Conf(api.base, verify_ssl=False))
    assert api.requests == [(PATH, 'Bearer %s' % TOKEN)]
    assert plain.requests == []


def test_https_same_origin_redirect_works(servers, tls_context):
    api = servers({PATH: (302, {'Location': PATH + '?limit=500'}, b''),
                   PATH + '?limit=500': _ok()}, context=tls_context)
    assert osbs_run.list_runs(Conf(api.base, verify_ssl=False)) == LISTING['items']
    assert [auth for _path, auth in api.requests] == ['Bearer %s' % TOKEN] * 2


def _page(names, cont=None):
    data = {'kind': 'PipelineRunList', 'metadata': {'continue': cont} if cont else {},
            'items': [{'metadata': {'name': n}, 'spec': {'params': [
                {'name': 'user-params', 'value': json.dumps({'koji_task_id': 7})}]}}
                for n in names]}
    return (200, {'Content-Type': 'application/json'}, json.dumps(data).encode())


def test_listing_is_read_page_by_page(servers):
    api = servers({PATH + '?limit=10': _page(['a', 'b'], cont='tok/1+'),
                   PATH + '?limit=10&continue=tok%2F1%2B': _page(['c'])})
    assert [r['metadata']['name'] for r in osbs_run.list_runs(Conf(api.base))] == \
        ['a', 'b', 'c']
    assert [auth for _p, auth in api.requests] == ['Bearer %s' % TOKEN] * 2


def test_listing_that_ignores_limit_or_is_too_big_is_refused(servers, monkeypatch):
    api = servers({PATH + '?limit=10': _page(['r%d' % i for i in range(101)])})
    with pytest.raises(ValueError, match='101 pipeline runs in one page'):
        osbs_run.list_runs(Conf(api.base))
    monkeypatch.setattr(osbs_run, 'MAX_PAGE_BYTES', 1000)
    big = servers({PATH + '?limit=10': _page(['x' * 2000])})
    with pytest.raises(ValueError, match='larger than'):
        osbs_run.list_runs(Conf(big.base))
    monkeypatch.setattr(osbs_run, 'MAX_PAGE_BYTES', 1024 * 1024)
    deep = servers({PATH + '?limit=10': (200, {}, b'{"items": ' + b'[' * 100000 + b']}')})
    with pytest.raises(ValueError):
        osbs_run.list_runs(Conf(deep.base))
