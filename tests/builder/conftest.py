"""Fixtures for the builder plugin tests: a git daemon with a real Dockerfile, the hub
session double, the osbs-client double (a file-backed cluster) and the plugin loaded the
way kojid loads it."""

import logging
import os
import sys

import koji
import pytest

from tests.doubles.hub_session import HubSessionDouble, make_task_handler_options
from tests.doubles.kojid import Kojid
from tests.doubles.osbs._cluster import Cluster
from tests.support.gitserver import GitDaemon
from tests.support.plugins import builder_plugin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOUBLES = os.path.join(ROOT, 'tests', 'doubles')
TARGET = 'f40-container-candidate'
DOCKERFILE = (b'FROM registry.example.com/fedora:40\n'
              b'LABEL com.redhat.component="demo-container" name="demo/app" '
              b'version="1.0" release=3\n'
              b'RUN echo hello\n')


@pytest.fixture(scope='session')
def git_daemon(tmp_path_factory):
    with GitDaemon(tmp_path_factory.mktemp('gitd')) as daemon:
        daemon.create('demo', [{'Dockerfile': DOCKERFILE, 'additional-tags': b'latest\n'}])
        yield daemon


@pytest.fixture
def osbs_double(tmp_path, monkeypatch):
    """Make `import osbs` give the double; returns its Cluster."""
    monkeypatch.syspath_prepend(DOUBLES)
    for name in [m for m in sys.modules if m == 'osbs' or m.startswith('osbs.')]:
        monkeypatch.delitem(sys.modules, name)
    cluster = Cluster(str(tmp_path / 'osbs-state'))
    cluster.write_conf(str(tmp_path / 'osbs.conf'))
    return cluster


def write_builder_conf(path, osbs_conf, **overrides):
    values = {'backend': 'osbs', 'osbs_conf_file': osbs_conf, 'retry_timeout': '3',
              'poll_interval': '0.1', 'hub_check_interval': '0.3', 'cancel_timeout': '2.5',
              'log_flush_interval': '0.05'}
    values.update(overrides)
    with open(path, 'w') as fobj:
        fobj.write('[containerbuild]\n')
        for key, value in values.items():
            if value is not None:
                fobj.write('%s = %s\n' % (key, value))
        fobj.write('\n[native]\n')
    return path


@pytest.fixture
def builder_conf(tmp_path, osbs_double):
    return write_builder_conf(str(tmp_path / 'builder_containerbuild.conf'),
                              str(tmp_path / 'osbs.conf'))


@pytest.fixture
def options(tmp_path):
    return make_task_handler_options(tmp_path, allowed_scms='127.0.0.1*:/*:no')


@pytest.fixture
def hub():
    hub = HubSessionDouble()
    hub.add_user('alice')
    hub.add_container_target(TARGET, 'f40-container-build', 'x86_64 aarch64',
                             ['demo-container'])
    # the Koji build the osbs double's runs report (koji-build-id 987654): the backend
    # refuses a result naming a build the hub does not know
    with hub._lock:
        hub._create_build({'name': 'demo-container', 'version': '1.0', 'release': '1',
                           'state': koji.BUILD_STATES['COMPLETE']},
                          hub._ensure_user('alice'), build_id=987654)
    return hub


@pytest.fixture(scope='session')
def plugin():
    """builder_containerbuild loaded as kojid loads plugins."""
    return builder_plugin()


@pytest.fixture
def make_task(hub, options, builder_conf, plugin):
    """make_task(method, params) -> (task_id, handler) for an OPEN task owned by alice."""
    def _make(method, params, config_file=None, owner='alice'):
        task_id = hub.add_task(method, params, owner=owner)
        cls = [c for c in vars(plugin).values() if isinstance(c, type)
               and method in getattr(c, 'Methods', ())][0]
        handler = cls(task_id, method, params, hub, options)
        handler.config_file = config_file or builder_conf
        handler.logger = logging.getLogger('test.builder')
        return task_id, handler
    return _make


@pytest.fixture
def kojid(hub, options, builder_conf):
    """The kojid double (koji.daemon.TaskManager in a kojid process) with this test's
    builder config. KOJID_TEST_PLUGIN_DIR runs another copy of the plugin (e.g. an old
    version, to see a regression test fail)."""
    daemon = Kojid(hub, options, config_file=builder_conf,
                   plugin_dir=os.environ.get('KOJID_TEST_PLUGIN_DIR'))
    yield daemon
    daemon.close()
