"""procs.kill_group: the child and everything it spawned are gone."""

import subprocess
import time

from koji_containerbuild.procs import kill_group


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
