"""Native backend: the parent's subtasks (label reuse on re-runs, waiting, cancelling).

Waiting follows BaseTaskHandler.wait(ids, all=True, failany=True): one taskSetWait, so
the parent stays "waiting" on the hub (its weight leaves the host's load, and the hub
alerts kojid, which sends SIGUSR2, when an awaited child ends); taskWait between sleeps;
each finished child's result checked with getTaskResult (a failure cancels the rest and
is raised); taskWaitResults once, at the end (it clears the waiting flag).

Cancelling touches only the children this task started (a re-run or an orphan of the
same task id must not stop another run's work) and only after the ownership fence.
"""

import signal
import time
import xmlrpc.client

import koji

from koji_containerbuild import ownership
from koji_containerbuild.backends.native_common import FINISHED, json_norm, short
from koji_containerbuild.errors import BackendError

MAX_RUNS = 20                 # labels probed per arch when a re-run finds old children


class Children(object):
    """Subtasks of one parent: label reuse on re-runs, waiting, sibling cancellation."""

    def __init__(self, handler, poll_interval):
        self.handler = handler
        self.session = handler.session
        self.poll_interval = poll_interval
        self.fence = ownership.of_handler(handler)

    def cancel_leftovers(self):
        """A re-run (kojid restart) finds the old run's children: stop any still active."""
        active = [c['id'] for c in self._children() if c['state'] not in FINISHED]
        if active:
            self.handler.logger.info('cancelling subtasks %s left by an earlier run', active)
            self._cancel(active)

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
            self.fence.check('creating the %s subtask %s' % (method, run_label))
            task_id = self.handler.subtask(method, args, label=run_label, **opts)
            info = self.session.getTaskInfo(task_id, request=True)
            if info and json_norm(info.get('request')) == want:
                return task_id
            self.handler.logger.info('label %s belongs to task %s of an earlier run',
                                     run_label, task_id)
        raise BackendError('Too many earlier runs of task %s: no free subtask label for %s'
                           % (self.handler.id, label))

    def wait(self, names):
        """Wait for all of `names` ({task_id: name}); return {task_id: result}.

        The first failed or canceled child cancels the others and raises its error.
        Between polls the task sleeps until kojid's SIGUSR2 (an awaited child ended) or
        the poll interval, so a lost signal only delays it.
        """
        ids = sorted(names)
        host = self.session.host
        host.taskSetWait(self.handler.id, ids)
        checked = set()
        while True:
            # An orphan (kojid died) stops waiting at once: whatever its children do,
            # it may not act on it, and the re-run of this task takes them over.
            self.fence.check('waiting for its subtasks', hub=False)
            finished, unfinished = host.taskWait(self.handler.id)
            for task_id in finished:
                if task_id in names and task_id not in checked:
                    self._check_result(task_id, names, set(ids) - checked)
                    checked.add(task_id)
            if not [t for t in unfinished if t in names]:
                missing = [t for t in ids if t not in checked]
                if not missing:
                    break
                # ours, but neither finished nor awaited (the awaited flag was cleared
                # elsewhere): look at them directly
                self._check_unawaited(missing, names, set(ids) - checked)
                continue
            self._sleep()
        try:
            return dict(host.taskWaitResults(self.handler.id, ids))
        except (koji.GenericError, xmlrpc.client.Fault) as exc:
            # a child that changed after its check (e.g. cancelled by its owner)
            raise BackendError('subtasks of task %s: %s' % (self.handler.id, short(exc)))

    def _check_result(self, task_id, names, unchecked):
        try:
            self.session.getTaskResult(task_id)
        except (koji.GenericError, xmlrpc.client.Fault) as exc:
            # A cancel of this task cancels its children first: then this is the cancel
            # (TaskCanceled), not a failed build.
            self.fence.check('handling the failure of %s' % names[task_id])
            self.handler.logger.info('%s (task %s) failed or was canceled; cancelling the '
                                     'other subtasks', names[task_id], task_id)
            self._cancel(sorted(unchecked - set([task_id])))
            text = getattr(exc, 'faultString', None) or str(exc)
            raise BackendError('%s (task %s) failed: %s' % (names[task_id], task_id,
                                                            short(text)))

    def _check_unawaited(self, missing, names, unchecked):
        for task_id in missing:
            info = self.session.getTaskInfo(task_id)
            if info is None:
                raise BackendError('%s (task %s) vanished' % (names[task_id], task_id))
            if info['state'] in FINISHED:
                self._check_result(task_id, names, unchecked)
                unchecked.discard(task_id)
        pending = [t for t in missing if t in unchecked]
        if pending:
            self.session.host.taskSetWait(self.handler.id, pending)
            self._sleep()

    def _cancel(self, task_ids):
        """Cancel exactly `task_ids` (children of this task), after the fence.

        The hub lets a host cancel a task it runs or owns; a child queued or running on
        another host needs cancelTaskChildren (checked against the parent), used only
        when every active child of this task is one of `task_ids`.
        """
        if not task_ids:
            return
        self.fence.check('cancelling subtasks %s' % task_ids)
        refused = []
        for task_id in task_ids:
            try:
                self.session.cancelTask(task_id)
            except koji.ActionNotAllowed:
                refused.append(task_id)
            except koji.GenericError as exc:
                self.handler.logger.warning('could not cancel subtask %s: %s', task_id, exc)
        if not refused:
            return
        active = set(c['id'] for c in self._children() if c['state'] not in FINISHED)
        if active <= set(task_ids):
            try:
                self.session.cancelTaskChildren(self.handler.id)
                return
            except koji.GenericError as exc:
                self.handler.logger.warning('could not cancel subtasks %s: %s', refused, exc)
                return
        self.handler.logger.warning('subtasks %s run elsewhere and this host may not cancel '
                                    'them alone; they are left to finish', refused)

    def _sleep(self):
        try:
            signal.sigtimedwait([signal.SIGUSR2], self.poll_interval)
        except (AttributeError, ValueError, OSError):  # pragma: no cover - other platforms
            time.sleep(self.poll_interval)
