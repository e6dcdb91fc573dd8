"""The per-builder parent image cache: each pinned parent pulled once per builder.

Every createContainer task builds in its own buildah storage (native_storage). Without
this cache each task pulled and unpacked its parents again. Here each pinned parent
(`host/repo@sha256:<manifest digest>`, the digest resolve_parents found) gets an entry:
a containers-storage root of its own holding that one image, which tasks use read-only
as an additional image store (`buildah --storage-opt additionalimagestore=<store>`);
each task keeps its own writable storage and cleanup.

    <root>/entries/<key>/{store/, meta.json}   published entries (complete, verified)
    <root>/tmp/<pid>-<start>-<random>/         an entry being filled
    <root>/locks/<key>.fill, <key>.use         flock files

<key> is the manifest digest plus a hash of the repository name (an image is found by
name and digest). Rules:
- filled once: under an exclusive flock on <key>.fill; whoever waited finds it ready.
- never partial: filled into tmp/, its digest checked, then renamed into entries/ in
  one step; a filler that dies leaves only its tmp folder, removed by the next filler
  (the folder names the process, as native_storage does).
- in use: a task holds a shared flock on <key>.use from before its build until its
  push and inspection end; eviction takes the exclusive lock without waiting and skips
  an entry it cannot get.
- bounded: after a fill, least recently used entries (the mtime of meta.json, touched
  at each use) are evicted until the total of their sizes fits `max_bytes`.
"""

import base64
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
import uuid

from koji_containerbuild import buildah
from koji_containerbuild.backends import native_storage
from koji_containerbuild.errors import BackendError

_PIN_RE = re.compile(r'^([^@\s]+)@sha256:([0-9a-f]{64})\Z')
_TMP_RE = re.compile(r'^(\d+-\d+)-[0-9a-f]{8}\Z')
_KEY_RE = re.compile(r'^[0-9a-f]{64}-[0-9a-f]{12}\Z')
LOCK_WAIT = 3600.0      # seconds a task waits for another task's fill of the same parent


def entry_key(pullspec):
    """The cache key of a pinned pull spec `host/repo@sha256:<hex>` (None: not pinned)."""
    match = _PIN_RE.match(pullspec)
    if not match:
        return None
    name = hashlib.sha256(match.group(1).encode('utf-8')).hexdigest()[:12]
    return '%s-%s' % (match.group(2), name)


def parse_size(text, what='[native] image_cache_size'):
    """Bytes of a size such as 20G, 512M, 1T or a plain number (ValueError otherwise)."""
    match = re.match(r'^\s*(\d{1,15})\s*([KMGT]?)(?:i?B)?\s*\Z', text or '', re.I)
    if not match:
        raise ValueError('%s: expected a size such as 20G or 512M, got %r' % (what, text))
    power = ' KMGT'.index(match.group(2).upper() or ' ')
    return int(match.group(1)) * 1024 ** power


def tree_size(path):
    """Bytes a folder takes on disk (allocated blocks; hard links counted once)."""
    seen = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def _flock(path, mode, blocking=True, timeout=LOCK_WAIT):
    """An open fd of `path` holding flock `mode`, or None (not blocking, busy).

    The lock file may be unlinked by an evictor holding it exclusively: the lock only
    counts if `path` is still the file we locked."""
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if not blocking:
                        os.close(fd)
                        return None
                    if time.monotonic() > deadline:
                        raise BackendError('Parent image cache: %s stayed locked for '
                                           '%d s' % (path, timeout))
                    time.sleep(0.1)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            return fd
        os.close(fd)


class ParentCache(object):
    """A builder's parent image cache under `root` (see the module docstring)."""

    def __init__(self, root, max_bytes, driver='overlay', buildah_cmd='buildah'):
        self.root = root
        self.max_bytes = max_bytes
        self.driver = driver or 'overlay'
        self.buildah = buildah_cmd
        for sub in ('entries', 'tmp', 'locks', 'trash'):
            os.makedirs(os.path.join(root, sub), mode=0o700, exist_ok=True)

    # ---------------------------------------------------------------- paths

    def _entry(self, key):
        return os.path.join(self.root, 'entries', key)

    def _lock_path(self, key, kind):
        return os.path.join(self.root, 'locks', '%s.%s' % (key, kind))

    def store_of(self, key):
        return os.path.join(self._entry(key), 'store')

    def ready(self, key, pullspec=None):
        """Whether entry `key` is published (and, given `pullspec`, holds that image)."""
        try:
            with open(os.path.join(self._entry(key), 'meta.json')) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            return False
        return isinstance(meta, dict) and (pullspec is None or meta.get('pullspec') == pullspec)

    def entries(self):
        """[(key, size, last use)] of the published entries."""
        result = []
        for key in os.listdir(os.path.join(self.root, 'entries')):
            meta_path = os.path.join(self._entry(key), 'meta.json')
            try:
                with open(meta_path) as f:
                    size = int(json.load(f)['size'])
                used = os.stat(meta_path).st_mtime
            except (OSError, ValueError, KeyError, TypeError):
                continue
            result.append((key, size, used))
        return result

    # ---------------------------------------------------------------- use

    @contextlib.contextmanager
    def use(self, pullspecs, log_line, fill=True, tls_verify=True, authfile=None,
            cert_dir=None, watch=None):
        """Context: the stores (paths) holding `pullspecs` (pinned pull specs), each
        filled if missing (unless `fill` is false: then only entries already there),
        held in use (not evictable) until the context ends. A parent that cannot be
        cached is left out, with a log line: the build then pulls it itself."""
        held = []
        stores = {}
        try:
            # one order for every task: a task only waits for a key while holding
            # keys before it, so no two tasks wait for each other
            for pullspec in sorted(set(pullspecs), key=entry_key):
                key = entry_key(pullspec)
                if key is None:
                    continue
                fd = self._acquire(key, pullspec, log_line, fill, tls_verify, authfile,
                                   cert_dir, watch)
                if fd is not None:
                    held.append(fd)
                    stores[pullspec] = self.store_of(key)
            self.evict(busy=set(entry_key(p) for p in stores), log_line=log_line)
            yield stores
        finally:
            for fd in held:
                os.close(fd)

    def _acquire(self, key, pullspec, log_line, fill, tls_verify, authfile, cert_dir,
                 watch):
        """A shared use lock on a ready entry `key` (filling it first), or None."""
        for _try in range(3):
            fd = _flock(self._lock_path(key, 'use'), fcntl.LOCK_SH)
            if self.ready(key, pullspec):
                os.utime(os.path.join(self._entry(key), 'meta.json'))
                log_line('Parent %s: from the builder\'s image cache' % pullspec)
                return fd
            os.close(fd)
            if not fill:
                return None
            try:
                self._fill(key, pullspec, log_line, tls_verify, authfile, cert_dir, watch)
            except BackendError as exc:
                log_line('Parent %s not cached (%s): the build pulls it itself'
                         % (pullspec, exc))
                return None
        return None     # evicted right after each fill: let the build pull it

    def _fill(self, key, pullspec, log_line, tls_verify, authfile, cert_dir, watch):
        """Pull `pullspec` into a new entry `key` unless another task did meanwhile."""
        fill_fd = _flock(self._lock_path(key, 'fill'), fcntl.LOCK_EX)
        try:
            if self.ready(key, pullspec):
                return
            self.sweep()
            tmp = os.path.join(self.root, 'tmp', '%s-%s' % (native_storage.attempt_name(),
                                                            uuid.uuid4().hex[:8]))
            os.makedirs(tmp, mode=0o700)
            try:
                self._pull(tmp, key, pullspec, log_line, tls_verify, authfile, cert_dir,
                           watch)
                entry = self._entry(key)
                if os.path.lexists(entry):      # an entry of an older layout: replace
                    self._discard(entry)
                os.rename(tmp, entry)           # published: complete or not at all
            finally:
                if os.path.lexists(tmp):
                    _remove_store(tmp)
        finally:
            os.close(fill_fd)

    def _pull(self, tmp, key, pullspec, log_line, tls_verify, authfile, cert_dir, watch):
        store = buildah.Storage(os.path.join(tmp, 'store'), os.path.join(tmp, 'runroot'),
                                self.driver, self.buildah)
        cmd = store.args() + ['pull', '--tls-verify=%s' % ('true' if tls_verify else 'false')]
        if authfile:
            cmd += ['--authfile', authfile]
        if cert_dir:
            cmd += ['--cert-dir', cert_dir]
        cmd.append(pullspec)
        log_line('Parent %s: pulling it into the builder\'s image cache' % pullspec)
        started = time.monotonic()
        rc, tail = buildah.stream(cmd, log_line, watch=watch)
        if rc != 0:
            raise BackendError('buildah pull failed: %s' % buildah._failure_reason(tail))
        digest = 'sha256:' + key.split('-', 1)[0]
        images = store.images()
        if len(images) != 1 or images[0].get('digest') != digest:
            raise BackendError('the pulled image is not %s' % digest)
        _check_manifest(store.root, self.driver, digest)
        shutil.rmtree(os.path.join(tmp, 'runroot'), ignore_errors=True)
        size = tree_size(store.root)
        with open(os.path.join(tmp, 'meta.json'), 'w') as f:
            json.dump({'pullspec': pullspec, 'digest': digest, 'size': size,
                       'filled': int(time.time())}, f)
        log_line('Parent %s: cached (%d MB in %.1f s)'
                 % (pullspec, size // (1024 * 1024), time.monotonic() - started))

    # ---------------------------------------------------------------- cleanup

    def sweep(self):
        """Remove fill folders of processes that are gone, and evicted leftovers."""
        tmp_dir = os.path.join(self.root, 'tmp')
        for name in os.listdir(tmp_dir):
            match = _TMP_RE.match(name)
            if match and not native_storage.alive(match.group(1)):
                _remove_store(os.path.join(tmp_dir, name))
        trash = os.path.join(self.root, 'trash')
        for name in os.listdir(trash):
            _remove_store(os.path.join(trash, name))

    def evict(self, busy=(), log_line=None):
        """Evict least recently used entries until the rest fits max_bytes; entries a
        task uses (its shared lock) and `busy` keys are skipped. Returns evicted keys."""
        listed = sorted(self.entries(), key=lambda e: e[2])
        total = sum(size for _key, size, _used in listed)
        evicted = []
        for key, size, _used in listed:
            if total <= self.max_bytes:
                break
            if key in busy:
                continue
            use_fd = _flock(self._lock_path(key, 'use'), fcntl.LOCK_EX, blocking=False)
            if use_fd is None:
                continue            # a running task builds from it
            fill_fd = _flock(self._lock_path(key, 'fill'), fcntl.LOCK_EX, blocking=False)
            try:
                if fill_fd is None:
                    continue        # being refilled right now
                self._discard(self._entry(key))
                for kind in ('use', 'fill'):
                    try:
                        os.unlink(self._lock_path(key, kind))   # still held: see _flock
                    except FileNotFoundError:
                        pass
                total -= size
                evicted.append(key)
                if log_line is not None:
                    log_line('Image cache: evicted %s (%d MB, least recently used)'
                             % (key, size // (1024 * 1024)))
            finally:
                if fill_fd is not None:
                    os.close(fill_fd)
                os.close(use_fd)
        return evicted

    def _discard(self, entry):
        trash = os.path.join(self.root, 'trash', '%s-%s' % (os.path.basename(entry),
                                                            uuid.uuid4().hex[:8]))
        os.rename(entry, trash)     # gone from entries/ at once; deleted after
        _remove_store(trash)


def _remove_store(path):
    """Delete an entry or fill folder (unmounting anything a killed pull left)."""
    buildah.Storage(os.path.join(path, 'store'), owned=True).destroy()
    shutil.rmtree(path, ignore_errors=True)


def _check_manifest(store_root, driver, digest):
    """The manifest containers-storage kept for the image hashes to `digest`."""
    images_dir = os.path.join(store_root, '%s-images' % driver)
    want = '=' + base64.b64encode(('manifest-' + digest).encode()).decode()
    for image in os.listdir(images_dir) if os.path.isdir(images_dir) else []:
        path = os.path.join(images_dir, image, want)
        if os.path.isfile(path):
            with open(path, 'rb') as f:
                if 'sha256:' + hashlib.sha256(f.read()).hexdigest() == digest:
                    return
    raise BackendError('the stored manifest of %s does not match its digest' % digest)
