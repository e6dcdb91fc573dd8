"""The few registry v2 HTTP calls the native backend needs (requests).

Manifests are read and written as raw bytes so digests stay exact. Authentication
comes from a docker-style auth file ({"auths": {"host[:port]": {"auth": b64(user:pw)}}}):
HTTP basic, or a bearer token fetched from the realm a 401 names. Credentials are kept
in this object only; messages and errors never include them.
"""

import base64
import hashlib
import json
import ipaddress
import re
from urllib.parse import urlsplit

import requests

from koji_containerbuild.errors import BackendError, ConfigError

MEDIA_V2S2 = 'application/vnd.docker.distribution.manifest.v2+json'
MEDIA_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
MEDIA_OCI = 'application/vnd.oci.image.manifest.v1+json'
MEDIA_OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
MEDIA_CONFIG = 'application/vnd.docker.container.image.v1+json'
ACCEPT_ALL = ', '.join((MEDIA_LIST, MEDIA_V2S2, MEDIA_OCI_INDEX, MEDIA_OCI))
LIST_TYPES = (MEDIA_LIST, MEDIA_OCI_INDEX)
MAX_MANIFEST = 4 * 1024 * 1024
MAX_BLOB = 64 * 1024 * 1024
_REPO_RE = re.compile(r'^[a-z0-9]+(?:[._-][a-z0-9]+|__)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*\Z')
_TAG_RE = re.compile(r'^[\w][\w.-]{0,127}\Z')
_DIGEST_RE = re.compile(r'^sha256:[0-9a-f]{64}\Z')


def _is_loopback(host):
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def digest_of(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def check_repository(repo):
    if not isinstance(repo, str) or not _REPO_RE.match(repo) or len(repo) > 255:
        raise BackendError('Invalid registry repository name %r' % (repo,))
    return repo


def check_reference(ref):
    if not isinstance(ref, str) or not (_TAG_RE.match(ref) or _DIGEST_RE.match(ref)):
        raise BackendError('Invalid tag or digest %r' % (ref,))
    return ref


def split_url(url):
    """('https', 'host:port') for a registry URL or bare host[:port] (https by default)."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError('Registry URL is empty')
    match = re.match(r'^(?:(https?)://)?([A-Za-z0-9.-]+(?::\d+)?)/?\Z', url.strip())
    if not match:
        raise ConfigError('Invalid registry URL %r: expected [https://]host[:port]'
                          % (url,))
    return match.group(1) or 'https', match.group(2)


def load_auth(path, host):
    """(user, password) for `host` from a docker-style auth file, or None."""
    if not path:
        return None
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as exc:
        raise ConfigError('Cannot read registry credentials file %s: %s'
                          % (path, exc.strerror))
    except ValueError:
        raise ConfigError('Registry credentials file %s is not valid JSON' % path)
    auths = data.get('auths') if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        raise ConfigError('Registry credentials file %s has no "auths" object' % path)
    for key, entry in auths.items():
        name = re.sub(r'^https?://', '', str(key)).rstrip('/')
        if name.split('/')[0] != host or not isinstance(entry, dict):
            continue
        if entry.get('username') and entry.get('password') is not None:
            return str(entry['username']), str(entry['password'])
        try:
            user, _, password = base64.b64decode(entry.get('auth', '')).decode(
                'utf-8').partition(':')
        except (ValueError, TypeError):
            raise ConfigError('Registry credentials file %s: bad "auth" value for %s'
                              % (path, host))
        if user:
            return user, password
    return None


class Registry(object):
    """A registry at `url` (https://host[:port]; http:// for a plain-HTTP dev registry).

    tls_verify False disables certificate checks (only for loopback/dev registries);
    ca_cert is a CA bundle path; credentials_file a docker-style auth file.
    """

    def __init__(self, url, tls_verify=True, ca_cert=None, credentials_file=None,
                 timeout=60):
        self.scheme, self.host = split_url(url)
        self.url = '%s://%s' % (self.scheme, self.host)
        self.tls_verify = bool(tls_verify)
        self.ca_cert = ca_cert
        self.credentials_file = credentials_file
        self.timeout = timeout
        self._auth = load_auth(credentials_file, self.host)
        self._tokens = {}
        self._session = requests.Session()
        self._session.verify = (ca_cert or True) if self.tls_verify else False

    def __repr__(self):
        return 'Registry(%r)' % self.url

    def pullspec(self, repo, ref):
        sep = '@' if ref.startswith('sha256:') else ':'
        return '%s/%s%s%s' % (self.host, repo, sep, ref)

    # ---------------------------------------------------------------- auth + HTTP
    def _request(self, method, path, scope, headers=None, data=None, stream=False):
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
            raise BackendError('Registry %s: TLS error (%s)' % (self.host, _short(exc)))
        except requests.exceptions.RequestException as exc:
            raise BackendError('Registry %s unreachable: %s' % (self.host, _short(exc)))
        if resp.status_code == 401:
            resp.close()
            raise BackendError('Registry %s refused the credentials for %s %s'
                               % (self.host, method, path))
        return resp

    def _bearer(self, challenge, scope):
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.get('realm')
        if not realm or not realm.startswith(('https://', 'http://')):
            raise BackendError('Registry %s: unusable bearer challenge' % self.host)
        if self._auth:
            self._check_realm(realm)
        query = {'service': params.get('service', '')}
        query['scope'] = params.get('scope') or scope
        try:
            resp = self._session.get(realm, params=query, auth=self._auth,
                                     timeout=self.timeout)
            body = resp.json() if resp.status_code == 200 else {}
        except (requests.exceptions.RequestException, ValueError) as exc:
            raise BackendError('Registry %s: token request failed (%s)'
                               % (self.host, _short(exc)))
        token = body.get('token') or body.get('access_token') if isinstance(body, dict) \
            else None
        if not token:
            raise BackendError('Registry %s: no token granted (HTTP %s)'
                               % (self.host, resp.status_code))
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
                and _is_loopback(host)):
            return
        raise BackendError('Registry %s: refusing to send credentials to the token realm '
                           '%s://%s (an https realm is required)'
                           % (self.host, parts.scheme, parts.netloc.rpartition('@')[2]))

    # ---------------------------------------------------------------- API
    def get_manifest(self, repo, ref, accept=ACCEPT_ALL):
        """(media_type, bytes, digest) of a manifest, or BackendError if missing/invalid."""
        check_repository(repo)
        check_reference(ref)
        resp = self._request('GET', '/v2/%s/manifests/%s' % (repo, ref),
                             'repository:%s:pull' % repo, headers={'Accept': accept})
        with resp:
            if resp.status_code == 404:
                raise BackendError('Image %s not found in the registry'
                                   % self.pullspec(repo, ref))
            if resp.status_code != 200:
                raise BackendError('Registry %s: GET manifest %s:%s gave HTTP %s'
                                   % (self.host, repo, ref, resp.status_code))
            data = _read_limited(resp, MAX_MANIFEST, 'manifest')
        digest = digest_of(data)
        if ref.startswith('sha256:') and digest != ref:
            raise BackendError('Registry %s served manifest %s with digest %s'
                               % (self.host, ref, digest))
        try:
            body = json.loads(data)
        except ValueError:
            raise BackendError('Registry %s served an invalid manifest for %s:%s'
                               % (self.host, repo, ref))
        media_type = body.get('mediaType') if isinstance(body, dict) else None
        media_type = media_type or resp.headers.get('Content-Type', '').split(';')[0]
        return media_type, data, digest

    def put_manifest(self, repo, tag, media_type, data):
        """PUT manifest bytes under `tag` (or digest); return the digest the registry reports."""
        check_repository(repo)
        check_reference(tag)
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
                               'expected %s' % (self.host, repo, tag, digest, digest_of(data)))
        return digest

    def get_blob(self, repo, digest, max_size=MAX_BLOB):
        """Bytes of a (small) blob, such as an image config, checked against its digest."""
        check_repository(repo)
        if not _DIGEST_RE.match(digest or ''):
            raise BackendError('Invalid blob digest %r' % (digest,))
        resp = self._request('GET', '/v2/%s/blobs/%s' % (repo, digest),
                             'repository:%s:pull' % repo, stream=True)
        with resp:
            if resp.status_code != 200:
                raise BackendError('Registry %s: GET blob %s in %s gave HTTP %s'
                                   % (self.host, digest, repo, resp.status_code))
            data = _read_limited(resp, max_size, 'blob')
        if digest_of(data) != digest:
            raise BackendError('Registry %s served blob %s with wrong content'
                               % (self.host, digest))
        return data

    def tag_digest(self, repo, tag):
        """Digest the registry serves for `tag` now (to verify a publish)."""
        return self.get_manifest(repo, tag)[2]

    def arch_manifest(self, repo, ref, arch_goarch):
        """(digest, manifest dict) of the single-arch manifest for `ref`, descending a list."""
        media_type, data, digest = self.get_manifest(repo, ref)
        body = json.loads(data)
        if media_type in LIST_TYPES:
            for entry in body.get('manifests') or []:
                plat = entry.get('platform') or {}
                if plat.get('architecture') == arch_goarch and plat.get('os', 'linux') == 'linux':
                    return self.arch_manifest(repo, entry['digest'], arch_goarch)
            raise BackendError('Image %s has no %s entry in its manifest list'
                               % (self.pullspec(repo, ref), arch_goarch))
        if body.get('schemaVersion') != 2 or 'config' not in body:
            raise BackendError('Image %s has an unsupported manifest (%s)'
                               % (self.pullspec(repo, ref), media_type))
        return digest, body


def manifest_list(entries):
    """Docker manifest list v2 bytes for [{digest, size, media_type, goarch}], sorted by arch."""
    manifests = []
    for entry in sorted(entries, key=lambda e: (e['goarch'], e['digest'])):
        manifests.append({
            'mediaType': entry.get('media_type') or MEDIA_V2S2,
            'size': int(entry['size']),
            'digest': entry['digest'],
            'platform': {'architecture': entry['goarch'], 'os': 'linux'},
        })
    body = {'schemaVersion': 2, 'mediaType': MEDIA_LIST, 'manifests': manifests}
    return json.dumps(body, indent=3, sort_keys=True).encode('utf-8')


def _read_limited(resp, limit, what):
    chunks = []
    total = 0
    for chunk in resp.iter_content(65536):
        total += len(chunk)
        if total > limit:
            raise BackendError('Registry response too large for a %s (over %d bytes)'
                               % (what, limit))
        chunks.append(chunk)
    return b''.join(chunks)


def _error_text(resp):
    try:
        errors = resp.json().get('errors') or []
        return '; '.join('%s: %s' % (e.get('code'), e.get('message')) for e in errors)[:300]
    except (ValueError, AttributeError):
        return resp.text[:200].replace('\n', ' ')


def _short(exc):
    # requests errors may quote URLs; the registry URL carries no credentials, but be safe.
    from koji_containerbuild.buildah import scrub
    return scrub(str(exc))[:300]
