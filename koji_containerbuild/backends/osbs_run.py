"""Follow one OSBS pipeline run to its end, in the task's process (no fork).

A log thread iterates osbs-client's `get_build_logs(name, follow=True)` stream into the
OsbsLogRouter; the calling thread polls the run's status every `poll_interval` seconds,
because the stream can end silently mid-build and, for a deleted run, only after minutes.
The calling thread stays free for kojid's signals (KeyboardInterrupt/SystemExit).
It also notices a lost task: kojid gone (our parent changed: we are an orphan) or the
task no longer OPEN on this host (freed and re-run elsewhere, or cancelled).
"""

import json
import ssl
import threading
import time
import urllib.parse
import urllib.request

import koji

from koji_containerbuild import ownership, scmurl
from koji_containerbuild.backends.osbs_http import ApiTimeout, call_bounded, open_api
from koji_containerbuild.backends.osbs_reconcile import StreamTally
from koji_containerbuild.backends.retry import (Backoff, TaskLost, is_transient_hub,
                                                is_transient_osbs)
from koji_containerbuild.errors import BackendError, BuildCanceled

RUNNING = 'running'
SUCCEEDED = 'succeeded'
FAILED = 'failed'
CANCELLED = 'cancelled'
DELETED = 'deleted'
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
# osbs-client knows only PipelineRunCancelled; Tekton (TEP-0058) ends runs cancelled with
# spec.status CancelledRunFinally/StoppedRunFinally with reason Cancelled.
CANCEL_REASONS = frozenset(('PipelineRunCancelled', 'Cancelled', 'CancelledRunFinally',
                            'StoppedRunFinally'))


def classify(build_json):
    """The state of a PipelineRun JSON (None = 404): one of the constants above."""
    if build_json is None:
        return DELETED
    status = build_json.get('status') if isinstance(build_json, dict) else None
    conditions = status.get('conditions') if isinstance(status, dict) else None
    if not isinstance(conditions, list) or not conditions or \
            not isinstance(conditions[0], dict):
        return RUNNING  # just created: no status yet
    cond = conditions[0]
    reason = cond.get('reason')
    if cond.get('status') == 'True':
        return SUCCEEDED
    if cond.get('status') == 'False':
        return CANCELLED if reason in CANCEL_REASONS else FAILED
    if reason == 'PipelineRunCancelled':
        return CANCELLED
    return RUNNING


def condition_message(build_json):
    try:
        message = build_json['status']['conditions'][0].get('message')
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return message if isinstance(message, str) else None


class RunWatch(object):
    """Relay logs and wait for run `name`; run() returns (state, last PipelineRun JSON)."""

    def __init__(self, client, osbs_exceptions, name, router, relay, session, task_id,
                 config, logger, fence=None, note=None):
        self.client = client
        self.exc = osbs_exceptions
        self.name = name
        self.router = router
        self.relay = relay
        self.session = session
        self.task_id = task_id
        self.config = config
        self.logger = logger
        # task-log notes (retries of an unreachable API); kojid's log when not given
        self.note = note or (lambda text: logger.warning('%s', text))
        # the task process's ownership fence: an orphan (kojid gone) stops following
        self.fence = fence or ownership.TaskOwnership(task_id, session)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._logs_ended = threading.Event()
        self.log_error = None
        # lines routed per pipeline task; a re-follow replays them, reconcile() goes on
        # from them. The lock makes freeze() final: no line is routed after it.
        self.tally = StreamTally()
        self._feed_lock = threading.Lock()
        self._frozen = False
        self._host_id = None
        self._thread = threading.Thread(target=self._log_thread, name='osbs-logs')
        self._thread.daemon = True

    # ------------------------------------------------------------ log thread
    def _route(self, task, count, line):
        """Route the `count`-th line of `task` unless it was routed already; False once
        frozen."""
        with self._feed_lock:
            if self._frozen:
                return False
            if count > self.tally.counts.get(task, 0):
                self.tally.add(task, line)
                self.router.feed(task, line)
        return True

    def frozen(self):
        return self._frozen

    def freeze(self):
        """Stop routing stream lines (the log thread may still be blocked in the stream);
        the StreamTally of what was routed."""
        with self._feed_lock:
            self._frozen = True
        self._stop.set()
        return self.tally

    def _log_thread(self):
        backoff = None
        try:
            while not self._stop.is_set():
                try:
                    stream = self.client.get_build_logs(self.name, follow=True)
                    counts = {}
                    for task, line in stream or ():
                        if self._stop.is_set():
                            return
                        count = counts.get(task, 0) + 1
                        counts[task] = count
                        if not self._route(task, count, line):
                            return
                        backoff = None
                    state = classify(self.client.get_build(self.name))
                    if state != RUNNING:
                        return
                    # the watches gave up mid-build: follow again, skipping what we have
                    self.logger.info('Log stream of %s ended early; following again',
                                     self.name)
                    self._stop.wait(min(self.config.poll_interval, 5.0))
                except Exception as exc:  # never wrapped during iteration (contract §3)
                    if self._stop.is_set():
                        return
                    if backoff is None:
                        backoff = Backoff(self.config.retry_timeout)
                    self.logger.warning('Following logs of %s failed (%s: %s)', self.name,
                                        type(exc).__name__, exc)
                    if not backoff.wait():
                        self.log_error = exc
                        return
        finally:
            self._logs_ended.set()
            self._wake.set()

    # ------------------------------------------------------------ status
    def _poll(self, box):
        """(state, json), or (None, None) while a transient failure is retried. The call
        is bounded by what is left of retry_timeout: osbs-client's own retries would
        hold it for minutes (osbs_http)."""
        started = time.monotonic()
        trouble = box[0]   # (first failure time, attempts) while the API is in trouble
        budget = self.config.retry_timeout - (started - trouble[0] if trouble else 0.0)
        try:
            data = call_bounded(lambda: self.client.get_build(self.name), max(budget, 1.0),
                                'getting the status of %s' % self.name)
        except (self.exc.OsbsException, ApiTimeout) as exc:
            if not isinstance(exc, ApiTimeout) and not is_transient_osbs(exc, self.exc):
                raise BackendError('Cannot get the status of OSBS pipeline run %s: %s'
                                   % (self.name, exc))
            since, attempts = trouble or (started, 0)
            box[0] = (since, attempts + 1)
            spent = time.monotonic() - since
            if spent >= self.config.retry_timeout:
                raise BackendError('Cannot get the status of OSBS pipeline run %s for %.0f s '
                                   '(%d attempts, retry_timeout): %s'
                                   % (self.name, spent, attempts + 1, exc))
            self.note('Getting the status of %s failed (attempt %d: %s: %s); next try in '
                      '%.1f s, giving up in %.0f s' % (
                          self.name, attempts + 1, type(exc).__name__, exc,
                          self.config.poll_interval, self.config.retry_timeout - spent))
            return None, None
        if trouble:
            self.note('Status of %s read again after %d failed attempts'
                      % (self.name, trouble[1]))
        box[0] = None
        return classify(data), data

    def _check_parent(self):
        if self.fence.orphaned():
            raise TaskLost('kojid (pid %s) is gone; task %s will be re-run and reattach to '
                           '%s' % (self.fence.parent_pid, self.task_id, self.name))

    def check_task(self):
        """TaskLost if the task is no longer ours, BuildCanceled if it was cancelled."""
        try:
            if self._host_id is None:
                self._host_id = self.session.host.getID()
            info = self.session.getTaskInfo(self.task_id)
        except Exception as exc:
            if is_transient_hub(exc):
                self.logger.warning('Cannot check task %s on the hub: %s', self.task_id, exc)
                return
            if isinstance(exc, koji.ActionNotAllowed):
                raise TaskLost('task %s: %s' % (self.task_id, exc))
            raise BackendError('Cannot check task %s on the hub while following OSBS '
                               'pipeline run %s: %s' % (self.task_id, self.name, exc))
        if not info:
            raise TaskLost('task %s no longer exists on the hub' % self.task_id)
        state = info.get('state')
        if state == koji.TASK_STATES['CANCELED']:
            raise BuildCanceled('Task %s was cancelled' % self.task_id)
        if state != koji.TASK_STATES['OPEN'] or info.get('host_id') != self._host_id:
            raise TaskLost('task %s is no longer open on this builder (state %s)'
                           % (self.task_id, koji.TASK_STATES.get(state, state)))

    # ------------------------------------------------------------ main loop
    def run(self):
        self._thread.start()
        box = [None]
        next_hub_check = time.monotonic() + self.config.hub_check_interval
        try:
            while True:
                self._check_parent()
                if isinstance(self.relay.error, koji.ActionNotAllowed) or \
                        time.monotonic() >= next_hub_check:
                    self.check_task()
                    next_hub_check = time.monotonic() + self.config.hub_check_interval
                state, data = self._poll(box)
                if state == DELETED:
                    raise BackendError('OSBS pipeline run %s was deleted before it finished'
                                       % self.name)
                if state in FINISHED:
                    self._drain()
                    return state, data
                self._wake.wait(self.config.poll_interval)
                self._wake.clear()
        finally:
            self._stop.set()

    def _drain(self):
        """Give the stream a moment to deliver its last lines after the run ended."""
        deadline = time.monotonic() + max(self.config.poll_interval * 2, 10.0)
        while not self._logs_ended.is_set() and time.monotonic() < deadline:
            self._logs_ended.wait(0.2)
            self._check_parent()


# ------------------------------------------------------------------ finding a run again
# osbs-client has no list or search (contract §7): the only way to find the run a
# previous attempt created without recording its name is our own GET of the namespace's
# PipelineRuns (contract §8) and koji_task_id in each run's user params. Where the user
# params land is up to the PipelineRun template (`$osbs_user_params_json`): we read the
# `spec.params` entry named `user-params` or `user_params`, a JSON string (or object).
USER_PARAMS_NAMES = ('user-params', 'user_params')
LIST_TIMEOUT = 30.0          # the whole listing, every page
LIST_PAGE = 10               # runs asked per page (?limit=, with continue tokens)
MAX_PAGE_ITEMS = 100         # a page with more: the API ignored limit
MAX_PAGE_BYTES = 1024 * 1024
MAX_LIST_BYTES = 16 * 1024 * 1024
MAX_CONTINUE = 4096


def runs_url(conf):
    base = conf.get_openshift_base_uri()
    if not isinstance(base, str) or not base:
        raise ValueError('no openshift_url')
    if not base.endswith('/'):
        base += '/'
    return '%sapis/tekton.dev/v1beta1/namespaces/%s/pipelineruns' % (
        base, urllib.request.quote(conf.get_namespace(), safe=''))


def _page_url(url, cont):
    if not url.lower().startswith(('http:', 'https:')):
        return url      # the test double's file:// API: one page
    query = {'limit': LIST_PAGE}
    if cont:
        query['continue'] = cont
    return '%s?%s' % (url, urllib.parse.urlencode(query))


def iter_runs(conf, timeout=LIST_TIMEOUT):
    """The namespace's PipelineRun JSON objects, a page at a time (bounded pages, bytes
    and time: an API answer is not trusted), with osbs-client's token and TLS settings;
    the token goes to the API's origin only (osbs_http.open_api). Raises on any trouble
    (the caller falls back)."""
    url = runs_url(conf)
    token = conf.get_oauth2_token()
    context = None
    if url.lower().startswith('https:') and not conf.get_verify_ssl():
        context = ssl._create_unverified_context()
    deadline = time.monotonic() + timeout
    total = 0
    cont = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ValueError('listing pipeline runs took more than %.0f s' % timeout)
        with open_api(_page_url(url, cont), token, context, left) as answer:
            raw = answer.read(MAX_PAGE_BYTES + 1)
        total += len(raw)
        if len(raw) > MAX_PAGE_BYTES or total > MAX_LIST_BYTES:
            raise ValueError('pipeline run list larger than %d bytes per page or %d in all'
                             % (MAX_PAGE_BYTES, MAX_LIST_BYTES))
        try:
            data = json.loads(raw.decode('utf-8'))
        except RecursionError:
            raise ValueError('pipeline run list nested too deep')
        del raw
        items = data.get('items') if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ValueError('not a PipelineRunList')
        if len(items) > MAX_PAGE_ITEMS:
            raise ValueError('%d pipeline runs in one page (asked for %d)'
                             % (len(items), LIST_PAGE))
        for item in items:
            if isinstance(item, dict):
                yield item
        meta = data.get('metadata')
        cont = meta.get('continue') if isinstance(meta, dict) else None
        if not isinstance(cont, str) or not cont or _page_url(url, None) == url:
            return
        if len(cont) > MAX_CONTINUE:
            raise ValueError('continue token of %d characters' % len(cont))


def list_runs(conf, timeout=LIST_TIMEOUT):
    """Every PipelineRun of the namespace (iter_runs, as a list)."""
    return list(iter_runs(conf, timeout))


def user_params_of(run):
    """The user-params dict of a PipelineRun JSON, or None."""
    spec = run.get('spec')
    params = spec.get('params') if isinstance(spec, dict) else None
    for param in params if isinstance(params, list) else ():
        if not isinstance(param, dict) or param.get('name') not in USER_PARAMS_NAMES:
            continue
        value = param.get('value')
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                return None
        return value if isinstance(value, dict) else None
    return None


def find_run_of_task(conf, task_id, logger, lister=iter_runs):
    """The name of the newest run whose user params carry koji_task_id == task_id, or
    None. Errors are the caller's (it logs them and builds anew)."""
    found = []
    for run in lister(conf):
        params = user_params_of(run)
        task = params.get('koji_task_id') if params else None
        if isinstance(task, bool) or str(task) != str(task_id):
            continue
        meta = run.get('metadata') if isinstance(run.get('metadata'), dict) else {}
        name = meta.get('name')
        if isinstance(name, str) and name:
            found.append((str(meta.get('creationTimestamp') or ''), name))
    if not found:
        logger.info('No pipeline run of task %s in namespace %s', task_id,
                    conf.get_namespace())
        return None
    found.sort()
    if len(found) > 1:
        logger.warning('%d pipeline runs of task %s: %s; following the newest', len(found),
                       task_id, ', '.join(scmurl.redact(n) for _, n in found))
    return found[-1][1]
