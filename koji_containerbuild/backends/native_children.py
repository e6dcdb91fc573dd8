"""Native backend: the parent's subtasks (label reuse on re-runs, waiting, cancelling)."""

import signal
import time

import koji

from koji_containerbuild.backends.native_common import FINISHED, is_fault, json_norm, short
from koji_containerbuild.errors import BackendError

MAX_RUNS = 20                 # labels probed per arch when a re-run finds old children


class Children(object):
    """Subtasks of one parent: label reuse on re-runs, waiting, sibling cancellation."""

    def __init__(self, handler, poll_interval):
        self.handler = handler
        self.session = handler.session
        self.poll_interval = poll_interval

    def cancel_leftovers(self):
        """A re-run (kojid restart) finds the old run's children: stop any still active."""
        if any(c['state'] not in FINISHED for c in self._children()):
            self.handler.logger.info('cancelling subtasks left by an earlier run')
            self.session.cancelTaskChildren(self.handler.id)

    def _children(self):
        return self.session.getTaskChildren(self.handler.id) or []

    def start(self, method, args, label, **opts):
        """Create a subtask; a label used by an earlier run gets a run suffix.

        host.subtask returns the existing child for a known (parent, label) whatever its
        state, so a child counts as ours only if its request is exactly `args`.
        """
        want = json_norm(args)
        for run in range(1, MAX_RUNS + 1):
            run_label = label if run == 1 else '%s~%d' % (label, run)
            task_id = self.handler.subtask(method, args, label=run_label, **opts)
            info = self.session.getTaskInfo(task_id, request=True)
            if info and json_norm(info.get('request')) == want:
                return task_id
            self.handler.logger.info('label %s belongs to task %s of an earlier run',
                                     run_label, task_id)
        raise BackendError('Too many earlier runs of task %s: no free subtask label for %s'
                           % (self.handler.id, label))

    def wait(self, names):
        """Wait for `names` ({task_id: name}); return {task_id: result}.

        The first failed or canceled child cancels the others and raises its error.
        Between polls the task sleeps until kojid's SIGUSR2 (a subtask ended) or the poll
        interval, so the loop also works where no one sends the signal.
        """
        ids = sorted(names)
        host = self.session.host
        host.taskSetWait(self.handler.id, ids)
        results = {}
        while True:
            finished, unfinished = host.taskWait(self.handler.id)
            new = [t for t in finished if t in names and t not in results]
            if new:
                for task_id, result in host.taskWaitResults(self.handler.id, new, canfail=new):
                    if is_fault(result):
                        self._cancel_others(set(ids) - set(results) - set([task_id]))
                        raise BackendError('%s (task %s) failed: %s' % (
                            names[task_id], task_id, short(result['faultString'])))
                    results[task_id] = result
            if len(results) == len(ids):
                return results
            pending = [t for t in unfinished if t in names]
            if not pending and not new:
                # Nothing awaited and nothing new: ask for the states directly.
                self._check_lost(names, results)
            self._sleep()

    def _check_lost(self, names, results):
        for task_id in names:
            if task_id in results:
                continue
            info = self.session.getTaskInfo(task_id)
            if info is None:
                raise BackendError('%s (task %s) vanished' % (names[task_id], task_id))
            if info['state'] in FINISHED:
                self.session.host.taskSetWait(self.handler.id, [task_id])

    def _cancel_others(self, others):
        if not others:
            return
        self.handler.logger.info('cancelling subtasks %s', sorted(others))
        try:
            self.session.cancelTaskChildren(self.handler.id)
        except koji.GenericError as exc:
            self.handler.logger.warning('could not cancel subtasks: %s', exc)

    def _sleep(self):
        try:
            signal.sigtimedwait([signal.SIGUSR2], self.poll_interval)
        except (AttributeError, ValueError, OSError):  # pragma: no cover - other platforms
            time.sleep(self.poll_interval)
