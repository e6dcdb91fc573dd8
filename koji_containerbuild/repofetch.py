"""Fetch one `yum_repourls` .repo file for a build, as a hostile URL deserves.

The task process fetches it (outside the build's network namespace) and the file is
mounted into every RUN step, so a URL must not make the builder hand over what only it
can reach:

- every address the host name resolves to is checked (netrules.refused_address:
  loopback, link-local, private, unspecified, multicast, reserved are refused unless
  the site lists the network), and the connection goes to the address that was checked
  (no second resolution an attacker's DNS could answer differently);
- redirects are followed by hand (at most MAX_REDIRECTS), each target checked the same
  way; credentials in the URL go only to the URL's own origin (scheme, host, port);
- an http proxy from the environment (http_proxy/https_proxy/no_proxy) is used as
  requests would; the target is still checked wherever this host can resolve it;
- the body is bounded (MAX_REPO_FILE) and the whole fetch, redirects included, has one
  deadline: a timer shuts the socket down, so a drip-feeding server cannot hold a build;
- the body must parse as a yum repository config (parse_repo_config), linear in its size.
"""

import base64
import http.client
import re
import socket
import ssl
import threading
import time
import urllib.request
from urllib.parse import unquote, urljoin, urlsplit

from koji_containerbuild import netrules, scmurl
from koji_containerbuild.errors import BackendError

MAX_REPO_FILE = 1024 * 1024
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
URL_KEYS = ('baseurl', 'metalink', 'mirrorlist')
_SECTION_RE = re.compile(r'^[A-Za-z0-9_.:-]{1,200}\Z')
_KEY_RE = re.compile(r'^[A-Za-z0-9_.-]{1,100}\Z')


# ------------------------------------------------------------------ parsing

def parse_repo_config(data, what='repo file'):
    """[(repo id, {key: value})] of a yum/dnf .repo file; BackendError unless every
    section names a baseurl, metalink or mirrorlist. Lines are split on \\n only (as
    dnf's parser does) and each is looked at once."""
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError:
        raise BackendError('%s is not UTF-8 text' % what)
    sections = []
    seen = set()
    current = None
    last_key = None
    for number, line in enumerate(text.split('\n'), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in '#;':
            continue
        if stripped[0] == '[':
            name = stripped[1:-1].strip() if stripped[-1] == ']' else ''
            if not _SECTION_RE.match(name):
                raise BackendError('%s line %d: invalid section header' % (what, number))
            if name in seen:
                raise BackendError('%s: section [%s] appears twice' % (what, name))
            seen.add(name)
            current = (name, {})
            sections.append(current)
            last_key = None
            continue
        if current is None:
            raise BackendError('%s line %d: an option outside a [repository] section'
                               % (what, number))
        if line[0] in ' \t' and last_key is not None:
            current[1][last_key] += ' ' + stripped     # continuation line
            continue
        key, sep, value = stripped.partition('=')
        key = key.strip().lower()
        if not sep or not _KEY_RE.match(key):
            raise BackendError('%s line %d: expected key=value' % (what, number))
        current[1][key] = value.strip()
        last_key = key
    if not sections:
        raise BackendError('%s has no [repository] section' % what)
    for name, keys in sections:
        if not any(keys.get(k) for k in URL_KEYS):
            raise BackendError('%s: section [%s] has no baseurl, metalink or mirrorlist'
                               % (what, name))
    return sections


# ------------------------------------------------------------------ fetching

class _Watch(object):
    """One deadline for a whole fetch: shuts down every socket it was given."""

    def __init__(self, seconds):
        self.expired = False
        self.sockets = []
        self.lock = threading.Lock()
        self.end = time.monotonic() + seconds
        self.timer = threading.Timer(seconds, self._expire)
        self.timer.daemon = True
        self.timer.start()

    def _expire(self):
        with self.lock:
            self.expired = True
            for sock in self.sockets:
                _shutdown(sock)

    def add(self, sock):
        with self.lock:
            self.sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def remaining(self):
        return max(0.01, self.end - time.monotonic())

    def cancel(self):
        self.timer.cancel()


def _shutdown(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to `address` (already checked) while naming `host` in the request."""

    def __init__(self, host, port, address, timeout, watch):
        super().__init__(host, port, timeout=timeout)
        self._address = address
        self._watch = watch

    def connect(self):
        self.sock = _connect(self._address, self.port, self.timeout, self._watch)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to `address`, with SNI and certificate checks against `host`."""

    def __init__(self, host, port, address, timeout, watch, context):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._watch = watch

    def connect(self):
        self.sock = _connect(self._address, self.port, self.timeout, self._watch)
        if self._tunnel_host:
            self._tunnel()          # CONNECT through the proxy, then TLS to the target
        self.sock = self._context.wrap_socket(
            self.sock, server_hostname=self._tunnel_host or self.host)


def _connect(address, port, timeout, watch):
    family = socket.AF_INET6 if ':' in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    watch.add(sock)
    try:
        sock.settimeout(timeout)
        sock.connect((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _resolve(host, port, seconds, missing_ok=False):
    """getaddrinfo within `seconds` (the resolver has no deadline of its own: a slow
    name server would otherwise hold the fetch past its deadline)."""
    box = {}

    def run():
        try:
            box['infos'] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            box['error'] = exc
    thread = threading.Thread(target=run, name='resolve', daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise BackendError('Cannot resolve %s within %g s' % (host, seconds))
    if 'error' in box:
        if missing_ok:
            return None
        raise BackendError('Cannot resolve %s: %s' % (host, box['error']))
    return box['infos']


def checked_address(host, port, allowed=(), seconds=30.0, proxied=False):
    """The first address `host` resolves to that a build may fetch from; BackendError
    naming the reason when none may. `proxied`: the fetch goes through a proxy, so a
    name this host cannot resolve is left to the proxy (None is returned)."""
    literal = netrules.ip_literal(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        addresses = []
        infos = _resolve(host, port, seconds, missing_ok=proxied)
        if infos is None:
            return None
        for info in infos:
            address = info[4][0].split('%', 1)[0]
            if address not in addresses:
                addresses.append(address)
    reasons = []
    for address in addresses:
        reason = netrules.refused_address(address, allowed)
        if reason is None:
            return address
        reasons.append(reason)
    raise BackendError('Refusing to fetch from %s: %s (a builder fetches yum repo files '
                       'only from public addresses, or from networks the site lists in '
                       '[native] yum_repourl_allowed_networks)' % (host, '; '.join(reasons)))


def fetch(url, timeout, allowed=(), limit=MAX_REPO_FILE, context=None):
    """Bytes at `url` (http or https), by the rules of the module docstring."""
    safe = scmurl.redact(url)
    watch = _Watch(timeout)
    first_origin = None
    try:
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            parts = urlsplit(current)
            if parts.scheme not in ('http', 'https') or not parts.hostname:
                raise BackendError('Cannot fetch %s: only http and https URLs can be '
                                   'fetched' % scmurl.redact(current))
            try:
                port = parts.port or (443 if parts.scheme == 'https' else 80)
            except ValueError:
                raise BackendError('Cannot fetch %s: invalid port' % scmurl.redact(current))
            host = parts.hostname
            origin = (parts.scheme, host, port)
            first_origin = first_origin or origin
            proxy = _proxy_for(parts.scheme, host)
            address = checked_address(host, port, allowed, watch.remaining(),
                                      proxied=proxy is not None)
            headers = {'User-Agent': 'koji-containerbuild', 'Accept-Encoding': 'identity'}
            target = (parts.path or '/') + ('?' + parts.query if parts.query else '')
            if proxy is not None:
                conn, target = _via_proxy(proxy, parts, host, port, target, timeout, watch,
                                          context, headers)
            elif parts.scheme == 'https':
                conn = _PinnedHTTPS(host, port, address, timeout, watch,
                                    context or ssl.create_default_context())
            else:
                conn = _PinnedHTTP(host, port, address, timeout, watch)
            # URL credentials only to the URL's own origin (no other host, port or scheme)
            if parts.username is not None and origin == first_origin:
                token = '%s:%s' % (unquote(parts.username), unquote(parts.password or ''))
                headers['Authorization'] = 'Basic ' + base64.b64encode(
                    token.encode('utf-8')).decode('ascii')
            try:
                conn.request('GET', target, headers=headers)
                resp = conn.getresponse()
                if resp.status in REDIRECTS:
                    location = resp.getheader('Location') or ''
                    conn.close()
                    if not location or len(location) > 8192:
                        raise BackendError('%s redirects without a usable Location' % safe)
                    current = urljoin(current, location)
                    continue
                if resp.status != 200:
                    raise BackendError('HTTP %s' % resp.status)
                return _read_bounded(resp, limit, safe, watch)
            finally:
                conn.close()
        raise BackendError('%s redirects more than %d times' % (safe, MAX_REDIRECTS))
    except BackendError as exc:
        if watch.expired:
            raise BackendError('Cannot fetch %s: no complete answer within %g s'
                               % (safe, timeout))
        if str(exc).startswith(('HTTP ',)):
            raise BackendError('Cannot fetch yum repo file %s: %s' % (safe, exc))
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if watch.expired:
            raise BackendError('Cannot fetch %s: no complete answer within %g s'
                               % (safe, timeout))
        raise BackendError('Cannot fetch yum repo file %s: %s'
                           % (safe, scmurl.redact(str(exc) or type(exc).__name__)[:300]))
    finally:
        watch.cancel()


def _proxy_for(scheme, host):
    """(host, port, Proxy-Authorization or None) of the http proxy the environment
    names for `scheme` and `host` (http_proxy, https_proxy, no_proxy), or None."""
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    parts = urlsplit(proxy if '://' in proxy else 'http://' + proxy)
    if parts.scheme != 'http' or not parts.hostname:
        raise BackendError('Cannot use the %s proxy %s: only http:// proxies are supported'
                           % (scheme, scmurl.redact(proxy)))
    auth = None
    if parts.username is not None:
        auth = 'Basic ' + base64.b64encode(('%s:%s' % (
            unquote(parts.username), unquote(parts.password or ''))).encode()).decode()
    return parts.hostname, parts.port or 80, auth


def _via_proxy(proxy, parts, host, port, target, timeout, watch, context, headers):
    """(connection, request target) for a fetch through `proxy`. The proxy itself is
    the site's: its address is not checked; for names this host cannot resolve, the
    proxy's own policy decides what it reaches (docs/security.md)."""
    proxy_host, proxy_port, auth = proxy
    proxy_address = socket.getaddrinfo(proxy_host, proxy_port,
                                       type=socket.SOCK_STREAM)[0][4][0]
    if parts.scheme == 'https':
        conn = _PinnedHTTPS(proxy_host, proxy_port, proxy_address, timeout, watch,
                            context or ssl.create_default_context())
        conn.set_tunnel(host, port, headers={'Proxy-Authorization': auth} if auth else None)
        return conn, target
    conn = _PinnedHTTP(proxy_host, proxy_port, proxy_address, timeout, watch)
    if auth:
        headers['Proxy-Authorization'] = auth
    netloc = host if ':' not in host else '[%s]' % host
    return conn, 'http://%s:%d%s' % (netloc, port, target)


def _read_bounded(resp, limit, safe, watch):
    """The body, at most `limit` bytes; a body cut short by the deadline (the watchdog
    shuts the socket, which reads as an early end) is an error, not a short file."""
    chunks = []
    total = 0
    while True:
        chunk = resp.read(65536)
        if watch.expired:
            raise BackendError('deadline')
        if not chunk:
            return b''.join(chunks)
        total += len(chunk)
        if total > limit:
            raise BackendError('Yum repo file %s is larger than %d bytes' % (safe, limit))
        chunks.append(chunk)


def fetch_repo_file(url, path, timeout, allowed=(), context=None):
    """Fetch a .repo file, check that it is one, and write it as `path` (in a directory
    of ours)."""
    from koji_containerbuild import safe_files
    data = fetch(url, timeout, allowed, context=context)
    parse_repo_config(data, 'Yum repo file %s' % scmurl.redact(url))
    return safe_files.write_new(path, data)
