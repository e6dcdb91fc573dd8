"""Session fixtures for the native pipeline tests: real registry, buildah, rpm, git.

Every pytest-xdist worker gets its own registry (free loopback port), its own buildah
storage root and its own copies of the examples, so workers never share state.
"""

import os
import shutil
import subprocess

import pytest

from koji_containerbuild import buildah, cg, native_build
from koji_containerbuild.source import ImageIdentity
from tests.support.registry import PASSWORD, USER, RunningRegistry  # noqa: F401 (re-exported)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, 'examples')


@pytest.fixture(scope='session')
def native_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp('native'))


@pytest.fixture(scope='session')
def registry(native_dir):
    reg = RunningRegistry(os.path.join(native_dir, 'registry'))
    yield reg
    reg.stop()


@pytest.fixture(scope='session')
def auth_registry(native_dir):
    reg = RunningRegistry(os.path.join(native_dir, 'auth-registry'), auth=True)
    yield reg
    reg.stop()


@pytest.fixture(scope='session')
def storage(native_dir):
    store = buildah.Storage.temporary(native_dir, 'overlay')
    yield store
    store.destroy()


@pytest.fixture(scope='session')
def examples(native_dir):
    """Copies of examples/base (with its prepared rootfs.tar) and examples/app."""
    dest = os.path.join(native_dir, 'examples')
    for name in ('base', 'app'):
        shutil.copytree(os.path.join(EXAMPLES, name), os.path.join(dest, name),
                        ignore=shutil.ignore_patterns('rootfs.tar'))
    subprocess.run(['bash', os.path.join(EXAMPLES, 'prepare.sh'),
                    os.path.join(dest, 'base', 'rootfs.tar')], check=True,
                   stdout=subprocess.DEVNULL)
    return dest


BASE = ImageIdentity('koji-example-base-container', 'koji-example/base', '1.0', '1')
APP = ImageIdentity('koji-example-app-container', 'koji-example/app', '1.0', '1')


def build(examples_dir, name, identity, registry, storage, workdir, unique, arch='x86_64',
          log=None, registry_client=None):
    lines = log if log is not None else []
    labels = native_build.koji_labels(identity, arch, vcs_url='git://git.example.com/x',
                                      vcs_ref='a' * 40, build_host='builder-1',
                                      build_date='2024-05-01T09:30:12Z')
    client = registry_client or (registry.client() if registry is not None else None)
    result = native_build.build_arch(
        os.path.join(examples_dir, name), 'Dockerfile', arch, identity, labels, [], client,
        identity.name, unique, workdir, lines.append,
        {'storage': storage, 'build_host': 'builder-1'})
    return result, lines


@pytest.fixture(scope='session')
def base_image(examples, registry, storage, native_dir):
    """The example base image, built, pushed and tagged once per worker."""
    unique = 'test-00001-20240501093012'
    result, lines = build(examples, 'base', BASE, registry, storage,
                          os.path.join(native_dir, 'work-base'), unique)
    tags = cg.tag_plan(BASE, unique=unique)
    index = cg.publish_manifest_list(registry.client(), BASE.name, [result], tags)
    return {'result': result, 'log': lines, 'tags': tags, 'index': index}
