"""Hostile inputs of the OSBS backend, each at the size limit the code enforces.

CASES = [(name, size_text, func)]: the runner (benchmarks/hostile_inputs/run.py) runs each
func() in a child process and prints its time and peak RSS over idle. Each func builds its
input and feeds it through the real code path (router, relay into the hub double, the
reconciliation, the output capture, the user-warning parser).
"""

import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from koji_containerbuild import osbs_logs  # noqa: E402
from koji_containerbuild.backends import osbs_capture  # noqa: E402
from koji_containerbuild.backends.osbs_reconcile import StreamTally, reconcile  # noqa: E402

WARN_PREFIX = '2024-05-01 12:00:00,123 - atomic_reactor.plugins.x'
LONG_LINE = 640 * 1024              # the line of issue 7 item 13
RECONCILE_LINES = 100000            # per platform (issue 9)
CAPTURE_BYTES = 64 * 1024 * 1024    # git output without a newline through the capture


class _Sink(object):
    """A relay that keeps nothing (the router's own cost, not the hub's)."""

    def __init__(self):
        self.bytes = 0

    def write(self, filename, line):
        self.bytes += len(line) + 1

    def write_bytes(self, filename, data):
        self.bytes += len(data)

    def has_file(self, filename):
        return False


def _router():
    return osbs_logs.OsbsLogRouter(_Sink(), None, platforms=['x86_64'])


def warning_separators_640k():
    """The quadratic shape for the old regex, from an allowlisted task: separators and
    no valid end (over MAX_WARNING_LINE: never parsed, only relayed)."""
    line = 'x' + osbs_logs.USER_WARNING_SEP * (LONG_LINE // len(osbs_logs.USER_WARNING_SEP))
    _router().feed('binary-container-exit', line + '}')


def warning_separators_at_limit():
    """The same shape at MAX_WARNING_LINE, which is parsed: every separator is a
    candidate for osbs-client's greedy regex."""
    count = (osbs_logs.MAX_WARNING_LINE - 2) // len(osbs_logs.USER_WARNING_SEP)
    line = 'x' + osbs_logs.USER_WARNING_SEP * count + '}'
    assert len(line) <= osbs_logs.MAX_WARNING_LINE
    for _ in range(10):   # ten such lines in a row
        _router().feed('binary-container-postbuild', line)


def warning_deep_json_at_limit():
    """A warning whose JSON nests as deep as the line limit allows."""
    depth = (osbs_logs.MAX_WARNING_LINE - len(WARN_PREFIX) - 40) // 2
    line = '%s - USER_WARNING - {"message": %s%s}' % (WARN_PREFIX, '[' * depth, ']' * depth)
    assert len(line) <= osbs_logs.MAX_WARNING_LINE
    router = _router()
    router.feed('binary-container-prebuild', line)
    router.finish()


def warning_from_build_task_640k():
    """A RUN step printing a 640 KB warning-shaped line: not a warning, relayed as is."""
    line = '%s - USER_WARNING - {"message": "%s"}' % (WARN_PREFIX, 'y' * LONG_LINE)
    router = _router()
    router.feed('binary-container-build-x86-64', line)
    assert router.finish() == []


def reconcile_platform():
    """A 100,000-line platform log: the stream delivered 5%, the rest comes from the
    complete log (one copy, as osbs-client returns it) through the router."""
    platforms = ['x86-64']
    complete = {}
    tally = StreamTally()
    for arch in platforms:
        task = 'binary-container-build-%s' % arch
        text = []   # built in pieces: the input itself is held once
        for start in range(0, RECONCILE_LINES, 1000):
            text.append(''.join(
                '2024-05-01 12:00:00,%03d - atomic_reactor.tasks.binary - INFO - STEP %d: '
                'RUN dnf -y install package-%d && echo done\n' % (i % 1000, i, i)
                for i in range(start, start + 1000)))
        complete[task] = {'step-binary-container-build': ''.join(text)}
        del text
        for i in range(RECONCILE_LINES // 20):
            tally.add(task, '2024-05-01 12:00:00,%03d - atomic_reactor.tasks.binary - INFO - '
                            'STEP %d: RUN dnf -y install package-%d && echo done'
                      % (i % 1000, i, i))
    router = osbs_logs.OsbsLogRouter(_Sink(), None, platforms=['x86_64'])
    recovered = reconcile(complete, tally, router.feed, lambda note: None)
    assert sum(recovered.values()) == RECONCILE_LINES - RECONCILE_LINES // 20


def capture_64mib_without_newline():
    """osbs-client's git writing 64 MiB without a newline into the captured fds."""
    lines = []
    saved = os.dup(1)
    try:
        with osbs_capture.capture_fds(lines.append):
            subprocess.run(['sh', '-c', 'head -c %d /dev/zero | tr "\\0" x' % CAPTURE_BYTES])
    finally:
        os.close(saved)
    assert all(len(line) <= osbs_capture.MAX_LINE + 20 for line in lines)


def _listing(tmp, body):
    path = os.path.join(tmp, 'apis', 'tekton.dev', 'v1beta1', 'namespaces', 'ns')
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, 'pipelineruns'), 'w') as fobj:
        fobj.write(body)

    class Conf(object):
        def get_openshift_base_uri(self):
            return 'file://%s/' % tmp

        def get_namespace(self):
            return 'ns'

        def get_oauth2_token(self):
            return None

        def get_verify_ssl(self):
            return True
    return Conf()


def run_listing_page_of_tiny_items():
    """One page of the plugin's own PipelineRun listing at its byte limit
    (osbs_run.MAX_PAGE_BYTES), packed with the most JSON objects it can hold: parsed,
    then refused (more than MAX_PAGE_ITEMS runs). The whole listing is at most
    MAX_LIST_BYTES (16 such pages)."""
    from koji_containerbuild.backends import osbs_run
    tmp = tempfile.mkdtemp(prefix='hostile-osbs-')
    try:
        item = '{"a":{}},'
        count = (osbs_run.MAX_PAGE_BYTES - 100) // len(item)
        conf = _listing(tmp, '{"kind": "PipelineRunList", "items": [' + item * count + '{}]}')
        try:
            osbs_run.find_run_of_task(conf, 1, _NullLogger())
        except ValueError as exc:
            assert 'in one page' in str(exc)
        else:
            raise AssertionError('a page of %d runs was accepted' % count)
    finally:
        shutil.rmtree(tmp)


def run_listing_page_of_big_params():
    """One page at MAX_PAGE_BYTES of MAX_PAGE_ITEMS runs whose user params are big JSON
    strings (each parsed)."""
    from koji_containerbuild.backends import osbs_run
    tmp = tempfile.mkdtemp(prefix='hostile-osbs-')
    try:
        size = (osbs_run.MAX_PAGE_BYTES - 20000) // osbs_run.MAX_PAGE_ITEMS // 2
        params = '{\\"k\\": [' + '1,' * (size // 2 - 20) + '1]}'
        item = ('{"metadata": {"name": "r"}, "spec": {"params": [{"name": "user-params", '
                '"value": "%s"}]}}' % params)
        conf = _listing(tmp, '{"kind": "PipelineRunList", "items": [%s]}'
                        % ','.join([item] * osbs_run.MAX_PAGE_ITEMS))
        assert osbs_run.find_run_of_task(conf, 1, _NullLogger()) is None
    finally:
        shutil.rmtree(tmp)


class _NullLogger(object):
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


CASES = [
    ('osbs user warning, separators (relayed)', '640 KiB line', warning_separators_640k),
    ('osbs user warning, separators (parsed)', '10 x 64 KiB lines',
     warning_separators_at_limit),
    ('osbs user warning, nested JSON', '64 KiB line', warning_deep_json_at_limit),
    ('osbs user warning from a RUN step', '640 KiB line', warning_from_build_task_640k),
    ('osbs log reconciliation', '100,000-line platform log', reconcile_platform),
    ('osbs-client output capture', '64 MiB, no newline', capture_64mib_without_newline),
    ('osbs run listing, tiny objects', '1 MiB page', run_listing_page_of_tiny_items),
    ('osbs run listing, big user params', '1 MiB page, 100 runs',
     run_listing_page_of_big_params),
]


if __name__ == '__main__':
    import resource
    import time
    for name, size, func in CASES:
        start = time.monotonic()
        func()
        print('%-40s %-20s %6.3f s  maxrss %.1f MiB' % (
            name, size, time.monotonic() - start,
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0))
