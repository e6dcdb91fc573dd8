"""The OSBS backend: build through osbs-client (OSBS 2, Tekton PipelineRuns).

Flow of one task (details and failure windows in docs/osbs.md):

1. Read the task's run record on the hub (run_record.py). A previous attempt of this
   task (kojid restart: same task id, maybe another builder) that created a run makes
   this attempt reattach to it instead of starting a second build.
2. Otherwise build the plan (plan.prepare_*), record "creating", create the run with every
   argument osbs-client expects, and record its name at once, before following it.
3. Follow it (osbs_run.RunWatch): logs relayed live, status polled, lost task noticed.
4. Finish: result / failure / cancellation, recorded on the hub, then remove the run.

kojid's cancellation arrives as KeyboardInterrupt (SIGINT) or SystemExit (SIGTERM): the
run is cancelled within `cancel_timeout` seconds and the exception goes on. An orphaned
process (kojid died) that finds its task gone stops without touching the run.
"""

import configparser
import os
import re
import threading
import time

import koji

from koji_containerbuild import scmurl
from koji_containerbuild.backends import osbs_run
from koji_containerbuild.backends.retry import TaskLost, is_transient_osbs, retry
from koji_containerbuild.backends.run_record import RunRecord
from koji_containerbuild.errors import BackendError, BuildCanceled, ConfigError
from koji_containerbuild.logs import LogRelay, hub_output_sizes
from koji_containerbuild.osbs_logs import OsbsLogRouter

NOT_INSTALLED = 'osbs-client is not installed on this builder'
_RUN_NAME_RE = re.compile(r'^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\Z')
MAX_REPOSITORIES = 1000
MAX_MESSAGE = 8000


class OsbsModules(object):
    def __init__(self, api, conf, exceptions):
        self.api = api
        self.conf = conf
        self.exceptions = exceptions


def load_osbs():
    """Import osbs-client lazily: the plugin must load on builders without it."""
    try:
        import osbs.api
        import osbs.conf
        import osbs.exceptions
    except ImportError as exc:
        raise BackendError('%s (%s); install python3-osbs-client or set backend = native'
                           % (NOT_INSTALLED, exc))
    except Exception as exc:
        raise BackendError('osbs-client cannot be loaded on this builder: %s' % exc)
    return OsbsModules(osbs.api, osbs.conf, osbs.exceptions)


def _text(value, limit=MAX_MESSAGE):
    """OSBS text for a fault message: credentials redacted, bounded."""
    if isinstance(value, bytes):
        value = value.decode('utf-8', 'replace')
    text = scmurl.redact(str(value))
    return text if len(text) <= limit else text[:limit] + '...'


def make_client(mods, config, section):
    """(OSBS client, Configuration, (default, max) build time limits)."""
    path = config.osbs_conf_file
    if not os.path.isfile(path):
        raise ConfigError('OSBS configuration file %s does not exist (osbs_conf_file in %s)'
                          % (path, config.path))
    check = configparser.RawConfigParser()
    try:
        check.read(path)
    except configparser.Error as exc:
        raise ConfigError('OSBS configuration file %s is malformed: %s'
                          % (path, str(exc).replace('\n', ' ')))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError('OSBS configuration file %s cannot be read: %s' % (path, exc))
    if not check.has_section(section):
        raise ConfigError('OSBS configuration file %s has no [%s] section (set in %s)'
                          % (path, section, config.path))
    if check.has_option(section, 'scratch'):
        # osbs-client lets it override every build's scratch flag (contract §1)
        raise ConfigError('OSBS configuration file %s: [%s] sets scratch, which would '
                          'override the scratch flag of every build; remove it'
                          % (path, section))
    try:
        conf = mods.conf.Configuration(conf_file=path, conf_section=section)
        limits = (conf.get_default_buildtime_limit(), conf.get_max_buildtime_limit())
        client = mods.api.OSBS(conf)
    except (configparser.Error, ValueError, TypeError) as exc:
        raise ConfigError('OSBS configuration [%s] in %s is invalid: %s'
                          % (section, path, exc))
    except mods.exceptions.OsbsException as exc:
        raise BackendError('Cannot set up osbs-client for [%s]: %s' % (section, _text(exc)))
    return client, conf, limits


# ------------------------------------------------------------------ create arguments

def _when_set(args, opts, names):
    for name in names:
        value = opts.get(name)
        if value is not None and value is not False and value != [] and value != {}:
            args[name] = value


def binary_create_args(plan, task_id, limits):
    """Every argument osbs-client's create_binary_container_build expects (contract §2.1)."""
    opts = plan.opts
    args = {
        'git_uri': plan.checkout.git_uri,
        'git_ref': plan.checkout.commit,
        'git_branch': plan.git_branch,
        'user': plan.owner,
        'component': plan.identity.component,
        'target': plan.target_name,
        'dependency_replacements': opts.get('dependency_replacements'),
        'yum_repourls': opts.get('yum_repourls'),
        'scratch': bool(plan.scratch),
        'koji_task_id': int(task_id),
        'platforms': list(plan.arches),
        'default_buildtime_limit': limits[0],
        'max_buildtime_limit': limits[1],
    }
    if plan.flatpak:
        args['flatpak'] = True
    if plan.isolated:
        args['isolated'] = True
    _when_set(args, opts, ('release', 'koji_parent_build', 'signing_intent', 'compose_ids',
                           'userdata', 'operator_csv_modifications_url'))
    return args


def source_create_args(plan, task_id):
    """Arguments of create_source_container_build (contract §2.1, source builds)."""
    args = {
        'user': plan.owner,
        'component': plan.component,
        'sources_for_koji_build_id': plan.build_id,
        'sources_for_koji_build_nvr': plan.build_nvr,
        'target': plan.target_name,
        'scratch': bool(plan.scratch),
        'koji_task_id': int(task_id),
    }
    _when_set(args, plan.opts, ('signing_intent', 'userdata'))
    return args


def _name_from_409(exc):
    """The run name a 409 AlreadyExists body names, or None."""
    body = getattr(exc, 'json', None)
    name = None
    if isinstance(body, dict) and isinstance(body.get('details'), dict):
        name = body['details'].get('name')
    if not isinstance(name, str):
        message = exc.message if isinstance(getattr(exc, 'message', None), str) else str(exc)
        match = re.search(r'pipelineruns(?:\.tekton\.dev)? "([^"]+)" already exists', message)
        name = match.group(1) if match else None
    if isinstance(name, str) and _RUN_NAME_RE.match(name):
        return name
    return None


def create_run(client, mods, kind, args, logger):
    """Start the run; its name. A 409 AlreadyExists (the answer to the first POST was lost
    and osbs-client's retry collided with the run it created) means the run exists."""
    create = (client.create_source_container_build if kind == 'source'
              else client.create_binary_container_build)
    exc_mod = mods.exceptions
    try:
        return client.get_build_name(create(**args))
    except exc_mod.OsbsValidationException as exc:
        raise BackendError('OSBS refused the build: %s' % _text(exc))
    except exc_mod.OsbsResponseException as exc:
        if getattr(exc, 'status_code', None) == 409:
            name = _name_from_409(exc)
            if name:
                logger.warning('Create of the OSBS pipeline run got 409 AlreadyExists; '
                               'continuing with the existing run %s', name)
                return name
        raise BackendError('OSBS could not start the build: %s' % _text(exc))
    except exc_mod.OsbsException as exc:
        raise BackendError('OSBS could not start the build: %s' % _text(exc))


# ------------------------------------------------------------------ results

def _repositories(results):
    repos = results.get('repositories')
    out = []
    if isinstance(repos, dict):
        keys = [k for k in ('primary', 'unique', 'floating') if k in repos]
        keys += sorted(k for k in repos if k not in keys and isinstance(k, str))
        lists = [repos[k] for k in keys]
    elif isinstance(repos, list):
        lists = [repos]
    else:
        lists = []
    for items in lists:
        for item in items if isinstance(items, list) else ():
            if isinstance(item, str) and item and len(item) <= 1024 and item not in out:
                out.append(item)
    return out[:MAX_REPOSITORIES]


def success_result(results, scratch, warnings, logger):
    build_id = results.get('koji-build-id')
    koji_builds = []
    if build_id is not None and not isinstance(build_id, bool) and \
            re.match(r'^[1-9][0-9]{0,18}\Z', str(build_id)):
        koji_builds = [str(build_id)]
    elif build_id is not None:
        logger.warning('Ignoring invalid koji-build-id %r', str(build_id)[:100])
    elif not scratch:
        logger.warning('OSBS reported no koji-build-id for a non-scratch build')
    result = {'repositories': _repositories(results), 'koji_builds': koji_builds}
    if warnings:
        result['user_warnings'] = list(warnings)
    return result


# ------------------------------------------------------------------ the task

class OsbsTask(object):
    """One buildContainer/buildSourceContainer task run through OSBS."""

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
        self._finished = False
        self._cancel_started = False
        # kojid's pid when the handler was made: a change means kojid died (orphan)
        self.parent_pid = getattr(handler, 'parent_pid', None) or os.getppid()

    def _osbs(self, func, what):
        return retry(func, lambda e: is_transient_osbs(e, self.mods.exceptions),
                     self.config.retry_timeout, what, self.logger)

    def run(self):
        self.mods = self.mods or load_osbs()
        previous = self.record.load()
        try:
            if previous and previous.get('state') == 'finished':
                return self._report_previous(previous)
            if previous and previous.get('state') == 'running' and previous.get('name'):
                self._connect(previous.get('section') or self.config.osbs_section(self.kind))
                self.name = previous['name']
                self.logger.info('Reattaching to OSBS pipeline run %s', self.name)
                return self._follow(previous.get('arches') or [],
                                    bool(previous.get('scratch')), reattach=True)
            if previous and previous.get('state') == 'creating' and self._find_created(previous):
                self.logger.info('Reattaching to OSBS pipeline run %s, created by a previous '
                                 'attempt of task %s', self.name, self.task_id)
                return self._follow(previous.get('arches') or [],
                                    bool(previous.get('scratch')), reattach=True)
            return self._start(previous)
        except (KeyboardInterrupt, SystemExit) as exc:
            if self.name and not isinstance(exc, TaskLost):
                self.cancel_quickly()
            raise

    def _connect(self, section):
        self.section = section
        self.client, self.conf, self.limits = make_client(self.mods, self.config, section)

    def _check_parent(self, what):
        """TaskLost when kojid is gone: a re-run owns the task from now on."""
        if os.getppid() != self.parent_pid:
            raise TaskLost('kojid (pid %s) is gone; task %s stops before %s'
                           % (self.parent_pid, self.task_id, what))

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
                self.cancel_quickly()
                raise BuildCanceled('Task %s was cancelled; cancelled OSBS pipeline run %s'
                                    % (self.task_id, self.name))
            raise  # freed: the re-run finds the run by its koji_task_id
        except Exception as exc:
            # nobody could find this run again: do not leave it behind
            self.logger.error('Cannot record pipeline run %s (%s); cancelling it',
                              self.name, exc)
            self.cancel_quickly()
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
        thread.start()
        try:
            while not done.wait(1.0):
                pass
        except (KeyboardInterrupt, SystemExit):
            deadline = time.monotonic() + self.config.cancel_timeout
            _wait_holding_signals(done, deadline)
            if box.get('name'):
                self.name = box['name']
                self.cancel_quickly(deadline)
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
        relay = None
        try:
            resume = self._hub_output_sizes() if reattach else None
            relay = LogRelay(self.session, self.upload_path, self.handler.workdir,
                             flush_interval=self.config.log_flush_interval,
                             retry_timeout=self.config.retry_timeout, logger=self.logger,
                             resume_offsets=resume)
            koji_work = os.path.join(self.handler.options.topdir, 'work')
            router = OsbsLogRouter(relay, koji_work_dir=koji_work, platforms=arches,
                                   logger=self.logger, scratch=scratch)
            watch = osbs_run.RunWatch(self.client, self.mods.exceptions, self.name, router,
                                      relay, self.session, self.task_id, self.config,
                                      self.logger, parent_pid=self.parent_pid)
            try:
                state, data = watch.run()
            except BuildCanceled:
                # cancelled on the Koji side while kojid could not tell us
                self.cancel_quickly()
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
            if not self._finished:
                self._finish('deleted' if 'was deleted before' in error else 'failed',
                             error=error)
            if isinstance(exc, BackendError) and str(exc) == error:
                raise
            raise BackendError(error)
        finally:
            if relay is not None:
                relay.close(raise_error=False)

    def _hub_output_sizes(self):
        """What a previous attempt already uploaded; retried like every hub call."""
        return self.record._hub(lambda: hub_output_sizes(self.session, self.task_id),
                                'listing the output of task %s' % self.task_id)

    def _conclude(self, state, data, router, relay, scratch, watch):
        if watch.log_error is not None:
            relay.write('osbs-build.log', 'koji-containerbuild: following the logs failed: %s'
                        % _text(watch.log_error, 500))
        if state == osbs_run.SUCCEEDED:
            results = self._osbs(lambda: self.client.get_build_results(self.name),
                                 'getting results of %s' % self.name) or {}
            platforms = self._final_platforms(results)
            router.confirm_platforms(platforms)
            warnings = router.finish()
            self._close_relay(relay)
            result = success_result(results, scratch, warnings, self.logger)
            self._finish('succeeded', result=result)
            return result
        router.finish()
        self._close_relay(relay)
        if state == osbs_run.CANCELLED:
            self._finish('cancelled', error='cancelled on the OSBS side')
            self._cancel_koji_task()
            raise BuildCanceled('OSBS pipeline run %s was cancelled' % self.name)
        try:
            message = self._osbs(lambda: self.client.get_build_error_message(self.name),
                                 'getting the error of %s' % self.name)
        except Exception as exc:
            self.logger.warning('Cannot get the error message of %s: %s', self.name, exc)
            message = osbs_run.condition_message(data) or 'pipeline run failed;'
        error = 'OSBS build failed (pipeline run %s): %s' % (self.name, _text(message))
        self._finish('failed', error=error)
        raise BackendError(error)

    def _final_platforms(self, results):
        try:
            platforms = self._osbs(lambda: self.client.get_final_platforms(self.name),
                                   'getting final platforms of %s' % self.name)
        except Exception as exc:
            self.logger.warning('get_final_platforms(%s) failed: %s', self.name, exc)
            platforms = None
        if not platforms:
            info = results.get('platforms_result')
            platforms = info.get('platforms') if isinstance(info, dict) else None
        return [p for p in platforms if isinstance(p, str)] if isinstance(platforms, list) \
            else []

    def _close_relay(self, relay):
        relay.close(raise_error=False)
        if relay.error is not None:
            if isinstance(relay.error, koji.ActionNotAllowed):
                osbs_run.RunWatch(self.client, self.mods.exceptions, self.name, None, relay,
                                  self.session, self.task_id, self.config,
                                  self.logger).check_task()
            self.logger.warning('Some log output did not reach the hub: %s', relay.error)

    def _finish(self, outcome, result=None, error=None):
        """Record the outcome (a re-run reports it), then remove the run (not fatal)."""
        self._finished = True
        fields = {'state': 'finished', 'outcome': outcome}
        if result is not None:
            fields['result'] = result
        if error is not None:
            fields['error'] = error
        try:
            self.record.save(**fields)
        except TaskLost:
            raise
        except Exception as exc:
            self.logger.warning('Cannot record the outcome of %s (%s): %s', self.name,
                                outcome, exc)
        self._remove()

    def _remove(self):
        try:
            self.client.remove_build(self.name)
        except self.mods.exceptions.OsbsResponseException as exc:
            if getattr(exc, 'status_code', None) == 404:
                self.logger.info('Pipeline run %s was already removed', self.name)
            else:
                self.logger.warning('Removing pipeline run %s failed: %s', self.name, exc)
            return
        except Exception as exc:
            self.logger.warning('Removing pipeline run %s failed: %s', self.name, exc)
            return
        try:
            self.record.save(removed=True)
        except TaskLost:
            raise
        except Exception as exc:
            self.logger.warning('Cannot record the removal of %s: %s', self.name, exc)

    def _task_cancelled(self):
        try:
            info = self.session.getTaskInfo(self.task_id)
        except Exception as exc:
            self.logger.warning('Cannot read task %s: %s', self.task_id, exc)
            return False
        return bool(info) and info.get('state') == koji.TASK_STATES['CANCELED']

    def _cancel_koji_task(self):
        try:
            self.session.cancelTask(self.task_id)
        except Exception as exc:
            self.logger.warning('Cannot cancel task %s: %s', self.task_id, exc)

    def _report_previous(self, previous):
        """A previous attempt finished the run but did not close the task."""
        self.name = previous.get('name')
        outcome = previous.get('outcome')
        self.logger.info('Previous attempt of task %s finished pipeline run %s: %s',
                         self.task_id, self.name, outcome)
        if self.name and not previous.get('removed'):
            try:
                self._connect(previous.get('section') or self.config.osbs_section(self.kind))
                self._remove()
            except (BackendError, ConfigError) as exc:
                self.logger.warning('Cannot remove pipeline run %s: %s', self.name, exc)
        if outcome == 'succeeded' and isinstance(previous.get('result'), dict):
            return previous['result']
        if outcome == 'cancelled':
            self._cancel_koji_task()
            raise BuildCanceled('OSBS pipeline run %s was cancelled' % self.name)
        raise BackendError(previous.get('error') or 'OSBS build failed (pipeline run %s)'
                           % self.name)

    def cancel_quickly(self, deadline=None):
        """Cancel the run, then remove it, within config.cancel_timeout seconds (kojid
        sends SIGTERM 3 s after SIGINT) or by `deadline` (time.monotonic()). Further
        KeyboardInterrupt/SystemExit during the wait are held back until then. Failures
        are logged: the task ends anyway."""
        name, client = self.name, self.client
        if not name or client is None or self._cancel_started:
            return
        self._cancel_started = True
        done = threading.Event()

        def _cancel():
            try:
                try:
                    client.cancel_build(name)
                    self.logger.info('Cancelled OSBS pipeline run %s', name)
                except Exception as exc:
                    self.logger.warning('Cancelling pipeline run %s failed: %s', name, exc)
                try:
                    client.remove_build(name)
                    self.logger.info('Removed OSBS pipeline run %s', name)
                except Exception as exc:
                    self.logger.warning('Removing pipeline run %s failed: %s', name, exc)
            finally:
                done.set()

        thread = threading.Thread(target=_cancel, name='osbs-cancel')
        thread.daemon = True
        thread.start()
        if deadline is None:
            deadline = time.monotonic() + self.config.cancel_timeout
        if not _wait_holding_signals(done, deadline):
            self.logger.warning('Cancelling and removing pipeline run %s did not finish in '
                                '%.1f s', name, self.config.cancel_timeout)


def _wait_holding_signals(event, deadline):
    """Wait for `event` until `deadline`; KeyboardInterrupt/SystemExit meanwhile are held
    back (kojid keeps signalling while we clean up). True if the event was set."""
    while not event.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            event.wait(left)
        except (KeyboardInterrupt, SystemExit):
            continue
    return True


def run_binary(handler, config, make_plan, mods=None):
    """buildContainer (binary and flatpak) through OSBS; make_plan() -> plan.BuildPlan."""
    return OsbsTask(handler, config, 'binary', make_plan, mods).run()


def run_source(handler, config, make_plan, mods=None):
    """buildSourceContainer through OSBS; make_plan() -> plan.SourcePlan."""
    return OsbsTask(handler, config, 'source', make_plan, mods).run()

