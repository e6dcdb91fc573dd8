"""Process-group kill for child processes started with start_new_session=True.

buildah and git both spawn helpers of their own; on a timeout or a cancellation
(kojid raises SystemExit/KeyboardInterrupt in the task) the whole group must go, not
only the direct child.
"""

import os
import signal
import subprocess


def kill_group(proc, wait=30):
    """SIGKILL `proc`'s process group, then reap `proc` (waiting at most `wait` s)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process stuck in D state
        pass
