"""OSBS backend, one task's end: the outcome of a followed run, recorded and cleaned up.

A mixin of osbs.OsbsTask (the task's state: handler, config, client, run name, run
record, relay): the results of a finished run checked against the hub, the complete logs
reconciled with what the live stream delivered, the outcome recorded on the hub, the run
removed, and what a re-run reports when a previous attempt already finished the run.
Kept apart from osbs.py, which starts, reattaches to and follows the run.
"""

import logging

import koji

from koji_containerbuild.backends import osbs_http, osbs_run
from koji_containerbuild.backends.osbs_client import _text, success_result
from koji_containerbuild.backends.osbs_reconcile import reconcile
from koji_containerbuild.backends.retry import TaskLost
from koji_containerbuild.errors import BackendError, BuildCanceled, ConfigError


class OutcomeSteps(object):
    def _conclude(self, state, data, router, relay, scratch, watch):
        if watch.log_error is not None:
            self.note('Following the logs of %s failed: %s'
                      % (self.name, _text(watch.log_error, 500)), logging.WARNING)
        self._reconcile(watch, router)
        if state == osbs_run.SUCCEEDED:
            results = self._osbs(lambda: self.client.get_build_results(self.name),
                                 'getting results of %s' % self.name) or {}
            platforms = self._final_platforms(results)
            router.confirm_platforms(platforms)
            warnings = router.finish()
            self._close_relay(relay)
            result = success_result(results, scratch, warnings, self.logger)
            missing = self._unknown_builds(result['koji_builds'])
            if missing:
                # Koji web's taskinfo and rpkg look every listed build up
                error = ('OSBS pipeline run %s reported Koji build %s, which does not exist '
                         'on the hub; the build was not imported (check the OSBS koji_import '
                         'step and that OSBS talks to this hub)' % (self.name,
                                                                   ', '.join(missing)))
                self._finish('failed', error=error)
                raise BackendError(error)
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

    def _unknown_builds(self, build_ids):
        """The ids in `build_ids` the hub does not know."""
        missing = []
        for build_id in build_ids:
            info = self.record._hub(lambda: self.session.getBuild(int(build_id)),
                                    'looking up build %s' % build_id)
            if not info:
                missing.append(build_id)
        return missing

    def _reconcile(self, watch, router):
        """Append what the live stream missed, from the complete logs (the run has ended
        and is not removed yet)."""
        tally = watch.freeze()
        streamed = sum(tally.counts.values())
        try:
            # bounded: osbs-client's own retries must not hold the task for minutes
            complete = osbs_http.call_bounded(
                lambda: self._osbs(lambda: self.client.get_build_logs(self.name),
                                   'getting the complete logs of %s' % self.name),
                max(self.config.retry_timeout, 1.0),
                'getting the complete logs of %s' % self.name)
        except Exception as exc:
            self.note('Cannot fetch the complete logs of pipeline run %s (%s): the %d lines '
                      'the live stream delivered cannot be checked, and lines it missed, if '
                      'any, are missing from the task logs' % (self.name, _text(exc, 500),
                                                                streamed), logging.WARNING)
            return
        if not isinstance(complete, dict):
            self.note('Pipeline run %s returned no complete logs: the %d lines the live '
                      'stream delivered cannot be checked' % (self.name, streamed),
                      logging.WARNING)
            return
        recovered = reconcile(complete, tally, router.feed,
                              lambda text: self.note(text, logging.WARNING))
        if recovered:
            self.note('Recovered %d log lines the live stream of %s missed, from its '
                      'complete logs: %s' % (
                          sum(recovered.values()), self.name,
                          ', '.join('%s %d' % item for item in sorted(recovered.items()))),
                      logging.WARNING)
        else:
            self.logger.info('The live logs of %s are complete (%d lines)', self.name,
                             streamed)

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
                                  self.logger, fence=self.fence).check_task()
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
