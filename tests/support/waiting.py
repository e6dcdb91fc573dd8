"""Polling for a condition in tests that drive real processes."""

import time


def wait_for(cond, what='condition', timeout=120.0):
    """cond()'s first truthy value, polled every 50 ms; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for %s' % what)
        time.sleep(0.05)
