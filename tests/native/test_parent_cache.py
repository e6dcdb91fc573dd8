"""The builder's parent image cache (backends/native_cache.py) with real buildah and a
real registry: parents pulled once, never a partial entry, eviction skips images in use,
a moved tag is resolved again."""

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from koji_containerbuild import buildah, native_build
from koji_containerbuild.backends import native_cache
from koji_containerbuild.source import ImageIdentity

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP = ImageIdentity('kcb-cache-app-container', 'kcb-cache/app', '1.0', '1')
PULLING = "pulling it into the builder's image cache"
FROM_CACHE = "from the builder's image cache"


def push_parent(storage, registry, repo_tag, content, workdir):
    """Build a one-file image FROM scratch and push it as <registry>/<repo_tag>."""
    ctx = os.path.join(workdir, 'parent-%s' % uuid.uuid4().hex[:8])
    os.makedirs(ctx)
    with open(os.path.join(ctx, 'content'), 'w') as f:
        f.write(content)
    with open(os.path.join(ctx, 'Dockerfile'), 'w') as f:
        f.write('FROM scratch\nCOPY content /content\n')
    ref = '%s/%s' % (registry.host, repo_tag)
    image = storage.run(['build', '--format', 'docker', '--isolation', 'chroot', '-q',
                         ctx], what='build').strip().splitlines()[-1]
    storage.run(['push', '--format', 'v2s2', '--tls-verify=false', image,
                 'docker://' + ref], what='push')
    return ref


def app_context(workdir, parent_ref):
    ctx = os.path.join(workdir, 'app-%s' % uuid.uuid4().hex[:8])
    os.makedirs(ctx)
    with open(os.path.join(ctx, 'app'), 'w') as f:
        f.write('app\n')
    with open(os.path.join(ctx, 'Dockerfile'), 'w') as f:
        f.write('FROM %s\nCOPY app /app\n' % parent_ref)
    return ctx


def build_app(ctx, registry, cache, workdir, lines):
    """One task: its own private storage, the shared cache; the storage is destroyed."""
    storage = buildah.Storage.temporary(workdir)
    try:
        labels = native_build.koji_labels(APP, 'x86_64', build_host='builder-1',
                                          build_date='2024-05-01T09:30:12Z')
        result = native_build.build_arch(
            ctx, 'Dockerfile', 'x86_64', APP, labels, [], registry.client(), APP.name,
            'cache-%s' % uuid.uuid4().hex[:8], os.path.join(workdir, 'w-%s' % uuid.uuid4().hex[:6]),
            lines.append, {'storage': storage, 'image_cache': cache, 'pull': 'always',
                           'build_host': 'builder-1'})
        # the parent was used from the cache's store, not copied into the task's
        with open(os.path.join(storage.root, 'overlay-images', 'images.json')) as f:
            own = [i['id'] for i in json.load(f)]
        return result, own
    finally:
        storage.destroy()


@pytest.fixture
def cache(tmp_path):
    return native_cache.ParentCache(str(tmp_path / 'cache'), 10 * 1024 ** 3)


def test_two_tasks_racing_for_a_parent_pull_it_once(registry, storage, tmp_path, cache):
    ref = push_parent(storage, registry, 'kcb-cache/race:1', 'race %s' % uuid.uuid4(),
                      str(tmp_path))
    ctx = app_context(str(tmp_path), ref)
    logs = [[], []]
    results = [None, None]
    errors = []

    def task(i):
        try:
            results[i] = build_app(ctx, registry, cache, str(tmp_path), logs[i])
        except Exception as exc:      # reported below
            errors.append(exc)
    threads = [threading.Thread(target=task, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    text = [line for log in logs for line in log]
    assert sum(PULLING in line for line in text) == 1
    assert sum(FROM_CACHE in line for line in text) == 2
    pins = set(r[0]['parent_pinned'][ref] for r in results)
    assert len(pins) == 1
    assert [key for key, _s, _u in cache.entries()] == [native_cache.entry_key(pins.pop())]
    for result, own in results:
        # only the built image lives in the task's storage: the parent was read-only
        assert own == [result['image_id'].split(':', 1)[1]]
        assert len(result['layer_sizes']) == 2


class _GatedProxy(object):
    """An HTTP proxy to the registry that holds blob requests until `gate` opens."""

    def __init__(self, upstream):
        self.gate = threading.Event()
        self.blob_asked = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self._forward(body=False)

            def do_GET(self):
                self._forward(body=True)

            def _forward(self, body):
                if '/blobs/' in self.path:
                    proxy.blob_asked.set()
                    proxy.gate.wait(60)
                conn = http.client.HTTPConnection(upstream, timeout=30)
                headers = dict((k, v) for k, v in self.headers.items()
                               if k.lower() not in ('host', 'connection'))
                conn.request(self.command, self.path, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ('connection', 'transfer-encoding', 'content-length'):
                        self.send_header(k, v)
                self.send_header('Content-Length', str(len(data)) if body or not
                                 resp.getheader('Content-Length') else
                                 resp.getheader('Content-Length'))
                self.end_headers()
                if body:
                    self.wfile.write(data)
                conn.close()

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self.host = '127.0.0.1:%d' % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


def _descendants(pid):
    found = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open('/proc/%d/task/%d/children' % (p, p)) as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            kids = []
        found += kids
        todo += kids
    return found


def test_a_task_killed_mid_pull_leaves_no_entry(registry, storage, tmp_path, cache):
    push_parent(storage, registry, 'kcb-cache/killed:1', 'killed %s' % uuid.uuid4(),
                      str(tmp_path))
    digest, _manifest = registry.client().arch_manifest('kcb-cache/killed', '1', 'amd64')
    proxy = _GatedProxy(registry.host)
    try:
        pin = '%s/kcb-cache/killed@%s' % (proxy.host, digest)
        key = native_cache.entry_key(pin)
        script = ('import sys; sys.path.insert(0, %r)\n'
                  'from koji_containerbuild.backends import native_cache\n'
                  'c = native_cache.ParentCache(%r, 10 * 1024 ** 3)\n'
                  'with c.use([%r], print, tls_verify=False):\n'
                  '    pass\n' % (ROOT, cache.root, pin))
        child = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.DEVNULL)
        try:
            assert proxy.blob_asked.wait(60), 'the pull never asked for a blob'
            # the whole task dies, buildah included (kojid's SIGKILL of the process)
            for pid in [child.pid] + _descendants(child.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        finally:
            child.wait(30)
        leftovers = os.listdir(os.path.join(cache.root, 'tmp'))
        assert len(leftovers) == 1          # the killed fill's folder, unpublished
        assert not cache.ready(key)
        assert cache.entries() == []
        proxy.gate.set()
        lines = []
        with cache.use([pin], lines.append, tls_verify=False) as stores:
            assert sum(PULLING in line for line in lines) == 1
            images = buildah.Storage(stores[pin], driver='overlay').images()
            assert [i['digest'] for i in images] == [digest]
        assert cache.ready(key, pin)
        assert os.listdir(os.path.join(cache.root, 'tmp')) == []    # swept
    finally:
        proxy.close()


def test_eviction_skips_an_image_a_task_uses(registry, storage, tmp_path):
    small = native_cache.ParentCache(str(tmp_path / 'small-cache'), 1)   # 1 byte bound
    push_parent(storage, registry, 'kcb-cache/evict:1', 'evict %s' % uuid.uuid4(),
                str(tmp_path))
    digest, _manifest = registry.client().arch_manifest('kcb-cache/evict', '1', 'amd64')
    pin = '%s/kcb-cache/evict@%s' % (registry.host, digest)
    key = native_cache.entry_key(pin)
    lines = []
    with small.use([pin], lines.append, tls_verify=False) as stores:
        # over its bound, but a task holds it: eviction (another task's) skips it
        assert small.evict() == []
        assert small.ready(key, pin)
        assert os.path.isdir(stores[pin])
    assert small.evict() == [key]
    assert not small.ready(key)
    assert os.listdir(os.path.join(small.root, 'entries')) == []
    assert os.listdir(os.path.join(small.root, 'trash')) == []


def test_a_cached_tag_whose_digest_moved_is_resolved_again(registry, storage, tmp_path,
                                                           cache):
    ref = push_parent(storage, registry, 'kcb-cache/moving:1', 'first %s' % uuid.uuid4(),
                      str(tmp_path))
    ctx = app_context(str(tmp_path), ref)
    first_lines = []
    first, _own = build_app(ctx, registry, cache, str(tmp_path), first_lines)
    push_parent(storage, registry, 'kcb-cache/moving:1', 'second %s' % uuid.uuid4(),
                str(tmp_path))
    new_digest, new_manifest = registry.client().arch_manifest('kcb-cache/moving', '1',
                                                               'amd64')
    second_lines = []
    second, _own = build_app(ctx, registry, cache, str(tmp_path), second_lines)
    assert first['parent_pinned'][ref] != second['parent_pinned'][ref]
    assert second['parent_pinned'][ref].endswith('@' + new_digest)
    assert second['parent_id'] == new_manifest['config']['digest']
    assert sum(PULLING in line for line in second_lines) == 1
    assert len(cache.entries()) == 2
    # the build really is FROM the new parent: its base layer is the new one
    assert second['config']['rootfs']['diff_ids'][0] != first['config']['rootfs']['diff_ids'][0]


def test_sizes_parse_and_bad_values_are_refused():
    assert native_cache.parse_size('20G') == 20 * 1024 ** 3
    assert native_cache.parse_size('512m') == 512 * 1024 ** 2
    assert native_cache.parse_size('1000') == 1000
    for bad in ('', '-1G', '20 X', '1e9'):
        with pytest.raises(ValueError):
            native_cache.parse_size(bad)
    assert native_cache.entry_key('reg/x:1') is None


def _native(**keys):
    import configparser
    from koji_containerbuild.backends import native_config
    parser = configparser.ConfigParser()
    parser.read_dict({'native': dict({'registry': 'http://127.0.0.1:5000'}, **keys)})
    return native_config.parse(parser)


def test_cache_config_keys(tmp_path):
    from koji_containerbuild.errors import ConfigError
    workdir = str(tmp_path / 'tasks' / '1')
    default = _native(storage_root=str(tmp_path / 'st')).image_cache(1, workdir)
    assert default.root == str(tmp_path / 'st' / 'image-cache')
    assert default.max_bytes == 20 * 1024 ** 3
    chosen = _native(image_cache=str(tmp_path / 'c'), image_cache_size='1G')
    assert chosen.image_cache(1, workdir).root == str(tmp_path / 'c')
    assert _native(image_cache='off').image_cache(1, workdir) is None
    with pytest.raises(ConfigError, match='image_cache: expected an absolute path'):
        _native(image_cache='cache')
    with pytest.raises(ConfigError, match='image_cache_size: expected a size'):
        _native(image_cache_size='lots')
