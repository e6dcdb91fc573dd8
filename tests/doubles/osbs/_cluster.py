"""The double's "cluster": pipeline runs kept as JSON files in a state directory.

Several processes share one cluster (a task handler in a kojid-like child process,
the test in the parent), so every change happens under an flock and is written
atomically. Not part of osbs-client: tests script scenarios and inspect calls here.

Scenario (scenario.json, merged by Cluster.configure):
  create:  {"error": exc spec or None (raised instead of creating: clone failure,
            label validation...), "lost_answer": bool (run created, then the retried
            POST answers 409 AlreadyExists), "container_buildtime_limit": int or None,
            "answer_delay": seconds between the run's creation and create_* returning,
            "clone_delay": seconds create_* spends "cloning" before creating anything}

The cluster also serves what a plugin's own `GET <openshift_url>apis/tekton.dev/v1beta1/
namespaces/NS/pipelineruns` (contract §7, §8) would answer: a PipelineRunList file at that
path under the state directory (openshift_url is file://), rewritten on every change; each
item carries the rendered template's `spec.params` (`user-params`: the user-params JSON).
  run:     copied into each new run:
    tasks          [[pipeline_task, [lines], group=0], ...] logs; round-robin per group
    hold_at        line index where the log stream blocks until release/cancel/delete
    end_early_at   the first follow ends silently after this many lines (run goes on)
    finish         'drained' (finishes once a follower read every line) | 'manual'
    outcome        {"status","reason","message"} when finished (not cancelled)
    results        pipelineResults {name: value}; None -> derived from user params
    error_message  what get_build_error_message returns (None -> derived)
    final_platforms  get_final_platforms() answer (default None, as with new pipelines)
    cancel_reason  final reason after cancel_build (Tekton: 'Cancelled')
    cancel_delay   seconds cancel_build takes
    finally        [[pipeline_task, [lines]], ...] the pipeline's finally tasks (the
                   `*-container-exit` task): they run after the regular tasks, and after a
                   cancel (CancelledRunFinally) before the run reaches its final condition
    finally_seconds  seconds a cancelled run spends in Unknown/CancelledRunFinally running
                   its finally tasks before it ends False/<cancel_reason> (contract §2.2);
                   a run deleted earlier records `finally_ended: false` in removed/
    drop_after     {pipeline_task: n}: in the first follow, the stream of that task drops
                   after n lines (< 60 s after its last line): its other lines never arrive
                   through the follow generator, which neither reopens it nor ends early;
                   get_build_logs without follow still returns them (contract §3)
    no_status_polls  status reads answered without a `status` (run just created)
    pace           seconds between log lines
    iter_faults    [{"at": line index, exc spec}] raised (unwrapped) during iteration, once
    deleted_stream_blocks  seconds a stream blocks after its run is deleted
  faults:  {method: [exc spec, ...]} raised by the next calls of that public method.
Exception spec: {"type": "OsbsException"|"OsbsResponseException"|"OsbsNetworkException"|
  "OsbsValidationException"|"OsbsCommitNotFound"|"ConnectionError"|"KeyError",
  "message": str, "status_code": int}.
"""

import contextlib
import copy
import fcntl
import json
import os
import random
import re
import time

DEFAULT_RUN = {
    'tasks': [['binary-container-build-x86-64', ['building x86_64', 'done x86_64']]],
    'hold_at': None,
    'end_early_at': None,
    'finish': 'drained',
    'outcome': {'status': 'True', 'reason': 'Succeeded', 'message': 'Tasks Completed: 5'},
    'results': None,
    'error_message': None,
    'final_platforms': None,
    'cancel_reason': 'Cancelled',
    'cancel_delay': 0.0,
    'finally': [],
    'finally_seconds': 0.0,
    'drop_after': {},
    'no_status_polls': 0,
    'pace': 0.0,
    'iter_faults': [],
    'deleted_stream_blocks': 20.0,
    'task_results': {},
}
DEFAULT_SCENARIO = {
    'create': {'error': None, 'lost_answer': False, 'container_buildtime_limit': None,
               'answer_delay': 0.0, 'clone_delay': 0.0},
    'run': DEFAULT_RUN,
    'faults': {},
}
REGISTRY = 'registry.example.com/containers'


def state_dir_from_url(url):
    """'file:///some/dir/' -> '/some/dir'; anything else -> None (unreachable)."""
    if not url or not url.startswith('file://'):
        return None
    return url[len('file://'):].rstrip('/') or '/'


class Cluster(object):
    def __init__(self, state_dir):
        self.state_dir = state_dir
        os.makedirs(os.path.join(state_dir, 'runs'), exist_ok=True)
        os.makedirs(os.path.join(state_dir, 'removed'), exist_ok=True)

    # ------------------------------------------------------------ storage
    @contextlib.contextmanager
    def _locked(self):
        with open(os.path.join(self.state_dir, 'lock'), 'a') as fobj:
            fcntl.flock(fobj, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fobj, fcntl.LOCK_UN)

    def _path(self, rel):
        return os.path.join(self.state_dir, rel)

    def _load(self, rel, default=None):
        try:
            with open(self._path(rel)) as fobj:
                return json.load(fobj)
        except FileNotFoundError:
            return default

    def _store(self, rel, data):
        tmp = self._path(rel + '.tmp.%d' % os.getpid())
        with open(tmp, 'w') as fobj:
            json.dump(data, fobj)
        os.rename(tmp, self._path(rel))
        if rel.startswith('runs' + os.sep):
            self._write_listings()

    def listing_path(self, namespace):
        return self._path(os.path.join('apis', 'tekton.dev', 'v1beta1', 'namespaces',
                                       namespace, 'pipelineruns'))

    def _write_listings(self, namespaces=()):
        """PipelineRunList per namespace (called under the lock)."""
        by_ns = dict((ns, []) for ns in namespaces)
        for name in self.runs():
            run = self._load(self._run_rel(name))
            if run:
                by_ns.setdefault(run['namespace'], []).append(list_item(run))
        base = self._path(os.path.join('apis', 'tekton.dev', 'v1beta1', 'namespaces'))
        if os.path.isdir(base):
            for ns in os.listdir(base):
                by_ns.setdefault(ns, [])
        for ns, items in by_ns.items():
            path = self.listing_path(ns)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = path + '.tmp.%d' % os.getpid()
            with open(tmp, 'w') as fobj:
                json.dump({'apiVersion': 'tekton.dev/v1beta1', 'kind': 'PipelineRunList',
                           'metadata': {'resourceVersion': str(time.time_ns())},
                           'items': items}, fobj)
            os.rename(tmp, path)

    @staticmethod
    def _run_rel(name):
        if not re.match(r'^[a-z0-9][a-z0-9.-]{0,62}$', name or ''):
            return None
        return os.path.join('runs', name + '.json')

    # ------------------------------------------------------------ test side
    def scenario(self):
        data = copy.deepcopy(DEFAULT_SCENARIO)
        stored = self._load('scenario.json', {})
        for key in ('create', 'run'):
            data[key].update(stored.get(key, {}))
        data['faults'] = stored.get('faults', {})
        return data

    def configure(self, create=None, run=None):
        with self._locked():
            stored = self._load('scenario.json', {})
            if create:
                stored.setdefault('create', {}).update(create)
            if run:
                stored.setdefault('run', {}).update(run)
            self._store('scenario.json', stored)

    def inject(self, method, spec, count=1):
        """The next `count` calls of public method `method` raise `spec`."""
        with self._locked():
            stored = self._load('scenario.json', {})
            stored.setdefault('faults', {}).setdefault(method, []).extend([spec] * count)
            self._store('scenario.json', stored)

    def write_conf(self, path, sections=('default_binary', 'default_source'), **extra):
        """An osbs.conf pointing at this cluster (and a pipeline run template)."""
        template = os.path.join(self.state_dir, 'pipelinerun.yaml')
        with open(template, 'w') as fobj:
            fobj.write('apiVersion: tekton.dev/v1beta1\nkind: PipelineRun\nmetadata:\n'
                       '  name: $osbs_pipeline_run_name\n  namespace: $osbs_namespace\n'
                       'spec:\n  timeout: $osbs_buildtime_limit\n  params:\n'
                       '    - name: user-params\n      value: \'$osbs_user_params_json\'\n')
        lines = ['[general]', 'verbose = false', '']
        for section in sections:
            lines += ['[%s]' % section, 'openshift_url = file://%s/' % self.state_dir,
                      'namespace = ns-%s' % section.replace('_', '-'),
                      'pipeline_run_path = %s' % template,
                      'reactor_config_map = rcm', 'reactor_config_map_scratch = rcm-scratch']
            lines += ['%s = %s' % item for item in sorted(extra.items())]
            lines.append('')
        with open(path, 'w') as fobj:
            fobj.write('\n'.join(lines))
        with self._locked():
            self._write_listings(['ns-%s' % s.replace('_', '-') for s in sections])
        return path

    def runs(self):
        return sorted(f[:-5] for f in os.listdir(self._path('runs')) if f.endswith('.json'))

    def removed_run(self, name):
        rel = self._run_rel(name)
        return self._load(rel.replace('runs/', 'removed/', 1)) if rel else None

    def run(self, name):
        rel = self._run_rel(name)
        return advance(self._load(rel)) if rel else None

    def _update(self, name, func):
        with self._locked():
            rel = self._run_rel(name)
            run = advance(self._load(rel)) if rel else None
            if run is None:
                return None
            result = func(run)
            self._store(rel, run)
            return result if result is not None else run

    def release(self, name):
        """Let a held log stream go on."""
        return self._update(name, lambda run: run.__setitem__('released', True))

    def finish(self, name, status='True', reason='Succeeded', message=''):
        def _fin(run):
            run['condition'] = {'status': status, 'reason': reason, 'message': message}
            run['released'] = True
        return self._update(name, _fin)

    def delete(self, name):
        """Delete a run behind the plugin's back."""
        rel = self._run_rel(name)
        with self._locked():
            run = advance(self._load(rel)) if rel else None
            if run is not None:
                # kept aside so tests can still inspect what was created, and when
                run['deleted_at'] = time.time()
                if run.get('cancelled_at') is not None:
                    run['finally_ended'] = run.get('finally_ended_at') is not None
                self._store(os.path.join('removed', name + '.json'), run)
                os.unlink(self._path(rel))
                self._write_listings()
                return True
        return False

    def calls(self, method=None):
        out = []
        try:
            with open(self._path('calls.jsonl')) as fobj:
                for line in fobj:
                    entry = json.loads(line)
                    if method is None or entry['method'] == method:
                        out.append(entry)
        except FileNotFoundError:
            pass
        return out

    # ------------------------------------------------------------ engine side
    def log_call(self, method, name=None):
        entry = json.dumps({'method': method, 'name': name, 'pid': os.getpid(),
                            't': time.time()}) + '\n'
        fd = os.open(self._path('calls.jsonl'), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, entry.encode('utf-8'))
        finally:
            os.close(fd)

    def pop_fault(self, method):
        with self._locked():
            stored = self._load('scenario.json', {})
            queue = stored.get('faults', {}).get(method)
            if not queue:
                return None
            spec = queue.pop(0)
            self._store('scenario.json', stored)
            return spec

    def pop_iter_fault(self, name, index):
        def _pop(run):
            for i, spec in enumerate(run['script'].get('iter_faults', [])):
                if spec.get('at') == index:
                    del run['script']['iter_faults'][i]
                    return spec
            return False
        found = self._update(name, _pop)
        return found if isinstance(found, dict) and 'type' in found else None

    def new_name(self, prefix, existing_check=True):
        for _ in range(1000):
            stamp = time.strftime('%Y%m%d%H%M%S', time.gmtime())
            name = prefix(random.randint(10000, 99999), stamp)[:63].rstrip('-.')
            rel = self._run_rel(name)
            if rel and not os.path.exists(self._path(rel)):
                return name
        raise RuntimeError('no free run name')

    def add_run(self, name, namespace, kind, user_params, script):
        run = {'name': name, 'namespace': namespace, 'kind': kind,
               'user_params': user_params, 'created': time.time(), 'spec_status': None,
               'condition': None, 'script': script, 'released': False,
               'early_end_used': False, 'status_reads': 0}
        if script.get('results') is None:
            script['results'] = default_results(user_params)
        with self._locked():
            self._store(self._run_rel(name), run)
        return run

    def note_status_read(self, name):
        """Count a status read; True when the run has no `status` yet."""
        def _count(run):
            run['status_reads'] += 1
            return run['status_reads'] <= run['script'].get('no_status_polls', 0)
        return self._update(name, _count) is True

    def finish_if_running(self, name, condition):
        def _fin(run):
            if run['condition'] is None:
                run['condition'] = condition
        return self._update(name, _fin)

    def cancel(self, name):
        """spec.status CancelledRunFinally: the running tasks stop, the finally tasks run
        (Unknown/CancelledRunFinally), then the run ends False/<cancel_reason>."""
        def _cancel(run):
            run['spec_status'] = 'CancelledRunFinally'
            if run['condition'] is None:
                run['cancelled_at'] = time.time()
                run['condition'] = {'status': 'Unknown', 'reason': 'CancelledRunFinally',
                                    'message': 'PipelineRun "%s" was cancelled; running its '
                                               'finally tasks' % name}
            return advance(run)
        return self._update(name, _cancel)

    def use_drop(self, name):
        def _use(run):
            if run.get('drop_used'):
                return False
            run['drop_used'] = True
            return True
        return self._update(name, _use) is True

    def use_early_end(self, name):
        def _use(run):
            if run['early_end_used']:
                return False
            run['early_end_used'] = True
            return True
        return self._update(name, _use) is True


def advance(run):
    """A cancelled run whose finally tasks had their time reaches its final condition
    (computed on every read: the state lives in files shared by processes)."""
    if not run or run.get('cancelled_at') is None or run.get('finally_ended_at') is not None:
        return run
    ends = run['cancelled_at'] + float(run['script'].get('finally_seconds') or 0.0)
    if time.time() >= ends and run['condition'] and \
            run['condition'].get('reason') == 'CancelledRunFinally':
        run['finally_ended_at'] = ends
        run['condition'] = {'status': 'False',
                            'reason': run['script'].get('cancel_reason', 'Cancelled'),
                            'message': 'PipelineRun "%s" was cancelled' % run['name']}
    return run


def list_item(run):
    """A run as it appears in a PipelineRunList (and, with status, in a GET)."""
    data = {'apiVersion': 'tekton.dev/v1beta1', 'kind': 'PipelineRun',
            'metadata': {'name': run['name'], 'namespace': run['namespace'],
                         'creationTimestamp': time.strftime(
                             '%Y-%m-%dT%H:%M:%SZ', time.gmtime(run['created'])),
                         'labels': {'tekton.dev/pipeline': run['kind']}},
            'spec': {'params': [{'name': 'user-params',
                                 'value': json.dumps(run['user_params'], sort_keys=True)}]}}
    if run['spec_status']:
        data['spec']['status'] = run['spec_status']
    if run['condition']:
        data['status'] = {'conditions': [dict(run['condition'], type='Succeeded')]}
    return data


def default_results(user_params):
    component = user_params.get('component') or 'image'
    tag = '%s-%s' % (user_params.get('koji_target') or 'target',
                     user_params.get('koji_task_id') or 0)
    results = {
        'repositories': {'primary': [] if user_params.get('scratch') else
                         ['%s/%s:1.0-1' % (REGISTRY, component)],
                         'unique': ['%s/%s:%s' % (REGISTRY, component, tag)],
                         'floating': []},
        'annotations': {'plugins-metadata': {'errors': {}}},
    }
    if not user_params.get('scratch'):
        results['koji-build-id'] = 987654
    return results


def sequence(tasks):
    """Round-robin one line per active task, group after group."""
    groups = {}
    for entry in tasks:
        group = entry[2] if len(entry) > 2 else 0
        groups.setdefault(group, []).append([entry[0], list(entry[1])])
    out = []
    for group in sorted(groups):
        active = groups[group]
        while active:
            for item in list(active):
                if item[1]:
                    out.append((item[0], item[1].pop(0)))
                if not item[1]:
                    active.remove(item)
    return out
