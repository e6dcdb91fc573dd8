"""osbs.api.OSBS (double of osbs-client 2.8.0, contract sections 2 and 3).

Behaviour that naive fakes get wrong is kept: create_* returns a PipelineRun, needs
the git parameters and max_buildtime_limit and drops unknown keywords; non-Osbs errors
are wrapped (except during log iteration); a missing run answers None/False/{} but
remove_build raises a 404 and cancel_build a plain OsbsException; a run without status
raises; logs are (pipeline_task, line) round-robin and may end early; results drop
nulls; koji-build-id is absent for scratch; get_final_platforms gives None.
"""

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
import string
import time
import warnings

from ._cluster import Cluster, list_item, sequence, state_dir_from_url
from .exceptions import (OsbsCommitNotFound, OsbsException, OsbsNetworkException,
                         OsbsResponseException, OsbsValidationException)
from .tekton import PipelineRun

_EXC = {
    'OsbsException': OsbsException,
    'OsbsValidationException': OsbsValidationException,
    'OsbsCommitNotFound': OsbsCommitNotFound,
}
_LIST_PARAMS = ('platforms', 'yum_repourls', 'dependency_replacements', 'compose_ids')
_BINARY_PARAMS = frozenset((
    'user', 'scratch', 'release', 'koji_parent_build', 'platforms', 'yum_repourls',
    'dependency_replacements', 'compose_ids', 'signing_intent', 'userdata',
    'default_buildtime_limit', 'max_buildtime_limit', 'reactor_config_override',
    'triggered_after_koji_task', 'skip_build'))
_SOURCE_PARAMS = frozenset((
    'user', 'scratch', 'signing_intent', 'userdata', 'sources_for_koji_build_id',
    'sources_for_koji_build_nvr', 'reactor_config_override'))
CANCELLED_REASON = 'PipelineRunCancelled'
# urllib3 (< 1.26) Retry(total=8, backoff_factor=4): no sleep before the first retry,
# then 4 * 2**(n-1) s, capped at 120 s
HTTP_RETRY_SLEEPS = [0] + [min(4 * 2 ** (n - 1), 120) for n in range(2, 9)]


def make_exception(spec):
    """An exception instance from a scenario spec."""
    kind = spec.get('type', 'OsbsException')
    message = spec.get('message', 'injected failure')
    if kind == 'OsbsResponseException':
        body = message.encode('utf-8') if spec.get('bytes') else message
        return OsbsResponseException(body, spec.get('status_code', 500))
    if kind == 'OsbsNetworkException':
        return OsbsNetworkException(spec.get('url', 'https://osbs.invalid/'), message,
                                    spec.get('status_code', 503))
    if kind == 'ConnectionError':
        return ConnectionError(message)
    if kind == 'KeyError':
        return KeyError(message)
    if kind == 'UnicodeDecodeError':
        return UnicodeDecodeError('utf-8', b'\xff', 0, 1, message)
    return _EXC[kind](message)


def osbsapi(func):
    """The wrapper every public method has: drop namespace=, wrap non-Osbs errors."""
    @functools.wraps(func)
    def wrapper(self, *args, **kwargs):
        if kwargs.pop('namespace', None):
            warnings.warn('namespace kwarg is deprecated and ignored', UserWarning)
        try:
            return func(self, *args, **kwargs)
        except OsbsException:
            raise
        except Exception as exc:
            raise OsbsException(cause=exc)
    return wrapper


class _Http(object):
    """Stands in for osbs.api.OSBS.os; reaching the cluster is the first 'request'."""

    def __init__(self, conf):
        self.conf = conf
        self._cluster = None

    def cluster(self):
        if self._cluster is None:
            state_dir = state_dir_from_url(self.conf.get_openshift_base_uri())
            if state_dir is None:
                # an unreachable API: urllib3 retries the request 8 times, backoff factor
                # 4 (contract §8), before the connection error comes out: ~8 minutes.
                # OSBS_DOUBLE_TIME_SCALE shortens that for tests (never 0: it is slow).
                scale = float(os.environ.get('OSBS_DOUBLE_TIME_SCALE', '1.0'))
                time.sleep(scale * sum(HTTP_RETRY_SLEEPS))
                raise ConnectionError('Max retries exceeded with url: %s (Caused by '
                                      'NewConnectionError: Failed to establish a new '
                                      'connection)' % (self.conf.get_openshift_base_uri(),))
            self._cluster = Cluster(state_dir)
        return self._cluster


class OSBS(object):
    @osbsapi
    def __init__(self, openshift_configuration):
        self.os_conf = openshift_configuration
        self.os = _Http(openshift_configuration)

    # ------------------------------------------------------------ helpers
    def _enter(self, method, name=None):
        cluster = self.os.cluster()
        cluster.log_call(method, name)
        spec = cluster.pop_fault(method)
        if spec:
            raise make_exception(spec)
        return cluster

    def _status_run(self, cluster, name):
        """The run or None; KeyError('status') while it has no status yet."""
        run = cluster.run(name)
        if run is None:
            return None
        if cluster.note_status_read(name):
            raise KeyError('status')
        return run

    @staticmethod
    def _condition(run):
        return run['condition'] or {'status': 'Unknown', 'reason': 'Running',
                                    'message': 'Tasks Completed: 0 (Failed: 0)'}

    def _json(self, run, with_status=True):
        data = list_item(run)
        data.pop('status', None)
        if with_status:
            cond = self._condition(run)
            results = []
            if run['condition'] is not None:
                for key, value in sorted(run['script']['results'].items()):
                    results.append({'name': key, 'value': value if isinstance(value, str)
                                    else json.dumps(value)})
            data['status'] = {'conditions': [dict(cond, type='Succeeded')],
                              'pipelineResults': results,
                              'childReferences': [
                                  {'kind': 'TaskRun', 'name': '%s-%s' % (run['name'], t[0]),
                                   'pipelineTaskName': t[0]}
                                  for t in run['script']['tasks']]}
        return data

    # ------------------------------------------------------------ create
    def _user_params(self, kind, params):
        out = dict((k, v) for k, v in params.items() if v)
        out['kind'] = kind
        return dict(sorted(out.items()))

    def _render(self, name, user_params, limit, scratch):
        path = self.os_conf.get_pipeline_run_path()
        with open(path) as fobj:  # None or unreadable -> wrapped TypeError/IOError
            text = fobj.read()
        config_map = (self.os_conf.get_reactor_config_map_scratch() if scratch
                      else self.os_conf.get_reactor_config_map())
        rendered = string.Template(text).substitute(
            osbs_pipeline_run_name=name, osbs_namespace=self.os_conf.get_namespace(),
            osbs_configmap_name=config_map, osbs_buildtime_limit='%ds' % limit,
            osbs_user_params_json=json.dumps(user_params, sort_keys=True))
        if 'name: %s\n' % name not in rendered:
            raise OsbsException('Pipeline run name provided in pipeline run template '
                                'does not match the generated name %s' % name)
        return rendered

    def _post(self, cluster, kind, name, user_params, rendered):
        scenario = cluster.scenario()
        script = copy.deepcopy(scenario['run'])
        cluster.add_run(name, self.os_conf.get_namespace(), kind, user_params, script)
        cluster.log_call('create:posted', name)
        if scenario['create'].get('answer_delay'):
            time.sleep(scenario['create']['answer_delay'])
        if scenario['create'].get('lost_answer'):
            # the first answer was lost; urllib3 retried the POST and got 409
            body = json.dumps({
                'kind': 'Status', 'apiVersion': 'v1', 'status': 'Failure',
                'message': 'pipelineruns.tekton.dev "%s" already exists' % name,
                'reason': 'AlreadyExists', 'code': 409,
                'details': {'name': name, 'group': 'tekton.dev', 'kind': 'pipelineruns'}})
            raise OsbsResponseException(body, 409)
        return PipelineRun(self.os, name, rendered)

    @staticmethod
    def _clone(git_uri, git_ref, git_branch):
        """The clone on the calling host (contract §2.1 step 3), git's output going to
        this process's stdout/stderr as with osbs-client."""
        tmp = tempfile.mkdtemp(prefix='osbs-double-clone-')
        try:
            done = subprocess.run(['git', 'clone', '-b', git_branch, '--single-branch',
                                   git_uri, tmp], stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                raise OsbsException('Failed to clone git repo %s' % git_uri)
            done = subprocess.run(['git', 'reset', '--hard', git_ref], cwd=tmp,
                                  stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                raise OsbsCommitNotFound('Commit %s not found in branch %s'
                                         % (git_ref, git_branch))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @osbsapi
    def create_binary_container_build(self, **kwargs):
        return self.create_binary_container_pipeline_run(**kwargs)

    @osbsapi
    def create_binary_container_pipeline_run(self, git_uri=None, git_ref=None, git_branch=None,
                                             component=None, flatpak=None,
                                             git_commit_depth=None, isolated=None,
                                             koji_task_id=None, target=None,
                                             operator_csv_modifications_url=None, **kwargs):
        cluster = self._enter('create_binary_container_build')
        for key, value in (('git_uri', git_uri), ('git_ref', git_ref),
                           ('git_branch', git_branch)):
            if not value:
                raise OsbsException("required parameter '%s' missing" % key)
        if operator_csv_modifications_url and not isolated:
            raise OsbsException('Only isolated build can update operator CSV metadata')
        kwargs = dict((k, v) for k, v in kwargs.items() if k in _BINARY_PARAMS)
        scenario = cluster.scenario()
        if scenario['create'].get('clone_delay'):
            time.sleep(scenario['create']['clone_delay'])
        if scenario['create'].get('clone', True):
            self._clone(git_uri, git_ref, git_branch)
        if scenario['create'].get('error'):  # clone / container.yaml / label failures
            raise make_exception(scenario['create']['error'])
        max_limit = kwargs.get('max_buildtime_limit')
        limit = scenario['create'].get('container_buildtime_limit') or 0
        if limit > max_limit:  # TypeError when max_buildtime_limit is missing
            raise OsbsException('Build limit cannot be more than %s and is set to %s'
                                % (max_limit, limit))
        limit = limit or kwargs.get('default_buildtime_limit') or 0
        scratch = kwargs.get('scratch')
        for key in _LIST_PARAMS:
            if kwargs.get(key) is not None and not isinstance(kwargs[key], list):
                raise OsbsValidationException('"%s" must be a list' % key)
        if scratch and isolated:
            raise OsbsValidationException('Build cannot be both isolated and scratch')
        if isolated and not re.match(r'^\d+\.\d+(\..+)?$', kwargs.get('release') or ''):
            raise OsbsValidationException(
                'For isolated builds, the release value must be in the format: x.y[.z]')
        if kwargs.get('signing_intent') and kwargs.get('compose_ids'):
            raise OsbsValidationException(
                'Please only define signing_intent -OR- compose_ids, not both')
        repo = git_uri.rstrip('/').split('/')[-1]
        if repo.endswith('.git'):
            repo = repo[:-4]
        repo = re.sub(r'[^a-z0-9-]', '-', repo.lower())
        branch = re.sub(r'[^a-z0-9-]', '-', git_branch.lower())
        if scratch:
            name = cluster.new_name(lambda n, ts: 'scratch-%d-%s' % (n, ts))
        elif isolated:
            name = cluster.new_name(lambda n, ts: 'isolated-%d-%s' % (n, ts))
        else:
            name = cluster.new_name(lambda n, ts: '%s-%s-%05x%d-%s' % (
                repo, branch, n % 0xfffff, n, ts))
        params = dict(kwargs, git_uri=git_uri, git_ref=git_ref, git_branch=git_branch,
                      component=component, flatpak=flatpak, isolated=isolated,
                      git_commit_depth=git_commit_depth, koji_task_id=koji_task_id,
                      koji_target=target,
                      operator_csv_modifications_url=operator_csv_modifications_url,
                      reactor_config_map=(self.os_conf.get_reactor_config_map_scratch()
                                          if scratch else
                                          self.os_conf.get_reactor_config_map()))
        params.pop('default_buildtime_limit', None)
        params.pop('max_buildtime_limit', None)
        user_params = self._user_params('build_user_params', params)
        rendered = self._render(name, user_params, limit, scratch)
        return self._post(cluster, 'binary-container', name, user_params, rendered)

    @osbsapi
    def create_source_container_build(self, **kwargs):
        return self.create_source_container_pipeline_run(**kwargs)

    @osbsapi
    def create_source_container_pipeline_run(self, component=None, koji_task_id=None,
                                             target=None, **kwargs):
        cluster = self._enter('create_source_container_build')
        kwargs = dict((k, v) for k, v in kwargs.items() if k in _SOURCE_PARAMS)
        if not component:
            raise OsbsValidationException('component must be provided')
        if kwargs.get('sources_for_koji_build_id') is None and \
                kwargs.get('sources_for_koji_build_nvr') is None:
            raise OsbsValidationException('At least one of sources_for_koji_build_id or '
                                          'sources_for_koji_build_nvr must be provided')
        scenario = cluster.scenario()
        if scenario['create'].get('error'):
            raise make_exception(scenario['create']['error'])
        name = cluster.new_name(lambda n, ts: 'source-%d-%s' % (n, ts))
        params = dict(kwargs, component=component, koji_task_id=koji_task_id,
                      koji_target=target)
        user_params = self._user_params('source_containers_user_params', params)
        rendered = self._render(name, user_params, 0, kwargs.get('scratch'))
        return self._post(cluster, 'source-container', name, user_params, rendered)

    # ------------------------------------------------------------ by name
    @osbsapi
    def get_build_name(self, build_response):
        if not isinstance(build_response, PipelineRun):
            raise OsbsException('Expected a PipelineRun, got %r' % (type(build_response),))
        return build_response.pipeline_run_name

    @osbsapi
    def get_build(self, build_name):
        cluster = self._enter('get_build', build_name)
        run = cluster.run(build_name)
        if run is None:
            return None
        return self._json(run, with_status=not cluster.note_status_read(build_name))

    @osbsapi
    def get_build_reason(self, build_name):
        run = self._status_run(self._enter('get_build_reason', build_name), build_name)
        return None if run is None else self._condition(run)['reason']

    @osbsapi
    def build_has_succeeded(self, build_name):
        run = self._status_run(self._enter('build_has_succeeded', build_name), build_name)
        return run is not None and self._condition(run)['reason'] in ('Succeeded', 'Completed')

    @osbsapi
    def build_not_finished(self, build_name):
        run = self._status_run(self._enter('build_not_finished', build_name), build_name)
        if run is None:
            return False
        cond = self._condition(run)
        return cond['status'] == 'Unknown' and cond['reason'] != CANCELLED_REASON

    @osbsapi
    def build_was_cancelled(self, build_name):
        run = self._status_run(self._enter('build_was_cancelled', build_name), build_name)
        return run is not None and self._condition(run)['reason'] == CANCELLED_REASON

    @osbsapi
    def wait_for_build_to_finish(self, build_name):
        deadline = time.time() + 5 * 3600
        while time.time() < deadline:
            if not self.build_not_finished(build_name):
                return None
            time.sleep(5)
        return None

    @osbsapi
    def get_build_results(self, build_name):
        run = self._status_run(self._enter('get_build_results', build_name), build_name)
        if run is None or run['condition'] is None:
            return {}
        out = {}
        for key, value in run['script']['results'].items():
            if value is not None:
                out[key] = value
        return out

    @osbsapi
    def get_final_platforms(self, build_name):
        cluster = self._enter('get_final_platforms', build_name)
        run = cluster.run(build_name)
        return None if run is None else run['script'].get('final_platforms')

    @osbsapi
    def get_build_error_message(self, build_name):
        cluster = self._enter('get_build_error_message', build_name)
        run = cluster.run(build_name)
        if run is None:
            return 'pipeline run removed;'
        if run['script'].get('error_message') is not None:
            return run['script']['error_message']
        message = self._condition(run).get('message')
        return '%s;' % message if message else 'pipeline run failed;'

    @osbsapi
    def get_task_results(self, build_name):
        cluster = self._enter('get_task_results', build_name)
        run = cluster.run(build_name)
        return {} if run is None else dict(run['script'].get('task_results') or {})

    @osbsapi
    def build_has_any_failed_tasks(self, build_name):
        cluster = self._enter('build_has_any_failed_tasks', build_name)
        run = cluster.run(build_name)
        return bool(run and run['condition'] and run['condition']['status'] == 'False')

    @osbsapi
    def build_has_any_cancelled_tasks(self, build_name):
        cluster = self._enter('build_has_any_cancelled_tasks', build_name)
        run = cluster.run(build_name)
        return bool(run and run['spec_status'])

    @osbsapi
    def cancel_build(self, build_name):
        cluster = self._enter('cancel_build', build_name)
        run = cluster.run(build_name)
        if run is None:
            raise OsbsException("Pipeline run '%s' can't be canceled, because it doesn't exist"
                                % build_name)
        if run['script'].get('cancel_delay'):
            time.sleep(run['script']['cancel_delay'])
        run = cluster.cancel(build_name)
        if run is None:
            raise OsbsException("Pipeline run '%s' can't be canceled, because it doesn't exist"
                                % build_name)
        cluster.log_call('cancel_build:done', build_name)
        return self._json(run)

    @osbsapi
    def remove_build(self, build_name):
        cluster = self._enter('remove_build', build_name)
        if not cluster.delete(build_name):
            body = json.dumps({'kind': 'Status', 'apiVersion': 'v1', 'status': 'Failure',
                               'message': 'pipelineruns.tekton.dev "%s" not found' % build_name,
                               'reason': 'NotFound', 'code': 404})
            raise OsbsResponseException(body, 404)
        return {'kind': 'Status', 'apiVersion': 'v1', 'status': 'Success',
                'details': {'name': build_name, 'group': 'tekton.dev', 'kind': 'pipelineruns'}}

    @osbsapi
    def get_build_logs(self, build_name, follow=False, wait=False):
        cluster = self._enter('get_build_logs', build_name)
        if follow or wait:
            return self._follow(cluster, build_name)
        spec = cluster.pop_fault('get_build_logs:complete')   # test control only
        if spec:
            raise make_exception(spec)
        run = cluster.run(build_name)
        if run is None:
            return None
        # each container's complete log (what the API keeps after the pods ended)
        logs = {}
        entries = list(run['script']['tasks'])
        if run['condition'] and run['condition']['status'] != 'Unknown':
            entries += list(run['script'].get('finally') or [])
        for task, lines, *_ in entries:
            if lines:
                logs.setdefault(task, {})['step-build'] = ''.join(
                    '%s\n' % line for line in lines)
        return logs

    # ------------------------------------------------------------ log stream
    def _follow(self, cluster, name):
        """Generator: nothing happens until iterated; errors are not wrapped."""
        run = cluster.run(name)
        if run is None:
            yield from self._blocked(None)
            return
        script = run['script']
        end_early = script.get('end_early_at')
        end_early = end_early if end_early is not None and cluster.use_early_end(name) else None
        drop = script.get('drop_after') or {}
        drop = drop if drop and cluster.use_drop(name) else {}
        delivered = {}
        for index, (task, line) in enumerate(sequence(script['tasks'])):
            if end_early is not None and index >= end_early:
                return  # the watches gave up: silently, mid-build
            delivered[task] = delivered.get(task, 0) + 1
            if task in drop and delivered[task] > drop[task]:
                continue  # that container's stream dropped: its lines never come
            while script.get('hold_at') is not None and index >= script['hold_at']:
                current = cluster.run(name)
                if current is None or current['released'] or current['condition']:
                    break
                time.sleep(0.02)
            current = cluster.run(name)
            if current is None:
                yield from self._blocked(script)
                return
            if current['spec_status']:
                yield from self._finally(cluster, name, script)   # cancelled
                return
            spec = cluster.pop_iter_fault(name, index)
            if spec:
                raise make_exception(spec)
            if script.get('pace'):
                time.sleep(script['pace'])
            yield task, line
        if script.get('finish', 'drained') == 'drained':
            for task, line in sequence(script.get('finally') or []):
                yield task, line
            cluster.finish_if_running(name, script['outcome'])
            return
        while True:
            current = cluster.run(name)
            if current is None:
                yield from self._blocked(script)
                return
            if current['spec_status']:
                yield from self._finally(cluster, name, script)
                return
            if current['condition']:
                return
            time.sleep(0.02)

    @staticmethod
    def _finally(cluster, name, script):
        """After a cancel: the finally tasks' lines over `finally_seconds`, then the end
        (when the run reaches its final condition or is deleted)."""
        lines = sequence(script.get('finally') or [])
        pace = float(script.get('finally_seconds') or 0.0) / max(len(lines) + 1, 1)
        for task, line in lines:
            time.sleep(pace)
            if cluster.run(name) is None:
                return
            yield task, line
        while True:
            current = cluster.run(name)
            if current is None or current['condition']['status'] != 'Unknown':
                return
            time.sleep(0.02)

    @staticmethod
    def _blocked(script):
        """A deleted run keeps the stream hanging for a while before it ends."""
        time.sleep((script or {}).get('deleted_stream_blocks', 20.0))
        return
        yield  # pragma: no cover - makes this a generator
