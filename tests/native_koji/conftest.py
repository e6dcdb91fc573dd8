"""Fixtures for the native backend's Koji side: a registry and a git daemon on 127.0.0.1,
a hub double with the Koji state a container build needs, real task handlers."""

import base64
import json
import logging
import os
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.request

import koji
import koji.tasks
import pytest

from koji_containerbuild import config as config_mod, plan as plan_mod
from koji_containerbuild.backends import native
from tests.doubles.hub_session import HubSessionDouble, make_task_handler_options

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECRET = 's3cr3t-Pa55word-never-logged'


def free_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def _wait_http(url, proc, what):
    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError('%s exited early' % what)
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError('%s did not start' % what)


@pytest.fixture(scope='session')
def registry_url(tmp_path_factory):
    """A docker-distribution registry on a free loopback port (plain HTTP)."""
    base = tmp_path_factory.mktemp('registry')
    port = free_port()
    conf = base / 'config.yml'
    conf.write_text('version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n'
                    '    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n'
                    '  addr: 127.0.0.1:%d\n' % (base / 'data', port))
    log = open(str(base / 'registry.log'), 'wb')
    proc = subprocess.Popen(['/usr/bin/docker-registry', 'serve', str(conf)], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        _wait_http('http://127.0.0.1:%d/v2/' % port, proc, 'docker-registry')
        yield 'http://127.0.0.1:%d' % port
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture(scope='session')
def git_server(tmp_path_factory):
    """`git daemon` exporting a base dir; returns (base_dir, 'git://127.0.0.1:port')."""
    base = tmp_path_factory.mktemp('git')
    port = free_port()
    proc = subprocess.Popen(['git', 'daemon', '--reuseaddr', '--export-all',
                             '--listen=127.0.0.1', '--port=%d' % port,
                             '--base-path=%s' % base, str(base)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(('127.0.0.1', port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield str(base), 'git://127.0.0.1:%d' % port
    finally:
        proc.terminate()
        proc.wait(10)


def _git(cwd, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME='t', GIT_AUTHOR_EMAIL='t@example.com',
               GIT_COMMITTER_NAME='t', GIT_COMMITTER_EMAIL='t@example.com',
               GIT_CONFIG_NOSYSTEM='1', HOME=str(cwd))
    return subprocess.run(['git'] + list(args), cwd=str(cwd), env=env, check=True,
                          stdout=subprocess.PIPE).stdout.decode().strip()


def make_repo(git_server, name, files):
    """A git repository `name` served by git_server; returns 'git://.../name#<sha>'."""
    base, url = git_server
    path = os.path.join(base, name)
    os.makedirs(path)
    _git(path, 'init', '-q', '-b', 'main')
    for fname, data in files.items():
        mode = 'wb' if isinstance(data, bytes) else 'w'
        with open(os.path.join(path, fname), mode) as f:
            f.write(data)
    _git(path, 'add', '.')
    _git(path, 'commit', '-q', '-m', 'image')
    _git(path, 'config', 'uploadpack.allowFilter', 'true')
    _git(path, 'config', 'uploadpack.allowAnySHA1InWant', 'true')
    sha = _git(path, 'rev-parse', 'HEAD')
    return '%s/%s#%s' % (url, name, sha), sha


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
        plan = plan_mod.prepare_binary(self.session, self.id, src, target, opts, self.options,
                                       self.workdir, logger=self.logger)
        return native.run_binary(self, plan, self.config)


class ArchHandler(koji.tasks.BaseTaskHandler):
    """What builder_containerbuild's createContainer does for backend = native."""
    Methods = ['createContainer']
    config = None

    def handler(self, *args):
        return native.run_arch(self, self.config, *args)


class KojiHub(HubSessionDouble):
    """The H5a hub double plus two hub calls it lacks (getRepo, cancelTaskChildren),
    with the real hub's shapes and permission rule (facts §3: the parent's host or owner
    may cancel its children)."""

    repo_ids = None

    def _api_getRepo(self, tag, state=None, event=None, dist=False, min_event=None):
        tinfo = self._tag_strict(tag)
        repo_id = (self.repo_ids or {}).get(tinfo['name'])
        if repo_id is None:
            return None
        return {'id': repo_id, 'state': koji.REPO_STATES['READY'], 'create_event': 1000,
                'create_ts': 1700000000.0, 'dist': False, 'task_id': None}

    def _api_cancelTaskChildren(self, task_id):
        task = self._task_strict(task_id)
        if task['host_id'] != self.host_id and task['owner'] != self.user_id:
            raise koji.ActionNotAllowed('Cannot cancel task children, not owner')
        for child in [t for t in self._tasks.values() if t['parent'] == task['id']]:
            self._cancel(child['id'], True)


class World(object):
    """Hub double + options + config + handlers wired for one test."""

    def __init__(self, tmp_path, registry_url, arches='x86_64', registry_extra='',
                 isolation='chroot'):
        self.tmp = tmp_path
        self.hub = KojiHub()
        hub = self.hub
        hub.add_user('alice')
        hub.add_tag('f40-container-build', arches=arches)
        hub.add_tag('f40-container-candidate')
        hub.add_target('f40-container-candidate', 'f40-container-build',
                       'f40-container-candidate')
        hub.add_package('f40-container-candidate', 'demo-container')
        hub.add_channel('container-binary')
        hub.grant_cg_access(hub._host_info['name'], 'koji-containerbuild')
        hub.repo_ids = {'f40-container-build': 77}
        self.options = make_task_handler_options(
            tmp_path, allowed_scms='127.0.0.1*:/*:no', topurl='http://127.0.0.1:9/kojifiles')
        self.auth_path = tmp_path / 'auth.json'
        host = registry_url.split('://', 1)[1]
        self.auth_path.write_text(json.dumps({'auths': {host: {'auth': base64.b64encode(
            ('builder:%s' % SECRET).encode()).decode()}}}))
        conf = tmp_path / 'builder_containerbuild.conf'
        conf.write_text(
            '[containerbuild]\nbackend = native\nlog_flush_interval = 0.05\n'
            'retry_timeout = 2\n\n[native]\nregistry = %s\nregistry_tls_verify = false\n'
            'registry_credentials = %s\nisolation = %s\nnetwork = host\npoll_interval = 0.05\n'
            'pull = missing\n%s' % (registry_url, self.auth_path, isolation, registry_extra))
        self.config = config_mod.load_builder_config(str(conf))
        self.child_runs = []
        self.logger = logging.getLogger('koji.build.test')
        hub.subtask_hook = self.on_subtask
        self.arch_behaviour = {}     # arch -> 'run' | 'fail' | 'leave' | callable
        self.tag_behaviour = 'run'

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


def buildah_available():
    return shutil.which('buildah') is not None and os.geteuid() == 0
