"""Failure and cancellation paths of the native parent flow: refunds, sibling
cancellation, no premature tags, re-runs with old children."""

import logging

import koji
import pytest

from koji_containerbuild.errors import BackendError, OptionError
from koji_containerbuild.registry import Registry
from tests.doubles.hub_session import TASK
from tests.native_koji.conftest import buildah_available, dockerfile, make_repo

BUILD = koji.BUILD_STATES
needs_buildah = pytest.mark.skipif(not buildah_available(), reason='needs buildah as root')


def _refunds(hub):
    return [a for a, _k in hub.calls_of('CGRefundBuild')]


def _repo(git_server, repo_name, small_rootfs, **kwargs):
    return make_repo(git_server, repo_name, {'Dockerfile': dockerfile(**kwargs),
                                        'rootfs.tar': small_rootfs})[0]


def test_failing_arch_cancels_siblings_and_refunds(world_factory, git_server, small_rootfs):
    world = world_factory(arches='x86_64 aarch64')
    world.arch_behaviour = {'aarch64': 'leave', 'x86_64': 'fail'}
    src = _repo(git_server, 'fail-arch', small_rootfs)
    task_id, params = world.start_parent(src)
    with pytest.raises(BackendError) as info:
        world.run_parent(src, task_id=task_id)
    assert 'createContainer for x86_64' in str(info.value)
    assert 'RUN exited 1' in str(info.value)
    hub = world.hub
    states = dict((hub.task(t)['arch'], hub.task(t)['state']) for t in hub.children(task_id))
    assert states == {'x86_64': TASK['FAILED'], 'aarch64': TASK['CANCELED']}
    build = hub.getBuild('demo-container-1.0-1')
    assert build['state'] == BUILD['FAILED']
    assert [r[3] for r in _refunds(hub)] == [BUILD['FAILED']]
    assert not hub.calls_of('CGImport')


@pytest.mark.parametrize('signal_exc', [KeyboardInterrupt, SystemExit])
def test_cancellation_refunds_as_canceled(world_factory, git_server, small_rootfs, signal_exc):
    world = world_factory(arches='x86_64 aarch64')

    def killed(task_id, arglist):
        raise signal_exc()   # kojid's SIGINT/SIGTERM while the parent waits
    world.arch_behaviour = {'aarch64': 'leave', 'x86_64': killed}
    src = _repo(git_server, 'cancel-%s' % signal_exc.__name__.lower(), small_rootfs)
    with pytest.raises(signal_exc):
        world.run_parent(src)
    hub = world.hub
    assert hub.getBuild('demo-container-1.0-1')['state'] == BUILD['CANCELED']
    assert [r[3] for r in _refunds(hub)] == [BUILD['CANCELED']]


def test_refund_failure_does_not_mask_error(world_factory, git_server, small_rootfs):
    world = world_factory()
    world.arch_behaviour = {'x86_64': 'fail'}
    world.hub.fail_next('CGRefundBuild', koji.GenericError('hub hiccup'))
    src = _repo(git_server, 'refund-fails', small_rootfs)
    with pytest.raises(BackendError) as info:
        world.run_parent(src)
    assert 'RUN exited 1' in str(info.value)
    assert len(_refunds(world.hub)) == 1


def test_rerun_ignores_old_children(world_factory, git_server, small_rootfs):
    """A re-run (same task id after a kojid restart) meets the first run's children:
    a finished one keeps its label, an active one is cancelled; new labels are used."""
    world = world_factory(arches='x86_64 aarch64')
    src = _repo(git_server, 'rerun', small_rootfs)
    task_id, _params = world.start_parent(src)
    hub = world.hub
    old_done = hub.add_task('createContainer', [src, 'old', 'x86_64', {}], owner='alice',
                            state=TASK['CLOSED'], parent=task_id, label='x86_64',
                            arch='x86_64', host=False)
    old_open = hub.add_task('createContainer', [src, 'old', 'aarch64', {}], owner='alice',
                            state=TASK['OPEN'], parent=task_id, label='aarch64',
                            arch='aarch64', host=False)
    world.arch_behaviour = {'aarch64': 'leave', 'x86_64': 'fail'}
    with pytest.raises(BackendError) as info:
        world.run_parent(src, task_id=task_id)
    assert 'RUN exited 1' in str(info.value)
    new = [hub.task(t) for t in hub.children(task_id) if t not in (old_done, old_open)]
    assert sorted(t['label'] for t in new) == ['aarch64~2', 'x86_64~2']
    assert all(t['_request'][1] == 'f40-container-candidate' for t in new)
    assert hub.task(old_done)['state'] == TASK['CLOSED']
    assert hub.task(old_open)['state'] == TASK['CANCELED']


def test_osbs_only_options_refused_before_reserving(world_factory, git_server, small_rootfs):
    world = world_factory()
    src = _repo(git_server, 'osbs-only', small_rootfs)
    with pytest.raises(OptionError) as info:
        world.run_parent(src, {'compose_ids': [3]})
    assert 'compose_ids' in str(info.value) and 'osbs' in str(info.value)
    assert not world.hub.calls_of('CGInitBuild')


def test_no_cg_access_is_clear(world_factory, git_server, small_rootfs):
    world = world_factory()
    world.hub._cg_access.clear()
    src = _repo(git_server, 'no-cg', small_rootfs)
    with pytest.raises(BackendError) as info:
        world.run_parent(src)
    assert 'grant-cg-access' in str(info.value)
    assert not world.hub.children(world.hub.calls_of('getTaskInfo')[0][0][0])


@needs_buildah
def test_failed_import_publishes_no_tag_and_rebuild_works(world_factory, git_server,
                                                          small_rootfs, registry_url):
    world = world_factory()
    src = _repo(git_server, 'import-fails', small_rootfs, name='acme/import-fails')
    world.hub.fail_next('CGImport', koji.GenericError('cg_import policy says no'))
    with pytest.raises(BackendError) as info:
        world.run_parent(src)
    assert 'import' in str(info.value) and 'policy says no' in str(info.value)
    hub = world.hub
    assert hub.getBuild('demo-container-1.0-1')['state'] == BUILD['FAILED']
    reg = Registry(registry_url, tls_verify=False)
    for tag in ('1.0-1', 'latest', '1.0'):
        with pytest.raises(BackendError):
            reg.get_manifest('acme/import-fails', tag)
    assert not hub.calls_of('host.tagBuild')
    # nothing blocks building the same NVR again
    _task, result = world.run_parent(src)
    assert result['koji_builds'] == [str(hub.getBuild('demo-container-1.0-1')['id'])]
    assert reg.get_manifest('acme/import-fails', '1.0-1')


@needs_buildah
def test_tag_denied_keeps_floating_tags(world_factory, git_server, small_rootfs,
                                        registry_url):
    world = world_factory()
    world.hub.set_policy('tag', 'deny tag policy: not for you')
    src = _repo(git_server, 'tag-denied', small_rootfs, name='acme/tag-denied')
    with pytest.raises(BackendError) as info:
        world.run_parent(src)
    message = str(info.value)
    assert 'imported' in message and 'not tagged' in message
    hub = world.hub
    build = hub.getBuild('demo-container-1.0-1')
    assert build['state'] == BUILD['COMPLETE']
    assert hub.tagged('f40-container-candidate') == []
    reg = Registry(registry_url, tls_verify=False)
    assert reg.get_manifest('acme/tag-denied', '1.0-1')
    with pytest.raises(BackendError):
        reg.get_manifest('acme/tag-denied', 'latest')


def test_non_koji_error_in_arch_task_is_one_clear_line(world_factory, git_server,
                                                       small_rootfs, monkeypatch):
    from koji_containerbuild import native_build

    def broken(*args, **kwargs):
        raise RuntimeError('disk exploded at http://user:pw@host/x')
    monkeypatch.setattr(native_build, 'build_arch', broken)
    world = world_factory()
    src = _repo(git_server, 'non-koji-error', small_rootfs)
    task_id, _params = world.start_parent(src)
    with pytest.raises(BackendError) as info:
        world.run_parent(src, task_id=task_id)
    hub = world.hub
    [child] = [t for t in hub.children(task_id)
               if hub.task(t)['method'] == 'createContainer']
    fault = hub.task(child)['_fault']
    assert isinstance(fault, BackendError)
    assert 'createContainer for x86_64 failed: RuntimeError: disk exploded' in str(fault)
    assert 'Traceback' not in str(info.value) and 'RuntimeError: disk exploded' in str(
        info.value)
    log = hub.uploaded_files(child)['x86_64.log'].decode()
    assert 'ERROR: createContainer for x86_64 failed: RuntimeError: disk exploded' in log
    assert 'user:pw' not in log and 'user:pw' not in str(fault)
    assert hub.getBuild('demo-container-1.0-1')['state'] == BUILD['FAILED']


def test_subtasks_get_the_real_url_pinned_to_the_commit(world_factory, git_server,
                                                        small_rootfs, monkeypatch, caplog):
    """With allow_password_in_scm_url the subtasks need the credentials to fetch: they
    get the URL as given (pinned to the commit), not the redacted source."""
    from koji_containerbuild import plan as plan_mod
    src, sha = make_repo(git_server, 'real-url', {'Dockerfile': dockerfile(),
                                                  'rootfs.tar': small_rootfs})
    real_prepare = plan_mod.prepare_binary
    with_password = src.replace('git://', 'git://bob:S3cretpw@', 1).split('#')[0] + '#main'

    def prepare(*args, **kwargs):
        plan = real_prepare(*args, **kwargs)
        # as if fetched from a URL with credentials (git:// itself has none)
        plan.checkout.url = with_password
        return plan
    monkeypatch.setattr(plan_mod, 'prepare_binary', prepare)
    world = world_factory()
    seen = []

    def capture(task_id, arglist):
        seen.append(arglist[0])
        world.hub.open_task(task_id)
        world.hub.finish_task(task_id, fault=koji.BuildError('stop here'))
    world.arch_behaviour = {'x86_64': capture}
    caplog.set_level(logging.DEBUG)
    with pytest.raises(BackendError):
        world.run_parent(src)
    assert 'S3cretpw' not in caplog.text
    assert seen == [with_password.split('#')[0] + '#' + sha]
    uploads = '\n'.join(d.decode('utf-8', 'replace') for d in world.hub.uploads.values())
    assert 'S3cretpw' not in uploads
