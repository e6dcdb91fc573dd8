"""Fixtures for the native backend's Koji side: a registry and a git daemon on 127.0.0.1,
a hub double with the Koji state a container build needs, real task handlers."""

import base64
import json
import logging
import os
import shutil
import tarfile

import koji
import koji.tasks
import pytest

from koji_containerbuild import config as config_mod, plan as plan_mod
from koji_containerbuild.backends import native
from tests.doubles.hub_session import HubSessionDouble, make_task_handler_options
from tests.doubles.kojid import Kojid
from tests.support.gitserver import GitDaemon
from tests.support.registry import RunningRegistry

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECRET = 's3cr3t-Pa55word-never-logged'


@pytest.fixture(scope='session')
def registry_url(tmp_path_factory):
    """A docker-distribution registry on a free loopback port (plain HTTP)."""
    reg = RunningRegistry(str(tmp_path_factory.mktemp('registry') / 'registry'))
    yield reg.url
    reg.stop()


@pytest.fixture(scope='session')
def git_server(tmp_path_factory):
    """A `git daemon` on loopback (tests.support.gitserver.GitDaemon)."""
    with GitDaemon(tmp_path_factory.mktemp('git')) as daemon:
        yield daemon


def make_repo(git_server, name, files):
    """A repository `name` with one commit of `files` ({path: str|bytes}) served by
    git_server; returns ('git://.../name.git#<sha>', sha)."""
    sha = git_server.create(name, [files])[0]
    return git_server.url(name, ref=sha), sha


@pytest.fixture(scope='session')
def small_rootfs(tmp_path_factory):
    """A tiny rootfs tar: busybox-less, one file (the image needs no RUN step)."""
    base = tmp_path_factory.mktemp('rootfs')
    root = base / 'root'
    (root / 'etc').mkdir(parents=True)
    (root / 'etc' / 'motd').write_text('hello from a native Koji build\n')
    tar_path = base / 'rootfs.tar'
    with tarfile.open(str(tar_path), 'w') as tar:
        tar.add(str(root / 'etc'), arcname='etc')
    return tar_path.read_bytes()


def dockerfile(component='demo-container', name='acme/demo', version='1.0', release='1',
               base='scratch'):
    lines = ['FROM %s' % base, 'ADD rootfs.tar /']
    labels = ['com.redhat.component="%s"' % component, 'name="%s"' % name,
              'version="%s"' % version]
    if release:
        labels.append('release="%s"' % release)
    lines.append('LABEL ' + ' '.join(labels))
    return '\n'.join(lines) + '\n'


class ParentHandler(koji.tasks.BaseTaskHandler):
    """What builder_containerbuild's buildContainer does for backend = native."""
    Methods = ['buildContainer']
    config = None

    def handler(self, src, target, opts=None):
        def make_plan():
            return plan_mod.prepare_binary(self.session, self.id, src, target, opts,
                                           self.options, self.workdir, logger=self.logger)
        return native.run_binary(self, make_plan, self.config)


class ArchHandler(koji.tasks.BaseTaskHandler):
    """What builder_containerbuild's createContainer does for backend = native."""
    Methods = ['createContainer']
    config = None

    def handler(self, *args):
        return native.run_arch(self, self.config, *args)


class World(object):
    """Hub double + options + config + handlers wired for one test."""

    def __init__(self, tmp_path, registry_url, arches='x86_64', registry_extra='',
                 isolation='chroot', network='host', pull='missing'):
        self.tmp = tmp_path
        self.hub = HubSessionDouble()
        hub = self.hub
        hub.add_user('alice')
        hub.add_container_target('f40-container-candidate', 'f40-container-build', arches,
                                 ['demo-container'])
        hub.add_channel('container-binary')
        hub.add_channel('container-native')
        hub.grant_cg_access(hub._host_info['name'], 'koji-containerbuild')
        hub.add_repo('f40-container-build', repo_id=77)
        self.options = make_task_handler_options(
            tmp_path, allowed_scms='127.0.0.1*:/*:no', topurl='http://127.0.0.1:9/kojifiles')
        self.auth_path = tmp_path / 'auth.json'
        host = registry_url.split('://', 1)[1]
        self.auth_path.write_text(json.dumps({'auths': {host: {'auth': base64.b64encode(
            ('builder:%s' % SECRET).encode()).decode()}}}))
        conf = tmp_path / 'builder_containerbuild.conf'
        self.conf_path = conf
        # never the system storage: every task's storage lives under here
        self.storage_root = tmp_path / 'storage'
        conf.write_text(
            '[containerbuild]\nbackend = native\nlog_flush_interval = 0.05\n'
            'retry_timeout = 2\n\n[native]\nregistry = %s\nregistry_tls_verify = false\n'
            'registry_credentials = %s\nisolation = %s\nnetwork = %s\npoll_interval = 0.05\n'
            'pull = %s\nstorage_root = %s\n%s'
            % (registry_url, self.auth_path, isolation, network, pull, self.storage_root,
               registry_extra))
        self.config = config_mod.load_builder_config(str(conf))
        self.child_runs = []
        self.logger = logging.getLogger('koji.build.test')
        hub.subtask_hook = self.on_subtask
        self.arch_behaviour = {}     # arch -> 'run' | 'fail' | 'leave' | callable
        self.tag_behaviour = 'run'
        self.waitrepo_behaviour = 'ready'   # 'ready' (a repo appears) | 'fail' | 'leave'
        self.kojid_children = False  # createContainer left FREE for the kojid double
        self.kojid = None

    # -- parent
    def start_parent(self, src, opts=None, target='f40-container-candidate'):
        opts = dict({'git_branch': 'main'}, **(opts or {}))
        params = [src, target, opts]
        task_id = self.hub.add_task('buildContainer', params, owner='alice')
        return task_id, params

    def run_parent(self, src, opts=None, task_id=None):
        if task_id is None:
            task_id, params = self.start_parent(src, opts)
        else:
            params = self.hub.task(task_id)['_request']
        handler_cls = type('P', (ParentHandler,), {'config': self.config})
        handler = handler_cls(task_id, 'buildContainer', params, self.hub, self.options,
                              workdir=str(self.tmp / ('work-%d' % task_id)))
        return task_id, handler.run()

    # -- children, as the other builders would run them
    def on_subtask(self, task_id, method, arglist, opts):
        if method == 'createContainer' and self.kojid_children:
            return
        if method == 'waitrepo':
            return self.run_waitrepo(task_id, arglist)
        if method == 'createContainer':
            arch = arglist[2]
            behaviour = self.arch_behaviour.get(arch, 'run')
            if callable(behaviour):
                return behaviour(task_id, arglist)
            if behaviour == 'leave':
                return
            self.hub.open_task(task_id)
            if behaviour == 'fail':
                self.hub.finish_task(task_id, fault=koji.BuildError(
                    'buildah build for %s failed: RUN exited 1' % arch))
                return
            self.run_child(task_id, arglist)
        elif method == 'tagBuild':
            if self.tag_behaviour == 'free':
                return      # queued for another builder (not opened by this host)
            self.hub.open_task(task_id)
            if self.tag_behaviour == 'leave':
                return
            tag, build, force, fromtag = arglist[:4]
            try:
                self.hub.host.tagBuild(task_id, tag, build, force, fromtag)
            except koji.GenericError as exc:
                self.hub.finish_task(task_id, fault=exc)
                return
            self.hub.finish_task(task_id, result=None)

    def run_waitrepo(self, task_id, arglist):
        """koji.tasks.WaitrepoTask as another builder runs it: the repo appears (kojira
        served the request), or it gives up after its timeout."""
        if self.waitrepo_behaviour == 'leave':
            return
        self.hub.open_task(task_id)
        if self.waitrepo_behaviour == 'fail':
            self.hub.finish_task(task_id, fault=koji.GenericError(
                'Unsuccessfully waited 120:00 for a new %s repo' % arglist[0]))
            return
        repo = self.hub.add_repo(arglist[0])
        self.hub.finish_task(task_id, result=repo)

    def run_child(self, task_id, arglist):
        self.hub.open_task(task_id)
        handler_cls = type('A', (ArchHandler,), {'config': self.config})
        handler = handler_cls(task_id, 'createContainer', arglist, self.hub, self.options,
                              workdir=str(self.tmp / ('work-%d' % task_id)))
        try:
            result = handler.run()
        except koji.GenericError as exc:
            self.hub.finish_task(task_id, fault=exc)
            return
        self.child_runs.append((task_id, result))
        self.hub.finish_task(task_id, result=json.loads(json.dumps(result)))

    def all_text(self):
        """Everything that left the builder: uploads, task results, call args."""
        parts = [repr(self.hub.calls)]
        for data in self.hub.uploads.values():
            parts.append(data.decode('utf-8', 'replace'))
        for tid in list(self.hub._tasks):
            task = self.hub.task(tid)
            parts.append(repr(task['_result']))
            parts.append(repr(task['_fault']))
        return '\n'.join(parts)


@pytest.fixture
def world_factory(tmp_path, registry_url):
    def make(**kwargs):
        return World(tmp_path, registry_url, **kwargs)
    return make


@pytest.fixture
def world(world_factory):
    """A World with the default settings."""
    return world_factory()


@pytest.fixture
def kojid(world):
    """The kojid double (koji.daemon.TaskManager) serving the World's hub."""
    daemon = Kojid(world.hub, world.options)
    yield daemon
    daemon.close()


@pytest.fixture
def kojid_world(world_factory):
    """A World whose tasks kojid runs: the parent and its createContainer children are
    taken by one kojid double (koji.daemon.TaskManager, tests/doubles/kojid.py) with the
    hub's scheduler on; tagBuild and waitrepo stay with the World (other builders)."""
    daemons = []

    def make(**kwargs):
        world = world_factory(**kwargs)
        world.kojid_children = True
        world.hub._host_info['capacity'] = 10.0
        world.kojid = Kojid(world.hub, world.options, config_file=str(world.conf_path),
                            schedule=True)
        daemons.append(world.kojid)
        return world
    yield make
    for daemon in daemons:
        daemon.close()


def buildah_available():
    return shutil.which('buildah') is not None and os.geteuid() == 0


@pytest.fixture(name='registry_url')
def registry_url_per_test(tmp_path):
    """Each test's hub double gets its own registry (replaces the session one above):
    an NVR names one build per Koji, and the native backend refuses to move an NVR tag
    that holds another build (tag_guard), so two hubs must not share one registry.
    docker-distribution starts in well under a second."""
    reg = RunningRegistry(str(tmp_path / 'registry'))
    yield reg.url
    reg.stop()
