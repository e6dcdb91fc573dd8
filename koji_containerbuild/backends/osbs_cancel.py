"""Cancel an OSBS pipeline run inside kojid's kill sequence, letting its finally tasks run.

kojid kills a cancelled task's process (koji.daemon.TaskManager.cleanupTask): one SIGINT
(KeyboardInterrupt), 3 s, SIGTERM (SystemExit) twice 1 s apart, then SIGKILL: about 5 s
from the SIGINT, 2 s from the first SIGTERM. osbs-client's `cancel_build` sets
`CancelledRunFinally`: Tekton stops the running tasks, then runs the pipeline's finally
tasks (`*-container-exit`, which cleans up and reports) before the run reaches its final
condition. Removing the run before that would kill them. So the run is removed only once
it has ended; when kojid's SIGKILL would come first, the run is left to the cluster's
pruning and the task says so (docs/osbs.md, "Cancellation").
"""

import threading
import time

from koji_containerbuild.backends import osbs_run

# kojid: SIGINT, 3 s, SIGTERM, 1 s, SIGTERM, 1 s, SIGKILL. Budgets end a little before
# the SIGKILL so that the last log lines are written.
AFTER_SIGINT_MAX = 4.6
AFTER_SIGTERM_MAX = 1.6
POLL = 0.2


class KillDeadline(object):
    """When this process must be done, given the signals kojid sent so far."""

    def __init__(self, budget, first_signal=None):
        self.budget = min(float(budget), AFTER_SIGINT_MAX)
        self.at = time.monotonic() + self.budget
        if first_signal is not None:
            self.signalled(first_signal)

    def signalled(self, exc):
        """A signal arrived (KeyboardInterrupt: SIGINT, SystemExit: SIGTERM)."""
        after = AFTER_SIGTERM_MAX if isinstance(exc, SystemExit) else AFTER_SIGINT_MAX
        self.at = min(self.at, time.monotonic() + min(self.budget, after))

    def left(self):
        return self.at - time.monotonic()


def wait_holding_signals(event, deadline):
    """Wait for `event` until the deadline (a KillDeadline or a time.monotonic() value);
    KeyboardInterrupt/SystemExit meanwhile are held back (kojid keeps signalling while we
    clean up) and shorten a KillDeadline. True if the event was set."""
    while not event.is_set():
        left = deadline.left() if isinstance(deadline, KillDeadline) else \
            deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            event.wait(left)
        except (KeyboardInterrupt, SystemExit) as exc:
            if isinstance(deadline, KillDeadline):
                deadline.signalled(exc)
            continue
    return True


def cancel_run(client, name, deadline, logger, wait_finally=True, poll=POLL):
    """cancel_build, then (wait_finally) wait for the run's final condition, then
    remove_build; all in a helper thread, the caller waiting until `deadline`.
    Returns 'removed', 'left' (still running its finally tasks at the deadline: left
    for the cluster's pruning) or 'failed'. Never raises."""
    done = threading.Event()
    give_up = threading.Event()
    box = {'outcome': 'failed'}

    def _work():
        try:
            try:
                client.cancel_build(name)
                logger.info('Cancelled OSBS pipeline run %s (CancelledRunFinally)', name)
            except Exception as exc:
                logger.warning('Cancelling pipeline run %s failed: %s', name, exc)
            if wait_finally:
                state = osbs_run.RUNNING
                while not give_up.is_set():
                    try:
                        state = osbs_run.classify(client.get_build(name))
                    except Exception as exc:
                        logger.warning('Status of cancelled pipeline run %s: %s', name, exc)
                    if state != osbs_run.RUNNING:
                        break
                    give_up.wait(poll)
                if state == osbs_run.RUNNING:
                    box['outcome'] = 'left'
                    return
                if state == osbs_run.DELETED:
                    box['outcome'] = 'removed'
                    return
                logger.info('Pipeline run %s ended (%s) after its finally tasks', name, state)
            if give_up.is_set():
                box['outcome'] = 'left'
                return
            try:
                client.remove_build(name)
                logger.info('Removed OSBS pipeline run %s', name)
                box['outcome'] = 'removed'
            except Exception as exc:
                logger.warning('Removing pipeline run %s failed: %s', name, exc)
        finally:
            done.set()

    thread = threading.Thread(target=_work, name='osbs-cancel')
    thread.daemon = True
    thread.start()
    if not wait_holding_signals(done, deadline):
        give_up.set()
        box['outcome'] = 'left'
    if box['outcome'] == 'left' and wait_finally:
        logger.warning('Pipeline run %s was cancelled but had not ended before kojid kills '
                       'this task (its finally tasks still run); it is left for the '
                       "cluster's pruning", name)
    elif box['outcome'] == 'left':
        logger.warning('Cancelling and removing pipeline run %s did not finish before kojid '
                       "kills this task; it is left for the cluster's pruning", name)
    return box['outcome']
