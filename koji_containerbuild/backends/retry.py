"""Bounded retries with backoff for transient OSBS, network and hub errors."""

import errno
import socket
import time

import koji

# HTTP answers worth another try (OpenShift/Tekton hiccups, proxies, rate limits).
TRANSIENT_HTTP = frozenset((408, 425, 429, 500, 502, 503, 504))


class TaskLost(SystemExit):
    """This process no longer owns its Koji task (kojid died and the task was freed or
    handed to another builder). A SystemExit so kojid's runTask neither closes nor
    fails the task; the re-run owns the OSBS run now."""


def _status_code(exc):
    code = getattr(exc, 'status_code', None)
    try:
        return int(code)
    except (TypeError, ValueError):
        return None


def is_transient_osbs(exc, osbs_exceptions):
    """True for errors a later attempt may not see (network trouble, 5xx, timeouts)."""
    if isinstance(exc, (osbs_exceptions.OsbsValidationException,
                        osbs_exceptions.OsbsAuthException)):
        return False
    if isinstance(exc, osbs_exceptions.OsbsNetworkException):
        code = _status_code(exc)
        return code is None or code in TRANSIENT_HTTP or code >= 500
    if isinstance(exc, osbs_exceptions.OsbsResponseException):
        code = _status_code(exc)
        return code in TRANSIENT_HTTP
    if isinstance(exc, osbs_exceptions.OsbsException):
        cause = getattr(exc, 'cause', None)
        return cause is not None and _is_network_error(cause)
    return _is_network_error(exc)


def _is_network_error(exc):
    if isinstance(exc, (ConnectionError, socket.timeout, TimeoutError)):
        return True
    name = type(exc).__name__
    # requests/urllib3 errors without importing them
    if name in ('ConnectionError', 'ReadTimeout', 'ConnectTimeout', 'Timeout',
                'ChunkedEncodingError', 'ProtocolError', 'IncompleteRead',
                'RemoteDisconnected', 'SSLError'):
        return True
    return isinstance(exc, OSError) and exc.errno in (
        errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT, errno.EHOSTUNREACH,
        errno.ENETUNREACH, errno.EPIPE)


def is_transient_hub(exc):
    """Hub call errors worth retrying; koji faults (ActionNotAllowed...) are answers."""
    if isinstance(exc, (koji.RetryError, koji.ServerOffline)):
        return True
    if isinstance(exc, koji.GenericError):
        return False
    return _is_network_error(exc)


class Backoff(object):
    """Sleeps 0.2 s, 0.4 s, ... up to `cap`, until `timeout` seconds have passed."""

    def __init__(self, timeout, first=0.2, cap=10.0, sleep=time.sleep):
        self.deadline = time.monotonic() + timeout
        self.delay = first
        self.cap = cap
        self._sleep = sleep

    def expired(self):
        return time.monotonic() >= self.deadline

    def wait(self):
        """Sleep before the next try; False when the time is up."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            return False
        self._sleep(min(self.delay, left))
        self.delay = min(self.delay * 2, self.cap)
        return True


def retry(func, is_transient, timeout, what, logger=None):
    """Call func() until it works, a non-transient error is raised, or `timeout` passes."""
    backoff = Backoff(timeout)
    while True:
        try:
            return func()
        except Exception as exc:
            if not is_transient(exc) or not backoff.wait():
                raise
            if logger:
                logger.warning('%s failed (%s: %s); retrying', what, type(exc).__name__, exc)
