"""Does this process still own its Koji task?

kojid forks one process per task. When kojid dies (SIGKILL, OOM) its task processes go
on with a working subsession, and after a restart the same task id runs again, maybe on
this very host: the hub cannot tell the two processes apart. Only the process can: its
parent was kojid when the task started, and an orphan's parent is someone else (init or
a subreaper). A cancel is seen on the hub (the task is no longer OPEN).

Check right before anything the outside world sees (push, tag, import, refund, subtask):
an orphan or a cancelled task must stop without acting.
"""

import os

import koji

from koji_containerbuild.backends.retry import TaskLost


class TaskCanceled(TaskLost):
    """The task is no longer OPEN on the hub (cancelled, or failed by someone else).
    A SystemExit like TaskLost: kojid is about to signal this process anyway."""


class TaskOwnership(object):
    """Fence for one task process. `parent_pid` must be read in the task process (kojid
    builds handlers in its own process and forks afterwards)."""

    def __init__(self, task_id, session, parent_pid=None):
        self.task_id = task_id
        self.session = session
        self.parent_pid = os.getppid() if parent_pid is None else parent_pid

    def orphaned(self):
        return os.getppid() != self.parent_pid

    def check(self, what, hub=True):
        """Raise TaskLost/TaskCanceled unless this process may do `what` now.

        hub=False checks only the process tree (no hub call), for tight loops.
        """
        if self.orphaned():
            raise TaskLost('kojid (pid %s) is gone; task %s stops before %s'
                           % (self.parent_pid, self.task_id, what))
        if not hub:
            return
        info = self.session.getTaskInfo(self.task_id)
        state = info.get('state') if info else None
        if state != koji.TASK_STATES['OPEN']:
            name = koji.TASK_STATES.get(state, 'missing') if state is not None else 'missing'
            raise TaskCanceled('task %s is %s; stopping before %s' % (self.task_id, name, what))


def of_handler(handler):
    """The handler's TaskOwnership (set up by the builder plugin in the task process);
    a fresh one, read now, for handlers made elsewhere (tests, the local command)."""
    fence = getattr(handler, 'ownership', None)
    if fence is None:
        fence = TaskOwnership(handler.id, handler.session,
                              getattr(handler, 'parent_pid', None))
        try:
            handler.ownership = fence
        except AttributeError:
            pass
    return fence
