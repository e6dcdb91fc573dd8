"""The few registry v2 HTTP calls the native backend needs (requests).

Manifests are read and written as raw bytes so digests stay exact. Authentication
comes from a docker-style auth file ({"auths": {"host[:port]": {"auth": b64(user:pw)}}}):
HTTP basic, or a bearer token fetched from the realm a 401 names. Credentials are kept
in this object only; messages and errors never include them.

Everything a registry answers is hostile input: every call has a total deadline
(http_deadline: a server that drip-feeds bytes cannot hold a build), bodies are read in bounded chunks
(never whole before the size check), and every JSON answer is parsed by one function
that turns bad shapes (deep nesting, a list where an object is expected) into a clear
BackendError. The transport rule (plain HTTP or unverified TLS only for loopback
registries unless the site opts in) lives in check_transport().

This module is the Registry client (HTTP, auth, the API calls); the wire formats and
bounded parsing are in registry_parse.py, the URL/transport/credentials rules in
registry_auth.py. Their names stay importable from here.
"""

import re
from urllib.parse import quote, urlsplit

import requests

from koji_containerbuild import http_deadline, netrules
from koji_containerbuild.errors import BackendError
from koji_containerbuild.registry_auth import check_transport, load_auth, split_url
from koji_containerbuild.registry_parse import (
    ACCEPT_ALL, LIST_TYPES, MAX_BLOB, MAX_MANIFEST, MAX_SMALL, MEDIA_CONFIG, MEDIA_LIST,
    MEDIA_OCI, MEDIA_OCI_INDEX, MEDIA_V2S2, _DIGEST_RE, _TAG_RE, _error_text, _field,
    _list_of, _read_limited, _short, check_reference, check_repository, digest_of,
    manifest_list, parse_json)

# The public names, those of registry_parse and registry_auth included (callers import
# them from here).
__all__ = ['ACCEPT_ALL', 'DEFAULT_DEADLINE', 'LIST_TYPES', 'MAX_BLOB', 'MAX_MANIFEST',
           'MAX_SMALL', 'MEDIA_CONFIG', 'MEDIA_LIST', 'MEDIA_OCI', 'MEDIA_OCI_INDEX',
           'MEDIA_V2S2', 'Registry', 'check_reference', 'check_repository',
           'check_transport', 'digest_of', 'load_auth', 'manifest_list', 'parse_json',
           'split_url']

DEFAULT_DEADLINE = 120.0       # seconds for one whole call (request + body)


class Registry(object):
    """A registry at `url` (https://host[:port]; http:// for a plain-HTTP registry).

    tls_verify False disables certificate checks; plain http or unverified TLS is
    refused for non-loopback hosts unless allow_insecure (check_transport). ca_cert is
    a CA bundle path; credentials_file a docker-style auth file. timeout bounds each
    socket operation, deadline each whole call.
    """

    def __init__(self, url, tls_verify=True, ca_cert=None, credentials_file=None,
                 timeout=60, allow_insecure=False, deadline=DEFAULT_DEADLINE,
                 insecure_option=None):
        self.scheme, self.host = split_url(url)
        self.url = '%s://%s' % (self.scheme, self.host)
        self.tls_verify = bool(tls_verify)
        check_transport(self.scheme, self.host, self.tls_verify, allow_insecure,
                        insecure_option)
        self.ca_cert = ca_cert
        self.credentials_file = credentials_file
        self.timeout = timeout
        self.deadline = deadline
        self._auth = load_auth(credentials_file, self.host)
        self._tokens = {}
        # labels by manifest digest: content-addressed, so a second read (the tag check
        # before the build and again before publishing) needs no requests
        self._labels = {}
        self._session = http_deadline.session()
        self._session.verify = (ca_cert or True) if self.tls_verify else False

    def __repr__(self):
        return 'Registry(%r)' % self.url

    @property
    def buildah_tls_verify(self):
        """buildah/skopeo's --tls-verify: they speak plain HTTP only with it off."""
        return self.tls_verify and self.scheme == 'https'

    def pullspec(self, repo, ref):
        sep = '@' if ref.startswith('sha256:') else ':'
        return '%s/%s%s%s' % (self.host, repo, sep, ref)

    # ---------------------------------------------------------------- auth + HTTP
    def _call(self, what, deadline=None):
        """Context for one whole call: a total deadline over its requests and reads."""
        return http_deadline.Deadline(self.host, what, deadline or self.deadline)

    def _request(self, method, path, scope, headers=None, data=None, stream=True):
        url = self.url + path
        headers = dict(headers or {})
        token = self._tokens.get(scope)
        if token:
            headers['Authorization'] = 'Bearer ' + token
        auth = self._auth if not token else None
        try:
            resp = self._session.request(method, url, headers=headers, data=data,
                                         auth=auth, timeout=self.timeout, stream=stream,
                                         allow_redirects=True)
            if resp.status_code == 401 and token:
                # the cached token expired (long builds outlive it): ask for a new one once
                resp.close()
                self._tokens.pop(scope, None)
                headers.pop('Authorization', None)
                resp = self._session.request(method, url, headers=headers, data=data,
                                             auth=self._auth, timeout=self.timeout,
                                             stream=stream, allow_redirects=True)
                token = None
            if resp.status_code == 401 and not token:
                challenge = resp.headers.get('WWW-Authenticate', '')
                if challenge.lower().startswith('bearer'):
                    resp.close()
                    headers['Authorization'] = 'Bearer ' + self._bearer(challenge, scope)
                    resp = self._session.request(method, url, headers=headers, data=data,
                                                 timeout=self.timeout, stream=stream)
        except requests.exceptions.SSLError as exc:
            http_deadline.raise_if_expired()
            raise BackendError('Registry %s: TLS error (%s)%s'
                               % (self.host, _short(exc), _tls_hint(exc)))
        except (requests.exceptions.RequestException, OSError) as exc:
            http_deadline.raise_if_expired()
            raise BackendError('Registry %s unreachable: %s' % (self.host, _short(exc)))
        if resp.status_code == 401:
            resp.close()
            raise BackendError('Registry %s refused the credentials for %s %s'
                               % (self.host, method, path))
        return resp

    def _bearer(self, challenge, scope):
        params = dict(re.findall(r'(\w+)="([^"]{0,2000})"', challenge[:8192]))
        realm = params.get('realm')
        if not realm or not realm.startswith(('https://', 'http://')):
            raise BackendError('Registry %s: unusable bearer challenge' % self.host)
        if self._auth:
            self._check_realm(realm)
        query = {'service': params.get('service', '')}
        if params.get('scope') or scope:
            query['scope'] = params.get('scope') or scope    # none for the /v2/ preflight
        try:
            resp = self._session.get(realm, params=query, auth=self._auth,
                                     timeout=self.timeout, stream=True)
            with resp:
                status = resp.status_code
                body = {}
                if status == 200:
                    body = parse_json(_read_limited(resp, MAX_SMALL, 'token answer'),
                                      'token answer from %s' % self.host, dict)
        except (requests.exceptions.RequestException, OSError) as exc:
            http_deadline.raise_if_expired()
            raise BackendError('Registry %s: token request failed (%s)'
                               % (self.host, _short(exc)))
        token = body.get('token') or body.get('access_token')
        if not token or not isinstance(token, str):
            raise BackendError('Registry %s: no token granted (HTTP %s)'
                               % (self.host, status))
        self._tokens[scope] = token
        return token

    def _check_realm(self, realm):
        """The password goes to the token realm: only over https, or plain http to this
        same registry host when that is a loopback test registry."""
        parts = urlsplit(realm)
        if parts.scheme == 'https' and parts.hostname:
            return
        host = urlsplit(self.url).hostname
        if (parts.scheme == 'http' and self.scheme == 'http' and parts.hostname == host
                and netrules.is_loopback_host(host)):
            return
        raise BackendError('Registry %s: refusing to send credentials to the token realm '
                           '%s://%s (an https realm is required)'
                           % (self.host, parts.scheme, parts.netloc.rpartition('@')[2]))

    # ---------------------------------------------------------------- API
    def check_access(self, deadline=15.0):
        """Preflight: the registry answers the v2 API with the configured scheme, TLS
        settings and credentials. BackendError naming the reason, within `deadline`."""
        with self._call('check', deadline):
            resp = self._request('GET', '/v2/', '')
            with resp:
                status = resp.status_code
        if status != 200:
            raise BackendError('Registry %s: GET /v2/ gave HTTP %s (not a registry v2 API, '
                               'or %s is the wrong scheme)' % (self.host, status, self.scheme))

    def get_manifest(self, repo, ref, accept=ACCEPT_ALL, missing_ok=False):
        """(media_type, bytes, digest) of a manifest, or BackendError if missing/invalid
        (None if missing and `missing_ok`)."""
        check_repository(repo)
        check_reference(ref)
        with self._call('GET manifest %s:%s' % (repo, ref)):
            resp = self._request('GET', '/v2/%s/manifests/%s' % (repo, ref),
                                 'repository:%s:pull' % repo, headers={'Accept': accept})
            with resp:
                if resp.status_code == 404:
                    if missing_ok:
                        return None
                    raise BackendError('Image %s not found in the registry'
                                       % self.pullspec(repo, ref))
                if resp.status_code != 200:
                    raise BackendError('Registry %s: GET manifest %s:%s gave HTTP %s'
                                       % (self.host, repo, ref, resp.status_code))
                data = _read_limited(resp, MAX_MANIFEST, 'manifest')
                header_type = resp.headers.get('Content-Type', '').split(';')[0]
        digest = digest_of(data)
        if ref.startswith('sha256:') and digest != ref:
            raise BackendError('Registry %s served manifest %s with digest %s'
                               % (self.host, ref, digest))
        body = parse_json(data, 'manifest %s:%s from %s' % (repo, ref, self.host), dict)
        media_type = body.get('mediaType')
        if not isinstance(media_type, str) or not media_type:
            media_type = header_type
        return media_type[:200], data, digest

    def put_manifest(self, repo, tag, media_type, data):
        """PUT manifest bytes under `tag` (or digest); return the digest the registry reports."""
        check_repository(repo)
        check_reference(tag)
        with self._call('PUT manifest %s:%s' % (repo, tag)):
            resp = self._request('PUT', '/v2/%s/manifests/%s' % (repo, tag),
                                 'repository:%s:pull,push' % repo,
                                 headers={'Content-Type': media_type}, data=data)
            with resp:
                if resp.status_code not in (200, 201, 202):
                    raise BackendError('Registry %s: PUT manifest %s:%s gave HTTP %s: %s'
                                       % (self.host, repo, tag, resp.status_code,
                                          _error_text(resp)))
                digest = resp.headers.get('Docker-Content-Digest') or digest_of(data)
        if digest != digest_of(data):
            raise BackendError('Registry %s stored manifest %s:%s under digest %s, '
                               'expected %s' % (self.host, repo, tag, digest[:80],
                                                digest_of(data)))
        return digest

    def get_blob(self, repo, digest, max_size=MAX_BLOB):
        """Bytes of a (small) blob, such as an image config, checked against its digest."""
        check_repository(repo)
        if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
            raise BackendError('Invalid blob digest %r' % (digest,))
        with self._call('GET blob %s' % digest):
            resp = self._request('GET', '/v2/%s/blobs/%s' % (repo, digest),
                                 'repository:%s:pull' % repo)
            with resp:
                if resp.status_code != 200:
                    raise BackendError('Registry %s: GET blob %s in %s gave HTTP %s'
                                       % (self.host, digest, repo, resp.status_code))
                data = _read_limited(resp, max_size, 'blob')
        if digest_of(data) != digest:
            raise BackendError('Registry %s served blob %s with wrong content'
                               % (self.host, digest))
        return data

    def put_blob(self, repo, data):
        """Upload a small blob (one POST + PUT) unless it is there; returns its digest.

        Used for the SBOM/provenance attachments (supply_chain.attach).
        """
        check_repository(repo)
        digest = digest_of(data)
        scope = 'repository:%s:pull,push' % repo
        with self._call('upload blob %s to %s' % (digest, repo)):
            return self._put_blob(repo, data, digest, scope)

    def _put_blob(self, repo, data, digest, scope):
        with self._request('HEAD', '/v2/%s/blobs/%s' % (repo, digest), scope) as resp:
            if resp.status_code == 200:
                return digest
        with self._request('POST', '/v2/%s/blobs/uploads/' % repo, scope) as resp:
            if resp.status_code != 202:
                raise BackendError('Registry %s: starting a blob upload to %s gave HTTP %s: %s'
                                   % (self.host, repo, resp.status_code, _error_text(resp)))
            location = urlsplit(resp.headers.get('Location') or '')
        if (location.netloc and location.netloc != self.host) or \
                not location.path.startswith('/v2/'):
            raise BackendError('Registry %s: unusable blob upload location' % self.host)
        query = location.query + '&' if location.query else ''
        path = '%s?%sdigest=%s' % (location.path, query, quote(digest, safe=''))
        with self._request('PUT', path, scope, data=data,
                           headers={'Content-Type': 'application/octet-stream'}) as resp:
            if resp.status_code != 201:
                raise BackendError('Registry %s: blob upload to %s gave HTTP %s: %s'
                                   % (self.host, repo, resp.status_code, _error_text(resp)))
        return digest

    def first_tags(self, repo, count=1):
        """Up to `count` tags of `repo` (the registry's order, lexical for
        docker-distribution); [] for a repository that does not exist."""
        check_repository(repo)
        with self._call('GET tags of %s' % repo):
            resp = self._request('GET', '/v2/%s/tags/list?n=%d' % (repo, int(count)),
                                 'repository:%s:pull' % repo)
            with resp:
                if resp.status_code == 404:
                    return []
                if resp.status_code != 200:
                    raise BackendError('Registry %s: GET tags of %s gave HTTP %s'
                                       % (self.host, repo, resp.status_code))
                data = _read_limited(resp, MAX_SMALL, 'tag list')
        tags = parse_json(data, 'tag list of %s' % repo, dict).get('tags')
        if tags is None:
            return []
        if not isinstance(tags, list):
            raise BackendError('Registry sent an invalid tag list for %s' % repo)
        return [t for t in tags if isinstance(t, str) and _TAG_RE.match(t)][:count]

    def tag_digest(self, repo, tag):
        """Digest the registry serves for `tag` now (to verify a publish)."""
        return self.get_manifest(repo, tag)[2]

    def arch_manifest(self, repo, ref, arch_goarch, _depth=0):
        """(digest, manifest dict) of the single-arch manifest for `ref`, descending a list."""
        media_type, data, digest = self.get_manifest(repo, ref)
        body = parse_json(data, 'manifest', dict)
        where = self.pullspec(repo, ref)
        if media_type in LIST_TYPES:
            if _depth:
                raise BackendError('Image %s: a manifest list names another list' % where)
            for entry in _list_of(body, 'manifests', where):
                plat = entry.get('platform')
                if not isinstance(plat, dict):
                    continue
                if plat.get('architecture') == arch_goarch and plat.get('os', 'linux') == 'linux':
                    return self.arch_manifest(repo, _field(entry, 'digest', str, where),
                                              arch_goarch, _depth + 1)
            raise BackendError('Image %s has no %s entry in its manifest list'
                               % (where, arch_goarch))
        config = body.get('config')
        if body.get('schemaVersion') != 2 or not isinstance(config, dict) or \
                not isinstance(config.get('digest'), str):
            raise BackendError('Image %s has an unsupported manifest (%s)'
                               % (where, media_type))
        return digest, body

    def image_labels(self, repo, ref, arch_goarch=None):
        """Labels of the image config `ref` points at (for a list: its first entry, or
        the `arch_goarch` one); {} when the image has none. Labels of a digest `ref`
        are read once per Registry."""
        key = (repo, ref, arch_goarch)
        if key not in self._labels:
            labels = self._read_labels(repo, ref, arch_goarch)
            if not ref.startswith('sha256:'):
                return labels
            if len(self._labels) >= 256:       # bounded (a build reads a few)
                self._labels.clear()
            self._labels[key] = labels
        return dict(self._labels[key])

    def _read_labels(self, repo, ref, arch_goarch):
        if arch_goarch is None:
            _media, data, _digest = self.get_manifest(repo, ref)
            body = parse_json(data, 'manifest', dict)
            entries = body.get('manifests')
            if isinstance(entries, list):
                first = next((e for e in entries if isinstance(e, dict)), None)
                plat = (first or {}).get('platform')
                arch_goarch = plat.get('architecture') if isinstance(plat, dict) else None
                if not isinstance(arch_goarch, str):
                    raise BackendError('Image %s has an unusable manifest list'
                                       % self.pullspec(repo, ref))
            else:
                arch_goarch = ''
        if arch_goarch:
            _digest, manifest = self.arch_manifest(repo, ref, arch_goarch)
        else:
            _digest, manifest = self.arch_manifest(repo, ref, None)
        config = parse_json(self.get_blob(repo, manifest['config']['digest'], MAX_MANIFEST),
                            'image config', dict)
        inner = config.get('config')
        labels = inner.get('Labels') if isinstance(inner, dict) else None
        return dict((k, v) for k, v in labels.items() if isinstance(v, str)) \
            if isinstance(labels, dict) else {}


def _tls_hint(exc):
    text = str(exc).lower()
    if 'wrong version number' in text or 'record layer failure' in text or \
            'unknown protocol' in text:
        return ': the server does not speak TLS (a plain-HTTP registry needs http:// in ' \
               'its URL)'
    return ''
