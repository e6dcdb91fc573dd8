"""procs.kill_group: the child and everything it spawned are gone; procs.wait_exit waits
for an exit (or times out) like Popen.wait."""

import signal
import subprocess
import time

import pytest

from koji_containerbuild.procs import kill_group, wait_exit


def _gone(pid):
    """True once `pid` no longer runs (a zombie awaiting its reaper counts as gone)."""
    for _ in range(200):
        try:
            with open('/proc/%d/stat' % pid) as f:
                if f.read().rsplit(')', 1)[1].split()[0] == 'Z':
                    return True
        except (FileNotFoundError, ProcessLookupError):
            return True
        time.sleep(0.05)
    return False


def test_kill_group_kills_grandchildren():
    proc = subprocess.Popen(['sh', '-c', 'sleep 300 & echo $!; wait'], stdout=subprocess.PIPE,
                            start_new_session=True)
    grandchild = int(proc.stdout.readline())
    kill_group(proc)
    proc.stdout.close()
    assert proc.returncode == -9
    assert _gone(grandchild)


def test_kill_group_of_finished_process():
    proc = subprocess.Popen(['true'], start_new_session=True)
    proc.wait()
    kill_group(proc)        # nothing left to kill: no error
    assert proc.returncode == 0


def test_wait_exit_returns_the_exit_status():
    proc = subprocess.Popen(['sh', '-c', 'sleep 0.05; exit 3'])
    assert wait_exit(proc, 30) == 3
    assert proc.returncode == 3
    assert wait_exit(proc, 30) == 3          # already reaped: the same status


def test_wait_exit_times_out_and_leaves_the_process_running():
    proc = subprocess.Popen(['sleep', '30'], start_new_session=True)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            wait_exit(proc, 0.1)
        assert proc.poll() is None
    finally:
        kill_group(proc)
    assert proc.returncode == -signal.SIGKILL


def test_wait_exit_without_timeout_blocks_until_exit():
    proc = subprocess.Popen(['true'])
    assert wait_exit(proc, None) == 0
