"""Each createContainer task builds in its own buildah storage, removed when it ends."""

import glob
import os
import shutil
import threading
import time

import pytest

from koji_containerbuild import buildah
from koji_containerbuild.backends import native_config
from koji_containerbuild.errors import BackendError
from tests.native_koji.conftest import buildah_available, make_repo
from tests.native_koji.signals_support import storage_left

needs_buildah = pytest.mark.skipif(not buildah_available(), reason='needs buildah as root')

LABELS = 'LABEL com.redhat.component="demo-container" name="acme/%s" version="%s" release="1"\n'


def _busybox_repo(git_server, name, version, run):
    files = {'Dockerfile': 'FROM scratch\nCOPY --chmod=755 busybox /bin/busybox\nRUN %s\n' % run
             + LABELS % (name, version),
             'busybox': open('/bin/busybox', 'rb').read()}
    return make_repo(git_server, name, files)[0]


def _containers_under(storage_root):
    """Working containers in every buildah storage below `storage_root` (itself too)."""
    found = []
    roots = [storage_root] + glob.glob(os.path.join(storage_root, 'task-*', '*', '*', 'root'))
    for root in roots:
        if not os.path.isdir(os.path.join(root, 'overlay-containers')):
            continue
        runroot = os.path.join(os.path.dirname(root), 'runroot')
        storage = buildah.Storage(root, runroot if os.path.isdir(runroot) else None)
        found += storage.containers()
    return found


def _wait_for(predicate, what, limit=120.0):
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for %s' % what)
        time.sleep(0.05)


WAIT_RUN = ('["/bin/busybox", "sh", "-c", "echo %s-$((20+1))-ing; until [ -e '
            '/etc/yum.repos.d/go ]; do /bin/busybox sleep 0.05; done; %s"]')


class Parent(threading.Thread):
    def __init__(self, world, src):
        threading.Thread.__init__(self, daemon=True)
        self.world = world
        self.src = src
        self.task_id = world.start_parent(src)[0]
        self.outcome = {}

    def run(self):
        try:
            self.outcome['result'] = self.world.run_parent(self.src, task_id=self.task_id)[1]
        except BaseException as exc:  # checked by the test
            self.outcome['error'] = exc

    def release(self):
        """Let the paused RUN step go on (it waits for a file in its repo mount)."""
        for child in self.world.hub.children(self.task_id):
            work = self.world.tmp / ('work-%d' % child)
            for repodir in glob.glob(str(work / 'build' / 'yum.repos.d-*')):
                open(os.path.join(repodir, 'go'), 'w').close()


@needs_buildah
def test_failing_build_leaves_concurrent_task_alone(world_factory, git_server):
    """Two builds share one storage_root: B starts, A starts, B fails while A runs.
    B's failure must not remove A's working container."""
    world = world_factory()
    failing = Parent(world, _busybox_repo(git_server, 'store-fail', '2.0',
                                          WAIT_RUN % ('bbb', 'exit 3')))
    waiting = Parent(world, _busybox_repo(git_server, 'store-wait', '1.0',
                                          WAIT_RUN % ('aaa', 'true')))
    try:
        failing.start()
        _wait_for(lambda: 'bbb-21-ing' in world.all_text() or not failing.is_alive(),
                  'build B to reach its RUN step')
        waiting.start()
        _wait_for(lambda: 'aaa-21-ing' in world.all_text() or not waiting.is_alive(),
                  'build A to reach its RUN step')
        assert waiting.is_alive() and failing.is_alive(), (waiting.outcome, failing.outcome)
        failing.release()
        failing.join(300)
        assert isinstance(failing.outcome.get('error'), BackendError), failing.outcome
        assert 'createContainer for x86_64' in str(failing.outcome['error'])
        assert len(_containers_under(str(world.storage_root))) == 1, \
            'the running build lost its working container'
    finally:
        failing.release()
        waiting.release()
        failing.join(300)
        waiting.join(300)
    assert 'error' not in waiting.outcome, waiting.outcome.get('error')
    assert waiting.outcome['result']['koji_builds']
    # both tasks' storages are gone; nothing else was created under storage_root but
    # the builder's parent image cache, with no fill left unfinished
    assert storage_left(world) == []


def test_task_storage_is_private_and_removed(tmp_path):
    conf = native_config.parse(_parser(tmp_path))
    first = conf.task_storage(11, str(tmp_path / 'w11'))
    second = conf.task_storage(12, str(tmp_path / 'w12'))
    assert first.owned and second.owned
    assert first.root.startswith(str(tmp_path / 'sr' / 'task-11') + '/')
    assert second.root.startswith(str(tmp_path / 'sr' / 'task-12') + '/')
    os.makedirs(first.root)
    # a re-run of task 11 (kojid restart) starts from a clean folder
    again = conf.task_storage(11, str(tmp_path / 'w11'))
    assert not os.path.exists(first.root)
    native_config.destroy_task_storage(conf.task_storage_parent(11, ''))
    assert not os.path.exists(os.path.dirname(again.root))
    assert os.path.isdir(os.path.dirname(second.root))
    shutil.rmtree(str(tmp_path / 'sr'))


def _parser(tmp_path):
    import configparser
    parser = configparser.ConfigParser()
    parser.read_string('[native]\nregistry = https://reg.example\nstorage_root = %s\n'
                       % (tmp_path / 'sr'))
    return parser
