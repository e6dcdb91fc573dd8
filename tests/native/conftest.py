"""Session fixtures for the native pipeline tests: real registry, buildah, rpm, git.

Every pytest-xdist worker gets its own registry (free loopback port), its own buildah
storage root and its own copies of the examples, so workers never share state.
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import time

import pytest
import requests

from koji_containerbuild import buildah, cg, native_build
from koji_containerbuild.registry import Registry
from koji_containerbuild.source import ImageIdentity

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, 'examples')
USER, PASSWORD = 'kcbuser', 'S3cret-pass-9d1f'


def _free_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class RunningRegistry(object):
    def __init__(self, base, auth=False):
        os.makedirs(base)
        self.port = _free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        self.host = '127.0.0.1:%d' % self.port
        self.authfile = None
        auth_conf = ''
        if auth:
            htpasswd = os.path.join(base, 'htpasswd')
            out = subprocess.run(['htpasswd', '-Bbn', USER, PASSWORD], check=True,
                                 stdout=subprocess.PIPE).stdout
            with open(htpasswd, 'wb') as f:
                f.write(out)
            auth_conf = 'auth:\n  htpasswd:\n    realm: kcb-test\n    path: %s\n' % htpasswd
            self.authfile = os.path.join(base, 'auth.json')
            token = base64.b64encode(('%s:%s' % (USER, PASSWORD)).encode()).decode()
            with open(self.authfile, 'w') as f:
                json.dump({'auths': {self.host: {'auth': token}}}, f)
        config = os.path.join(base, 'config.yml')
        with open(config, 'w') as f:
            f.write('version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n'
                    '    rootdirectory: %s\n%shttp:\n  addr: %s\n'
                    % (os.path.join(base, 'data'), auth_conf, self.host))
        self.log = open(os.path.join(base, 'registry.log'), 'wb')
        self.proc = subprocess.Popen(['/usr/bin/docker-registry', 'serve', config],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                requests.get(self.url + '/v2/', timeout=1)
                break
            except requests.exceptions.ConnectionError:
                time.sleep(0.05)
        else:
            raise RuntimeError('registry did not start')

    def client(self, **kwargs):
        return Registry(self.url, tls_verify=False, credentials_file=self.authfile, **kwargs)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


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
