"""The plugin's own HTTP with the OSBS API: reachability, bounded calls, credentials.

osbs-client retries a failed request 8 times with a backoff factor of 4 (contract §8) and
nothing in its configuration changes that, so an unreachable API holds a call for about
8 minutes without a word. Before it talks to OSBS the plugin checks the API is reachable
itself (a TCP connection to its host and port), retrying with a logged backoff for at
most `retry_timeout`; status polls run with a deadline (`call_bounded`).

Our own requests (the PipelineRun listing, run lookup) carry osbs-client's bearer token:
it is sent only to the configured API origin (scheme, host, port), never after a redirect
to another origin or from https to http.
"""

import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from koji_containerbuild import scmurl
from koji_containerbuild.errors import BackendError

PROBE_TIMEOUT = 10.0
FIRST_DELAY = 1.0
MAX_DELAY = 30.0
DEFAULT_PORTS = {'http': 80, 'https': 443}


class ApiTimeout(TimeoutError):
    """An osbs-client call did not answer in time (its own retries still run)."""


def api_address(url):
    """(scheme, host, port) of an http(s) API URL, or None for anything else (the test
    double's file:// cluster has no network)."""
    try:
        parts = urllib.parse.urlsplit(url or '')
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def probe_api(url, retry_timeout, note, connect=socket.create_connection,
              sleep=time.sleep):
    """Return once the API's host accepts a TCP connection; each failure goes to
    note(text) with the attempt and the next delay; BackendError after retry_timeout."""
    address = api_address(url)
    if address is None:
        return 0
    shown = scmurl.redact(str(url))
    start = time.monotonic()
    delay = FIRST_DELAY
    attempt = 0
    while True:
        attempt += 1
        left = retry_timeout - (time.monotonic() - start)
        try:
            sock = connect((address[1], address[2]),
                           timeout=max(0.5, min(PROBE_TIMEOUT, left)))
            sock.close()
            if attempt > 1:
                note('OSBS API %s is reachable again (attempt %d)' % (shown, attempt))
            return attempt
        except OSError as exc:
            error = '%s: %s' % (type(exc).__name__, exc)
        left = retry_timeout - (time.monotonic() - start)
        if left <= 0:
            raise BackendError('OSBS API %s is unreachable (%s); gave up after %d attempts '
                               'in %.0f s (retry_timeout)' % (shown, error, attempt,
                                                              time.monotonic() - start))
        wait = min(delay, left)
        note('OSBS API %s is unreachable (attempt %d: %s); next try in %.1f s, giving up '
             'in %.0f s' % (shown, attempt, error, wait, left))
        sleep(wait)
        delay = min(delay * 2, MAX_DELAY)


def call_bounded(func, timeout, what):
    """func() in a helper thread; ApiTimeout if it has not answered within `timeout`
    seconds (the thread is left to finish on its own). Signals still reach the caller."""
    box = {}
    done = threading.Event()

    def _run():
        try:
            box['value'] = func()
        except BaseException as exc:  # handed to the caller
            box['error'] = exc
        finally:
            done.set()

    thread = threading.Thread(target=_run, name='osbs-call')
    thread.daemon = True
    thread.start()
    if not done.wait(max(timeout, 0.01)):
        raise ApiTimeout('%s: no answer within %.0f s' % (what, timeout))
    if 'error' in box:
        raise box['error']
    return box.get('value')


class _ApiRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only within the API's origin, and send the token only there.
    The token travels as an unredirected header: urllib copies ordinary headers to
    whatever a redirect names."""

    max_redirections = 5

    def __init__(self, origin, token):
        urllib.request.HTTPRedirectHandler.__init__(self)
        self.origin = origin
        self.token = token

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if api_address(newurl) != self.origin:
            raise urllib.error.HTTPError(
                req.full_url, code, 'refusing a redirect from the OSBS API to %s (another '
                'origin or a downgrade to http): the token is only sent to %s://%s:%d'
                % ((scmurl.redact(newurl)[:300],) + self.origin), headers, fp)
        new = urllib.request.HTTPRedirectHandler.redirect_request(
            self, req, fp, code, msg, headers, newurl)
        if new is not None and self.token:
            new.add_unredirected_header('Authorization', 'Bearer %s' % self.token)
        return new


def open_api(url, token, context=None, timeout=30.0):
    """GET `url` of the OSBS API with the bearer `token` (osbs-client's); redirects only
    within the API's origin. Returns the urllib response (a context manager)."""
    request = urllib.request.Request(url, headers={'Accept': 'application/json'})
    origin = api_address(url)
    if token and origin is not None:
        request.add_unredirected_header('Authorization', 'Bearer %s' % token)
    handlers = [_ApiRedirects(origin, token if origin is not None else None)]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers).open(request, timeout=timeout)
