"""Per-process buildah storage folders: an orphan and the re-run of its task never share
or remove each other's folder; folders of dead processes are swept."""

import os
import subprocess
import sys

import koji

from koji_containerbuild.backends import native_storage


def _attempt(base, task_id, pid):
    path = os.path.join(base, 'task-%d' % task_id, native_storage.attempt_name(pid))
    os.makedirs(os.path.join(path, 'buildah-x', 'root'))
    return path


def test_rerun_and_orphan_folders_are_apart_and_only_the_dead_are_swept(tmp_path):
    base = str(tmp_path / 'sr')
    orphan = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    try:
        mine = native_storage.attempt_dir(base, 7, '/unused')
        os.makedirs(mine)
        theirs = _attempt(base, 7, orphan.pid)      # the orphan of an earlier run
        gone = _attempt(base, 8, dead.pid)          # SIGKILLed without cleaning up
        assert mine != theirs and os.path.dirname(mine) == os.path.dirname(theirs)
        assert native_storage.alive(os.path.basename(theirs))
        assert not native_storage.alive(os.path.basename(gone))
        assert native_storage.sweep_dead(base) == ['task-8/%s' % os.path.basename(gone)]
        assert os.path.isdir(theirs) and os.path.isdir(mine)
        assert not os.path.exists(os.path.dirname(gone))      # empty task folder removed
        native_storage.destroy(mine)                # the re-run ends: only its own goes
        assert os.path.isdir(theirs) and not os.path.exists(mine)
        native_storage.destroy(theirs)
        assert os.listdir(base) == []
    finally:
        orphan.kill()
        orphan.wait()


def test_default_storage_is_outside_the_task_work_directory(tmp_path):
    workdir = os.path.join(str(tmp_path), 'work', koji.pathinfo.taskrelpath(12345))
    path = native_storage.attempt_dir('', 12345, workdir)
    assert path.startswith(os.path.join(str(tmp_path), 'work', 'containerbuild-storage',
                                        'task-12345') + '/')
    assert not path.startswith(workdir + '/')
    assert native_storage.attempt_dir('/srv/s', 5, workdir).startswith('/srv/s/task-5/')
