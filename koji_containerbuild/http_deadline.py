"""A total deadline for requests calls (the registry client's).

requests/urllib3 timeouts bound each socket operation only: a server that sends one
byte every few seconds never trips them. A call runs under `Deadline(label, what,
seconds)`; the connections it uses register their sockets with it (through the
connection classes of `session()`), and a timer shuts those sockets down when the
deadline passes, which ends any blocked read or write at once. Works through proxies
from the environment too.
"""

import socket
import threading
import time

import requests
import urllib3.connection
import urllib3.connectionpool

from koji_containerbuild.errors import BackendError

_local = threading.local()


class Deadline(object):
    """Context manager for one call; nested calls run under the outer deadline."""

    def __init__(self, label, what, seconds):
        self.label = label
        self.what = what
        self.seconds = seconds
        self.end = None
        self.expired = False
        self.sockets = []
        self.lock = threading.Lock()
        self.timer = None
        self.outer = None

    def __enter__(self):
        self.outer = getattr(_local, 'deadline', None)
        if self.outer is not None:
            return self
        _local.deadline = self
        self.end = time.monotonic() + self.seconds
        self.timer = threading.Timer(self.seconds, self._expire)
        self.timer.daemon = True
        self.timer.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.outer is not None:
            return False
        self.timer.cancel()
        _local.deadline = None
        if self.expired and exc_type is not None and not (
                issubclass(exc_type, BackendError) and 'deadline' in str(exc)):
            raise BackendError(self.message()) from None
        return False

    def message(self):
        return ('Registry %s: %s gave no complete answer within %g s (deadline)'
                % (self.label, self.what, self.seconds))

    def _expire(self):
        with self.lock:
            self.expired = True
            for sock in self.sockets:
                _shutdown(sock)

    def watch(self, sock):
        with self.lock:
            self.sockets.append(sock)
            expired = self.expired
        if expired:
            _shutdown(sock)


def _shutdown(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def raise_if_expired():
    """BackendError if the current call's deadline has passed."""
    current = getattr(_local, 'deadline', None)
    if current is not None and (current.expired or time.monotonic() > current.end):
        current.expired = True
        raise BackendError(current.message())


def _watch_current(sock):
    current = getattr(_local, 'deadline', None)
    if current is not None and sock is not None:
        current.watch(sock)


class _WatchedMixin(object):
    def _new_conn(self):
        sock = super()._new_conn()
        _watch_current(sock)     # before a TLS handshake can stall
        return sock

    def request(self, *args, **kwargs):
        _watch_current(getattr(self, 'sock', None))   # a reused connection
        return super().request(*args, **kwargs)


class _HTTPConnection(_WatchedMixin, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_WatchedMixin, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {'http': _HTTPPool, 'https': _HTTPSPool}


class _Adapter(requests.adapters.HTTPAdapter):
    """An adapter whose pools (direct or through an HTTP(S) proxy from the environment)
    use the watched connection classes."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if hasattr(manager, 'pool_classes_by_scheme'):
            manager.pool_classes_by_scheme = _POOLS
        return manager


def session():
    """A requests session whose connections obey the current Deadline."""
    result = requests.Session()
    # bodies are limited after decoding; asking for no compression keeps a small
    # compressed answer from standing for a large one in the first place
    result.headers['Accept-Encoding'] = 'identity'
    for prefix in ('http://', 'https://'):
        result.mount(prefix, _Adapter())
    return result
