"""examples/run.sh refuses clearly, before doing anything, when not run as root."""

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.skipif(shutil.which('setpriv') is None or os.geteuid() != 0,
                    reason='needs root and setpriv to become another user')
def test_run_sh_needs_root():
    with open(os.path.join(ROOT, 'examples', 'run.sh'), 'rb') as f:
        script = f.read()
    # the script comes on stdin: the test's folders are not readable by that user
    proc = subprocess.run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
                           'bash', '-s'], input=script, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60, cwd='/')
    assert proc.returncode == 1
    assert b'must run as root' in proc.stderr
    assert proc.stdout == b''
