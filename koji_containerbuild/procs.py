"""Waiting for and killing child processes started with start_new_session=True.

buildah and git both spawn helpers of their own; on a timeout or a cancellation
(kojid raises SystemExit/KeyboardInterrupt in the task) the whole group must go, not
only the direct child.
"""

import os
import select
import signal
import subprocess


def wait_exit(proc, timeout):
    """proc.wait(timeout) that returns as soon as `proc` exits.

    Popen.wait with a timeout polls with sleeps growing to 50 ms, so a git or buildah
    call that ends after 65 ms is noticed after about 110 ms; a build runs a dozen such
    calls. A pidfd (Linux 5.3+) becomes readable the moment the process exits.
    Raises subprocess.TimeoutExpired like Popen.wait; a signal handler's exception
    (kojid's cancellation) propagates from the poll.
    """
    if timeout is None or proc.returncode is not None:
        return proc.wait(timeout=timeout)
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):      # an older kernel: Popen's polling
        return proc.wait(timeout=timeout)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(max(timeout, 0) * 1000):
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(fd)
    return proc.wait()


def kill_group(proc, wait=30):
    """SIGKILL `proc`'s process group, then reap `proc` (waiting at most `wait` s)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        wait_exit(proc, wait)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process stuck in D state
        pass
