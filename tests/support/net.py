"""Loopback helpers for tests that run real servers (git daemon, registry, hub).

Servers bind 127.0.0.1 on a port the kernel hands out, so tests stay safe under
pytest-xdist; the port is only reserved until the socket closes, so callers that can
lose the race (git daemon) retry with a new port.
"""

import socket
import time
import urllib.error
import urllib.request


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def wait_for_port(port, proc=None, timeout=10.0):
    """True once 127.0.0.1:port accepts connections; False if ``proc`` exits first or
    ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_for_http(url, proc=None, timeout=10.0):
    """True once ``url`` answers HTTP at all (any status); False as wait_for_port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.05)
    return False
