"""buildContainer/buildSourceContainer through the OSBS backend, in process: real
BaseTaskHandler, real koji.daemon.SCM against a git daemon, hub and osbs doubles."""

import json

import koji
import pytest

from koji_containerbuild import errors
from tests.builder.conftest import TARGET


def _src(git_daemon):
    return git_daemon.url('demo')


def _opts(**extra):
    opts = {'git_branch': 'main', 'scratch': False}
    opts.update(extra)
    return opts


def test_success_result_logs_and_create_args(git_daemon, make_task, osbs_double, hub):
    osbs_double.configure(run={'tasks': [
        ['clone', ['cloning']],
        ['binary-container-build-x86-64', ['x1', 'x2']],
        ['binary-container-build-aarch64', ['a1']],
        ['binary-container-postbuild', [
            '2024 - atomic_reactor.x - USER_WARNING - {"message": "Base image is old"}']],
    ]})
    task_id, handler = make_task('buildContainer', [_src(git_daemon), TARGET, _opts()])
    result = handler.run()
    assert result['koji_builds'] == ['987654']
    assert result['user_warnings'] == ['Base image is old']
    assert any(r.endswith('demo-container:1.0-1') for r in result['repositories'])
    (name,) = [c['name'] for c in osbs_double.calls('create_binary_container_build')] or [None]
    runs = osbs_double.calls('create_binary_container_build')
    assert len(runs) == 1
    files = hub.uploaded_files(task_id)
    assert files['x86_64.log'] == b'x1\nx2\n'
    assert files['aarch64.log'] == b'a1\n'
    assert b'clone: cloning' in files['osbs-build.log']
    assert files['user_warnings.log'] == b'Base image is old\n'
    record = json.loads(files['osbs-run.json'])
    assert record['state'] == 'finished' and record['outcome'] == 'succeeded'
    assert record['removed'] is True
    assert osbs_double.runs() == []   # removed afterwards
    (removed,) = osbs_double.calls('remove_build')
    assert removed['name'] == record['name']
