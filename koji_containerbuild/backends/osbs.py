"""The OSBS backend: build through osbs-client (OSBS 2, Tekton PipelineRuns).

Modules: osbs_client (osbs-client itself: client, create arguments, results), osbs_run
(following a run), osbs_outcome (a run's end: results, outcome recorded, run removed),
osbs_reconcile (log lines the stream missed), osbs_cancel (a cancel inside kojid's kill
sequence), osbs_http (our own HTTP: reachability, the token), osbs_capture (osbs-client's
output into the task log), run_record (the record on the hub).

Flow of one task (details and failure windows in docs/osbs.md):

1. Read the task's run record on the hub (run_record.py). A previous attempt of this
   task (kojid restart: same task id, maybe another builder) that created a run makes
   this attempt reattach to it instead of starting a second build.
2. Otherwise build the plan (plan.prepare_*), record "creating", create the run with every
   argument osbs-client expects, and record its name at once, before following it.
3. Follow it (osbs_run.RunWatch): logs relayed live, status polled, lost task noticed.
4. Finish: result / failure / cancellation, recorded on the hub, then remove the run.

kojid's cancellation arrives as KeyboardInterrupt (SIGINT) or SystemExit (SIGTERM): the
run is cancelled and removed once its finally tasks have ended, or left to the cluster's
pruning when kojid's SIGKILL would come first (osbs_cancel); the exception goes on. An orphaned
process (kojid died) that finds its task gone stops without touching the run.
"""

import logging
import os
import threading
import time

from koji_containerbuild import ownership
from koji_containerbuild.backends import (osbs_cancel, osbs_capture, osbs_http, osbs_outcome,
                                          osbs_run)
from koji_containerbuild.backends.osbs_client import (
    NOT_INSTALLED, OsbsModules, _text, binary_create_args, create_run, load_osbs, make_client,
    source_create_args, success_result)
from koji_containerbuild.backends.retry import TaskLost, is_transient_osbs, retry
from koji_containerbuild.backends.run_record import RunRecord
from koji_containerbuild.errors import BackendError, BuildCanceled
from koji_containerbuild.logs import LogRelay, hub_output_sizes
from koji_containerbuild.osbs_logs import OsbsLogRouter

# osbs_client's names stay importable from here.
__all__ = ['NOTES_LOG', 'NOT_INSTALLED', 'OsbsModules', 'OsbsTask', 'binary_create_args',
           'create_run', 'load_osbs', 'make_client', 'run_binary', 'run_source',
           'source_create_args', 'success_result']

# What the plugin (and osbs-client) say about this task, apart from the pipeline's own
# logs: appended across attempts, never replayed (see docs/osbs.md "Task logs").
NOTES_LOG = 'containerbuild.log'


# ------------------------------------------------------------------ the task

class OsbsTask(osbs_outcome.OutcomeSteps):
    """One buildContainer/buildSourceContainer task run through OSBS (its end: the
    OutcomeSteps mixin, osbs_outcome.py)."""

    def __init__(self, handler, config, kind, make_plan, mods=None):
        self.handler = handler
        self.config = config
        self.kind = kind  # 'binary' (binary and flatpak) or 'source'
        self.make_plan = make_plan
        self.mods = mods
        self.logger = handler.logger
        self.session = handler.session
        self.task_id = handler.id
        self.upload_path = handler.getUploadDir()
        self.record = RunRecord(self.session, self.task_id, self.upload_path,
                                config.retry_timeout, self.logger)
        self.client = None
        self.name = None
        self.relay = None
        self._api_error = None
        self._finished = False
        self._cancel_started = False
        # the task process's fence (kojid's pid read in the task process): a changed
        # parent means kojid died and this process is an orphan
        self.fence = ownership.of_handler(handler)

    def _osbs(self, func, what):
        return retry(func, lambda e: is_transient_osbs(e, self.mods.exceptions),
                     self.config.retry_timeout, what, self.logger)

    def run(self):
        self.mods = self.mods or load_osbs()
        with osbs_capture.osbs_records_to_task(self._task_line, self.logger):
            return self._run()

    def _task_line(self, text):
        """A line for the task's notes log only."""
        if self.relay is not None:
            try:
                self.relay.write(NOTES_LOG, text)
            except BackendError:
                pass

    def _run(self):
        previous = self.record.load()
        try:
            if previous and previous.get('state') == 'finished':
                return self._report_previous(previous)
            self._open_relay()
            if previous and previous.get('state') == 'running' and previous.get('name'):
                self._connect(previous.get('section') or self.config.osbs_section(self.kind))
                self.name = previous['name']
                self.note('Reattaching to OSBS pipeline run %s' % self.name)
                return self._follow(previous.get('arches') or [],
                                    bool(previous.get('scratch')), reattach=True)
            if previous and previous.get('state') == 'creating' and self._find_created(previous):
                self.note('Reattaching to OSBS pipeline run %s, created by a previous '
                          'attempt of task %s' % (self.name, self.task_id))
                return self._follow(previous.get('arches') or [],
                                    bool(previous.get('scratch')), reattach=True)
            return self._start(previous)
        except (KeyboardInterrupt, SystemExit) as exc:
            if self.name and not isinstance(exc, TaskLost):
                self.cancel_on_signal(exc)
            raise
        finally:
            if self.relay is not None:
                self.relay.close(raise_error=False)

    # ------------------------------------------------------------ task logs
    def _open_relay(self):
        """The task's LogRelay. The pipeline's logs on the hub are only ever a previous
        attempt's replay of the same run (an attempt writes them only once its run is
        recorded), so their hub prefix is skipped; the notes log is appended to."""
        if self.relay is None:
            self.relay = LogRelay(self.session, self.upload_path, self.handler.workdir,
                                  flush_interval=self.config.log_flush_interval,
                                  retry_timeout=self.config.retry_timeout,
                                  logger=self.logger, resume_offsets=self._hub_output_sizes(),
                                  append=(NOTES_LOG,))
        return self.relay

    def note(self, text, level=None):
        """A line in the task's notes log (and kojid's log)."""
        self.logger.log(level or logging.INFO, '%s', text)
        if self.relay is None:
            return
        try:
            self.relay.write(NOTES_LOG, '%s %s' % (
                time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime()), text))
        except BackendError:
            pass  # relay closed: kojid's log has it

    def _connect(self, section):
        self.section = section
        self.client, self.conf, self.limits = make_client(self.mods, self.config, section)
        self._reach_api()

    def _reach_api(self):
        """The API answers (retries logged in the task log, bounded by retry_timeout)
        before osbs-client's silent retries could hold the task for minutes."""
        if self._api_error is None:
            try:
                osbs_http.probe_api(self.conf.get_openshift_base_uri(),
                                    self.config.retry_timeout,
                                    lambda text: self.note(text, logging.WARNING))
            except BackendError as exc:
                self._api_error = str(exc)
        if self._api_error is not None:
            raise BackendError(self._api_error)

    def _check_parent(self, what):
        """TaskLost when kojid is gone: a re-run owns the task from now on."""
        self.fence.check(what, hub=False)

    def _find_created(self, previous):
        """A previous attempt recorded "creating" and died: look for the run it may have
        created (by koji_task_id in the runs' user params). Any trouble: build anew."""
        try:
            self._connect(previous.get('section') or self.config.osbs_section(self.kind))
            name = osbs_run.find_run_of_task(self.conf, self.task_id, self.logger)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            self.logger.warning('Cannot look for a pipeline run of task %s created by a '
                                'previous attempt (%s); building anew', self.task_id,
                                _text(exc, 500))
            return None
        if not name:
            return None
        self.name = name
        try:
            self.record.save(state='running', name=name)
        except TaskLost:
            raise
        except Exception as exc:
            self.logger.warning('Cannot record pipeline run %s: %s', name, exc)
        return name

    def _start(self, previous):
        self._connect(self.config.osbs_section(self.kind))
        plan = self.make_plan()
        if self.kind == 'source':
            args = source_create_args(plan, self.task_id)
            arches = []
        else:
            args = binary_create_args(plan, self.task_id, self.limits)
            arches = list(plan.arches)
        attempts = int((previous or {}).get('attempts') or 0) + 1
        if previous:
            self.logger.warning('A previous attempt of task %s was interrupted while creating '
                                'its OSBS pipeline run and no run of the task was found; '
                                'building anew (see docs/osbs.md)', self.task_id)
        self._check_parent('recording its OSBS pipeline run')
        self.record.save(state='creating', kind=self.kind, section=self.section,
                         namespace=_text(self.conf.get_namespace(), 253),
                         scratch=bool(plan.scratch), arches=arches, attempts=attempts,
                         created=time.time())
        self._check_parent('creating its OSBS pipeline run')
        self.name = self._create(args)
        try:
            self.record.save(state='running', name=self.name)
        except TaskLost:
            if self._task_cancelled():
                # cancelled while the run was being created: it is ours to clean up
                self.cancel_run(wait_finally=False)
                raise BuildCanceled('Task %s was cancelled; cancelled OSBS pipeline run %s'
                                    % (self.task_id, self.name))
            raise  # freed: the re-run finds the run by its koji_task_id
        except Exception as exc:
            # nobody could find this run again: do not leave it behind
            self.logger.error('Cannot record pipeline run %s (%s); cancelling it',
                              self.name, exc)
            self.cancel_run(wait_finally=False)
            raise BackendError('Cannot record OSBS pipeline run %s on the hub: %s'
                               % (self.name, _text(exc, 500)))
        self.logger.info('Started OSBS pipeline run %s for task %s', self.name, self.task_id)
        return self._follow(arches, bool(plan.scratch), reattach=False)

    def _create(self, args):
        """create_run in a helper thread, so that kojid's SIGINT/SIGTERM arriving meanwhile
        still lets us learn the run's name (waiting up to cancel_timeout) and cancel it."""
        box = {}
        done = threading.Event()

        def _run():
            try:
                box['name'] = create_run(self.client, self.mods, self.kind, args, self.logger)
            except BaseException as exc:  # handed to the task thread
                box['error'] = exc
            finally:
                done.set()

        thread = threading.Thread(target=_run, name='osbs-create')
        thread.daemon = True
        try:
            # osbs-client's git clone writes to our stdout/stderr: into the task's log
            with osbs_capture.capture_fds(lambda line: self._task_line('osbs-client: ' + line)):
                thread.start()
                while not done.wait(1.0):
                    pass
        except (KeyboardInterrupt, SystemExit):
            deadline = osbs_cancel.KillDeadline(self.config.cancel_timeout)
            osbs_cancel.wait_holding_signals(done, deadline)
            if box.get('name'):
                # just created: nothing ran yet, and no record names it: remove at once
                self.name = box['name']
                self.cancel_run(deadline, wait_finally=False)
            else:
                self.logger.warning('Interrupted while creating the OSBS pipeline run; no '
                                    'run name within %.1f s', self.config.cancel_timeout)
            raise
        if 'error' in box:
            raise box['error']
        return box['name']

    def _follow(self, arches, scratch, reattach):
        """Follow the run to its end. Whatever goes wrong on the way (OSBS, hub, local
        trouble) ends as a BackendError naming the run, with the outcome recorded and the
        run removed; only signals, a lost task and a cancel pass through as they are."""
        self._finished = False
        relay = self._open_relay()
        watch = router = None
        try:
            koji_work = os.path.join(self.handler.options.topdir, 'work')
            router = OsbsLogRouter(relay, koji_work_dir=koji_work, platforms=arches,
                                   logger=self.logger, scratch=scratch)
            watch = osbs_run.RunWatch(self.client, self.mods.exceptions, self.name, router,
                                      relay, self.session, self.task_id, self.config,
                                      self.logger, fence=self.fence,
                                      note=lambda text: self.note(text, logging.WARNING))
            try:
                state, data = watch.run()
            except BuildCanceled:
                # cancelled on the Koji side while kojid could not tell us (its signals
                # follow within its poll interval): the same clean cancel
                self.cancel_run()
                raise
            watch._thread.join(0.5)
            return self._conclude(state, data, router, relay, scratch, watch)
        except (KeyboardInterrupt, SystemExit, BuildCanceled):
            raise  # TaskLost is a SystemExit: the run belongs to the re-run
        except Exception as exc:
            if isinstance(exc, BackendError):
                error = str(exc)
            else:
                error = 'Following OSBS pipeline run %s failed: %s: %s' % (
                    self.name, type(exc).__name__, _text(exc, 2000))
            if self.name not in error:
                error = '%s (pipeline run %s)' % (error, self.name)
            if watch is not None and not watch.frozen():
                # the run is removed next: say what the logs lack, recover what can be
                try:
                    self._reconcile(watch, router)
                except Exception as rec_exc:
                    self.note('Reconciling the logs of %s failed: %s'
                              % (self.name, _text(rec_exc, 500)), logging.WARNING)
            if not self._finished:
                self._finish('deleted' if 'was deleted before' in error else 'failed',
                             error=error)
            if isinstance(exc, BackendError) and str(exc) == error:
                raise
            raise BackendError(error)

    def _hub_output_sizes(self):
        """What a previous attempt already uploaded; retried like every hub call."""
        return self.record._hub(lambda: hub_output_sizes(self.session, self.task_id),
                                'listing the output of task %s' % self.task_id)

    def cancel_on_signal(self, exc):
        """kojid is killing this task (the user cancelled it): cancel the run and remove it
        once its finally tasks have ended, before kojid's SIGKILL (osbs_cancel)."""
        self.cancel_run(osbs_cancel.KillDeadline(self.config.cancel_timeout, exc))

    def cancel_run(self, deadline=None, wait_finally=True):
        """Cancel the run; remove it after its final condition (wait_finally) or at once
        (a run nobody else could find again). By `deadline` (a KillDeadline, default
        cancel_timeout from now); failures are logged: the task ends anyway."""
        name, client = self.name, self.client
        if not name or client is None or self._cancel_started:
            return None
        self._cancel_started = True
        if deadline is None:
            deadline = osbs_cancel.KillDeadline(self.config.cancel_timeout)
        return osbs_cancel.cancel_run(client, name, deadline, self.logger,
                                      wait_finally=wait_finally)


def run_binary(handler, config, make_plan, mods=None):
    """buildContainer (binary and flatpak) through OSBS; make_plan() -> plan.BuildPlan."""
    return OsbsTask(handler, config, 'binary', make_plan, mods).run()


def run_source(handler, config, make_plan, mods=None):
    """buildSourceContainer through OSBS; make_plan() -> plan.SourcePlan."""
    return OsbsTask(handler, config, 'source', make_plan, mods).run()

