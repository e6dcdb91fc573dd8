"""Where a createContainer task keeps its private buildah storage, and who removes it.

    <base>/task-<task id>/<pid>-<process start time>/buildah-<random suffix>/{root,runroot}

<base> is [native] storage_root, else `containerbuild-storage` next to kojid's task
work directories (never inside a task's work directory: kojid removes that directory
when the task runs again, and a busy overlay mount of an orphan made the removal fail).

One folder per process, not per task: after a kojid restart the same task id runs again
while the orphan of the earlier run may still be alive. The re-run gets a folder of its
own; nobody removes a folder whose process is alive; each process removes its own when
it ends (also on cancel, and as an orphan: after killing its buildah process group); a
folder left by a process that died without cleaning (SIGKILL) is removed by the next
task that sets up its storage under the same base.
"""

import os
import re
import shutil

import koji

from koji_containerbuild import buildah

DEFAULT_DIR = 'containerbuild-storage'
CACHE_DIR = 'image-cache'     # the parent image cache's default folder (native_cache)
_ATTEMPT_RE = re.compile(r'^(\d+)-(\d+)\Z')
_TASK_RE = re.compile(r'^task-\d+\Z')


def _start_time(pid):
    """The process start time (clock ticks since boot) of `pid`, or None if it is gone."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rsplit(')', 1)[-1].split()
    try:
        return int(fields[19])     # field 22 of proc(5); fields[0] is field 3
    except (IndexError, ValueError):
        return None


def attempt_name(pid=None):
    """This process's folder name: '<pid>-<start time>' (a reused pid differs in time)."""
    pid = os.getpid() if pid is None else pid
    return '%d-%d' % (pid, _start_time(pid) or 0)


def alive(name):
    """Whether the process that named a folder `name` (attempt_name) still runs."""
    match = _ATTEMPT_RE.match(name)
    if not match:
        return False
    pid, start = int(match.group(1)), int(match.group(2))
    return _start_time(pid) == start


def base_dir(storage_root, task_id, workdir):
    """The folder holding every task's storage folders (see the module docstring)."""
    if storage_root:
        return storage_root
    workdir = os.path.normpath(workdir)
    rel = koji.pathinfo.taskrelpath(task_id)
    if workdir.endswith('/' + rel):
        return os.path.join(workdir[:-len(rel) - 1], DEFAULT_DIR)
    return os.path.join(os.path.dirname(workdir), DEFAULT_DIR)


def attempt_dir(storage_root, task_id, workdir):
    return os.path.join(base_dir(storage_root, task_id, workdir), 'task-%d' % int(task_id),
                        attempt_name())


def destroy(parent):
    """Remove one storage folder: unmount what a killed build left, delete it; then the
    task folder above it if that is empty."""
    if os.path.isdir(parent):
        for name in os.listdir(parent):
            root = os.path.join(parent, name, 'root')
            buildah.Storage(root, owned=True).destroy()
        shutil.rmtree(parent, ignore_errors=True)
    try:
        os.rmdir(os.path.dirname(parent))
    except OSError:
        pass            # another attempt of the task is still there (or it is gone)


def sweep_dead(base):
    """Remove the folders of processes that died without cleaning up (SIGKILL)."""
    try:
        tasks = [t for t in os.listdir(base) if _TASK_RE.match(t)]
    except OSError:
        return []
    removed = []
    for task in tasks:
        try:
            attempts = os.listdir(os.path.join(base, task))
        except OSError:
            continue
        for name in attempts:
            if _ATTEMPT_RE.match(name) and not alive(name):
                destroy(os.path.join(base, task, name))
                removed.append(os.path.join(task, name))
    return removed
