"""Fixtures for the pre-build pipeline tests: a git daemon, kojid-like options, a hub."""

import logging

import pytest

from tests.doubles.hub_session import HubSessionDouble, make_task_handler_options
from tests.support.gitserver import GitDaemon

DOCKERFILE = (b'FROM registry.example.com/fedora:40\n'
              b'ENV VERSION=1.0\n'
              b'LABEL com.redhat.component="demo-container" \\\n'
              b'      name="demo/app" \\\n'
              b'      version="${VERSION}" \\\n'
              b'      release=3\n'
              b'RUN echo hello\n')


@pytest.fixture(scope='session')
def git_daemon(tmp_path_factory):
    """One git daemon per test process (xdist worker), serving prepared repositories."""
    big = bytes(range(256)) * 4096   # 1 MiB that partial fetches must not download
    with GitDaemon(tmp_path_factory.mktemp('gitd')) as daemon:
        shas = daemon.create('demo', [
            {'Dockerfile': DOCKERFILE, 'additional-tags': b'latest\nstable\n',
             'big.bin': big, 'src/app.py': b'print(1)\n',
             'sub/Dockerfile': b'FROM x\nLABEL BZComponent=sub Name=sub Version=2 Release=1\n'},
            {'README': b'second commit\n'},
        ], tags={'v1': 0})
        daemon.create('demo-nofilter', [
            {'Dockerfile': DOCKERFILE, 'big.bin': big, 'additional-tags': b'latest\n'},
            {'README': b'second commit\n'},
        ], allow_filter=False)
        daemon.shas = {'demo': shas}
        daemon.big_blob = daemon.blob_sha('demo', shas[0], 'big.bin')
        yield daemon


@pytest.fixture
def options(tmp_path):
    """kojid options allowing our loopback SCM by config (host pattern covers the port)."""
    return make_task_handler_options(tmp_path, allowed_scms='127.0.0.1*:/*')


@pytest.fixture
def workdir(tmp_path):
    path = tmp_path / 'task'
    path.mkdir()
    return str(path)


@pytest.fixture
def logger():
    return logging.getLogger('test.source')


@pytest.fixture
def hub():
    """Hub double seeded with a user, tags, a target and a listed package."""
    hub = HubSessionDouble()
    hub.add_user('alice')
    hub.add_container_target('f40-container-candidate', 'f40-container-build',
                             'x86_64 aarch64 i686 ppc64le', ['demo-container'])
    return hub
