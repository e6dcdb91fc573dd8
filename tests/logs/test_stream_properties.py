"""Property tests on generated OSBS log streams: marker lines with hostile paths,
malformed user-warning JSON, invalid UTF-8. Only Koji faults may come out (none are
expected here), nothing outside the work directory is read, and every routed line reaches
the hub exactly once, in order."""

import json
import os
import shutil
import tempfile

import koji
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from koji_containerbuild.logs import LogRelay
from koji_containerbuild.osbs_logs import (MARKER_TASKS, WARNING_TASKS, OsbsLogRouter,
                                           parse_user_warning)
from tests.doubles.hub_session import HubSessionDouble

SENTINEL = 'SENTINEL-OUTSIDE-WORKDIR'

TASKS = st.sampled_from(['clone', 'binary-container-prebuild', 'binary-container-build-x86-64',
                         'binary-container-build-aarch64', 'binary-container-build-ppc64le',
                         'binary-container-cachito', 'binary-container-exit',
                         'source-container-exit', '', 'x' * 300])

HOSTILE_PATHS = st.one_of(
    st.sampled_from(['../outside/secret.json', '/etc/passwd', 'links/out.json',
                     'links/updir/outside/secret.json', 'links/dir', 'fifo', '.', '..',
                     'tasks/../../outside/secret.json', 'ok/metadata.json', 'ok/',
                     'osbs-build.log', 'x86_64.log', '', '/']),
    st.text(alphabet='./ab\\\0~-_:', max_size=40),
)

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids,
                                                               max_size=3),
    max_leaves=6)

WARNING_PAYLOADS = st.one_of(
    JSONISH.map(json.dumps),
    st.dictionaries(st.sampled_from(['message', 'msg', 'x']), JSONISH, max_size=2)
    .map(json.dumps),
    st.text(max_size=30).map(lambda t: '{' + t + '}'),
)


def _marker(path):
    return '2024 - koji_import - INFO - platform:_metadata_ ' + path


def _warning(payload):
    return '2024-05-01 12:00:00,123 - atomic_reactor.x - USER_WARNING - ' + payload


LINES = st.one_of(
    st.text(max_size=80),
    st.binary(max_size=80),
    HOSTILE_PATHS.map(_marker),
    WARNING_PAYLOADS.map(_warning),
    WARNING_PAYLOADS.map(lambda p: _warning(p).encode('utf-8') + b'\xff\xfe'),
)

STREAMS = st.lists(st.tuples(TASKS, LINES), max_size=40)


def _tree(root):
    work = os.path.join(root, 'koji', 'work')
    outside = os.path.join(root, 'koji', 'outside')
    os.makedirs(os.path.join(work, 'ok'))
    os.makedirs(os.path.join(work, 'links', 'dir'))
    os.makedirs(outside)
    with open(os.path.join(work, 'ok', 'metadata.json'), 'w') as fo:
        fo.write('{"inside": true}')
    with open(os.path.join(outside, 'secret.json'), 'w') as fo:
        fo.write(SENTINEL)
    with open(os.path.join(root, 'koji', SENTINEL), 'w') as fo:
        fo.write(SENTINEL)
    os.symlink(os.path.join(outside, 'secret.json'), os.path.join(work, 'links', 'out.json'))
    os.symlink(os.path.join(root, 'koji'), os.path.join(work, 'links', 'updir'))
    os.mkfifo(os.path.join(work, 'fifo'))
    return work


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=STREAMS, requested=st.lists(st.sampled_from(['x86_64', 'aarch64']), max_size=2),
       late=st.booleans())
def test_generated_streams(stream, requested, late):
    root = tempfile.mkdtemp(prefix='osbs-stream-')
    try:
        work = _tree(root)
        hub = HubSessionDouble()
        task_id = hub.add_task()
        relay = LogRelay(hub, koji.pathinfo.taskrelpath(task_id), os.path.join(root, 'b'),
                         flush_interval=3600)
        router = OsbsLogRouter(relay, work, platforms=requested, scratch=True)
        try:
            for i, (task, line) in enumerate(stream):
                try:
                    router.feed(task, line)
                except koji.GenericError:
                    pass  # a Koji fault is an acceptable answer; nothing else is
                if late and i == len(stream) // 2:
                    router.confirm_platforms(['ppc64le'])
            warnings = router.finish()
        finally:
            relay.close()
        out = hub.uploaded_files(task_id)
        for name, data in out.items():
            assert SENTINEL.encode() not in data, name
        # copied metadata can only be the file inside the work dir
        for name in router.metadata_files:
            assert out[name] == b'{"inside": true}'
        assert all(isinstance(w, str) for w in warnings) and warnings == sorted(warnings)
        # every line that is neither a marker nor a parsed warning reached osbs-build.log
        # exactly once, in order
        expected = []
        for task, line in stream:
            text = line.decode('utf-8', 'replace') if isinstance(line, bytes) else line
            if ('platform:_metadata_' in text and task in MARKER_TASKS) or \
                    (task in WARNING_TASKS and parse_user_warning(text) is not None):
                continue
            expected.append('%s: %s\n' % (task, text))
        assert out.get('osbs-build.log', b'') == ''.join(expected).encode('utf-8')
    finally:
        shutil.rmtree(root)
