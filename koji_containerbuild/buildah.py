"""Run buildah: build, push, inspect, mount, clean up.

Every call goes through `Storage`, which carries buildah's global storage options, so a
task (or a local run, or a test) can keep its images and containers in its own storage
root and remove all of it afterwards. Output is streamed line by line, with credentials
scrubbed, to a `log_line` callback. Interrupts (task cancellation arrives in kojid as
SystemExit or KeyboardInterrupt) kill the whole buildah process group first.
"""

import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
import uuid

from koji_containerbuild import scmurl
from koji_containerbuild.procs import kill_group, wait_exit
from koji_containerbuild.errors import BackendError

# Koji RPM arch -> Go architecture (image config and manifest lists use Go names).
GOARCH = {
    'x86_64': 'amd64', 'aarch64': 'arm64', 'ppc64le': 'ppc64le', 's390x': 's390x',
    'i686': '386', 'i386': '386', 'armv7hl': 'arm', 'armhfp': 'arm', 'noarch': 'amd64',
}
ISOLATIONS = ('chroot', 'oci', 'rootless')
DRIVERS = ('overlay', 'vfs')
READ_CHUNK = 64 * 1024        # bytes read from a tool's output at a time
MAX_LINE = 16 * 1024          # bytes of one output line kept; the rest is dropped
WATCH_INTERVAL = 0.5          # seconds between `watch` calls of stream()
# Parts of buildah output that may carry secrets: URL credentials, auth headers.
_SECRET_RES = (
    re.compile(r'(?i)(authorization:\s*)(basic|bearer)\s+\S+'),
    re.compile(r'(?i)("?(?:auth|password|token|identitytoken|registrytoken)"?\s*[:=]\s*)'
               r'"?[^"\s,}]+"?'),
)


# buildah's line carrying the runtime's (crun, runc) error when a container cannot start.
_RUNTIME_ERROR = 'error running container'


def goarch(arch):
    """Go architecture name for a Koji arch; BackendError for arches we cannot build."""
    try:
        return GOARCH[arch]
    except KeyError:
        raise BackendError('Cannot build for arch %r: unknown architecture' % (arch,))


def scrub(text):
    """Remove credentials from a line of tool output before it is logged."""
    text = scmurl.redact(text)
    for regex in _SECRET_RES:
        text = regex.sub(lambda m: m.group(1) + '***', text)
    return text


class Storage(object):
    """buildah's storage location and driver; `temporary()` makes a private one.

    root/runroot None means buildah's system default (/var/lib/containers).
    image_stores: read-only additional image stores (the builder's parent cache,
    backends/native_cache.py) whose images builds may use without pulling them.
    """

    def __init__(self, root=None, runroot=None, driver=None, buildah='buildah',
                 owned=False, image_stores=()):
        if driver is not None and driver not in DRIVERS:
            raise BackendError('Unknown storage driver %r (use one of %s)'
                               % (driver, ', '.join(DRIVERS)))
        self.root = root
        self.runroot = runroot
        self.driver = driver
        self.buildah = buildah
        self.owned = owned
        self.image_stores = list(image_stores)

    def with_image_stores(self, stores):
        """This storage, also reading images from the read-only `stores`."""
        return Storage(self.root, self.runroot, self.driver, self.buildah, self.owned,
                       list(self.image_stores) + [s for s in stores
                                                  if s not in self.image_stores])

    @classmethod
    def temporary(cls, parent_dir, driver='overlay', buildah='buildah'):
        """A fresh storage root under `parent_dir`; `destroy()` removes it again."""
        base = tempfile.mkdtemp(prefix='buildah-', dir=parent_dir)
        return cls(os.path.join(base, 'root'), os.path.join(base, 'runroot'), driver,
                   buildah, owned=True)

    def args(self):
        args = [self.buildah]
        if self.root:
            args += ['--root', self.root]
        if self.runroot:
            args += ['--runroot', self.runroot]
        if self.driver:
            args += ['--storage-driver', self.driver]
        for store in self.image_stores:
            args += ['--storage-opt', 'additionalimagestore=%s' % store]
        return args

    def run(self, args, check=True, what=None):
        """Run a short buildah command; return its stdout (str). Errors -> BackendError."""
        proc = subprocess.run(self.args() + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        out = proc.stdout.decode('utf-8', 'replace')
        if check and proc.returncode != 0:
            err = scrub(proc.stderr.decode('utf-8', 'replace').strip())
            raise BackendError('buildah %s failed: %s' % (what or args[0], _last_line(err)))
        return out

    def containers(self):
        """IDs of all working containers in this storage."""
        out = self.run(['containers', '--all', '--json'], what='containers')
        return sorted(c['id'] for c in (json.loads(out) if out.strip() else []) or [])

    def images(self):
        out = self.run(['images', '--all', '--json'], what='images')
        return json.loads(out) if out.strip() else []

    def prepare(self, timeout=60):
        """Set up a fresh storage root ahead of its first build (folders, locks, and the
        storage driver's feature probes, which it keeps in the runroot): about 0.02 s
        that a task can spend while its checkout runs. Failures are left to the build,
        which reports them (a set-up stuck on a lock is given up after `timeout` s)."""
        try:
            subprocess.run(self.args() + ['images', '--quiet'], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                           timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            pass

    def destroy(self):
        """Remove every container and image; for an owned storage, the whole tree."""
        if not (self.owned and self.root):
            self.run(['rm', '--all'], check=False)
            self.run(['rmi', '--all', '--force'], check=False)
        else:
            # Nobody else uses a private storage: drop leftover mounts (a killed build)
            # and delete the tree, no buildah calls needed.
            base = os.path.dirname(self.root)
            for mnt in sorted(_mounts_under(base), reverse=True):
                subprocess.run(['umount', '-l', mnt], stderr=subprocess.DEVNULL)
            shutil.rmtree(base, ignore_errors=True)


def _mounts_under(path):
    prefix = os.path.realpath(path) + '/'
    result = []
    try:
        with open('/proc/self/mounts') as f:
            for line in f:
                mnt = line.split()[1].replace('\\040', ' ')
                if mnt.startswith(prefix):
                    result.append(mnt)
    except OSError:
        pass
    return result


def _last_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else 'no error output'


def stream(cmd, log_line, cwd=None, env=None, watch=None, watch_interval=WATCH_INTERVAL):
    """Run `cmd`, pass each output line (scrubbed) to log_line; return (rc, last lines).

    Output is read in bounded chunks: a line longer than MAX_LINE is cut, the rest of it
    up to its newline is dropped and a note says how much (a RUN step may print
    hundreds of MB without a newline; memory stays bounded).
    `watch`, if given, is called every `watch_interval` s while the command runs (e.g.
    an ownership check); whatever it raises ends the command like an interrupt.
    On KeyboardInterrupt/SystemExit (kojid's cancellation) the process group is killed
    and the exception propagates.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=cwd, env=env,
                            start_new_session=True)
    tail = []

    def emit(line):
        line = scrub(line)
        tail.append(line)
        del tail[:-20]
        log_line(line)
    lines = LineSplitter(emit)
    try:
        fd = proc.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        next_watch = time.monotonic() + watch_interval
        while True:
            if watch is not None and time.monotonic() >= next_watch:
                watch()
                next_watch = time.monotonic() + watch_interval
            if not poller.poll(watch_interval * 1000 if watch is not None else None):
                continue
            chunk = os.read(fd, READ_CHUNK)
            if not chunk:
                break
            lines.feed(chunk)
        lines.close()
        while True:
            try:
                rc = wait_exit(proc, watch_interval if watch is not None else None)
                break
            except subprocess.TimeoutExpired:
                watch()
    except BaseException:
        kill_group(proc)
        raise
    finally:
        proc.stdout.close()
    return rc, tail


class LineSplitter(object):
    """Bytes in, lines (str, no newline) out to `emit`; lines over MAX_LINE are cut."""

    def __init__(self, emit, max_line=None):
        self.emit = emit
        self.max_line = max_line or MAX_LINE
        self.buf = b''
        self.dropped = 0         # bytes dropped of the current (over-long) line

    def feed(self, data):
        while data:
            nl = data.find(b'\n')
            part, data = (data, b'') if nl < 0 else (data[:nl], data[nl + 1:])
            room = self.max_line - len(self.buf)
            if self.dropped or len(part) > room:
                keep = max(room, 0)
                self.buf += part[:keep]
                self.dropped += len(part) - keep
            else:
                self.buf += part
            if nl >= 0:
                self._flush()

    def _flush(self):
        text = self.buf.decode('utf-8', 'replace').rstrip('\r')
        if self.dropped:
            text += ' [line cut: %d more bytes dropped]' % self.dropped
        self.emit(text)
        self.buf = b''
        self.dropped = 0

    def close(self):
        if self.buf or self.dropped:
            self._flush()


def _failure_reason(tail):
    """The most useful line of a failed buildah run (its 'Error: ...' line if any),
    with the OCI runtime's own complaint when the runtime could not start a RUN step
    (buildah's last line then only says `while running runtime: exit status 1`)."""
    reason = _last_line('\n'.join(tail))
    for line in reversed(tail):
        if line.startswith('Error:') or line.startswith('error'):
            reason = line
            break
    runtime = next((line for line in reversed(tail)
                    if line.lower().startswith(_RUNTIME_ERROR)), None)
    if runtime and runtime != reason:
        # "error running container: from /usr/bin/crun creating container for [cmd]:
        # <the runtime's message>": name the runtime and its message first (faults are
        # shortened), buildah's own line after
        text = runtime[len(_RUNTIME_ERROR):].strip(' :')
        head, sep, rest = text.partition(' creating container for [')
        if sep and head.startswith('from ') and ']: ' in rest:
            text = '%s: %s' % (head[len('from '):], rest.split(']: ', 1)[1])
        reason = 'OCI runtime: %s (%s)' % (text[:400], reason)
    return reason


def build_image(context_dir, dockerfile, arch, labels, yum_repo_files, workdir, log_line,
                network='host', isolation='chroot', pull=True, extra_args=(), storage=None,
                tls_verify=True, authfile=None, cert_dir=None, build_args=None, watch=None):
    """Build `dockerfile` in `context_dir` for `arch`; return the image id (config digest).

    watch: see stream() (the task's ownership check: an orphan stops its build).

    labels: {name: value} added with --label. yum_repo_files: paths of .repo files,
    bind-mounted read-only over /etc/yum.repos.d for RUN steps (they never land in a
    layer). The image is stored in Docker format so its id equals the config digest
    the registry will serve after a v2s2 push.
    """
    storage = storage or Storage()
    if isolation not in ISOLATIONS:
        raise BackendError('Unknown isolation %r (use one of %s)'
                           % (isolation, ', '.join(ISOLATIONS)))
    if isolation == 'chroot' and network not in ('host', None):
        raise BackendError("isolation 'chroot' shares the host network: set network = "
                           "host, or use isolation = oci for network %r" % (network,))
    iidfile = os.path.join(workdir, 'iid-%s-%s' % (arch, uuid.uuid4().hex[:8]))
    cmd = storage.args() + [
        'build', '--format', 'docker', '--isolation', isolation,
        '--platform', 'linux/%s' % goarch(arch), '--iidfile', iidfile,
        '--file', dockerfile, '--rm', '--force-rm', '--layers=false',
        '--pull=%s' % ('true' if pull is True else 'false' if pull is False else pull),
        '--tls-verify=%s' % ('true' if tls_verify else 'false'),
    ]
    if network and network != 'host':
        cmd += ['--network', network]
    if authfile:
        cmd += ['--authfile', authfile]
    if cert_dir:
        cmd += ['--cert-dir', cert_dir]
    for name in sorted(labels):
        cmd += ['--label', '%s=%s' % (name, labels[name])]
    for name in sorted(build_args or {}):
        cmd += ['--build-arg', '%s=%s' % (name, build_args[name])]
    if yum_repo_files:
        repodir = os.path.join(workdir, 'yum.repos.d-%s' % arch)
        os.makedirs(repodir, exist_ok=True)
        for path in yum_repo_files:
            shutil.copy(path, os.path.join(repodir, os.path.basename(path)))
        cmd += ['--volume', '%s:/etc/yum.repos.d:ro,z' % repodir]
    cmd += list(extra_args) + [context_dir]
    # A private storage holds only our containers; a shared one needs a before/after diff.
    before = set() if storage.owned else set(storage.containers())
    try:
        rc, tail = stream(cmd, log_line, watch=watch)
    except BaseException:
        _remove_new_containers(storage, before)
        raise
    if rc != 0:
        _remove_new_containers(storage, before)
        raise BackendError('buildah build for %s failed: %s' % (arch, _failure_reason(tail)))
    try:
        with open(iidfile) as f:
            image_id = f.read().strip()
    except OSError:
        raise BackendError('buildah build for %s wrote no image id' % arch)
    if not image_id.startswith('sha256:'):
        image_id = 'sha256:' + image_id
    return image_id


def _remove_new_containers(storage, before):
    """Remove working containers a failed or killed build left behind."""
    try:
        for cid in set(storage.containers()) - before:
            storage.run(['rm', cid], check=False)
    except BackendError:
        pass


def push_image(image, dest_ref, workdir, log_line=None, storage=None, tls_verify=True,
               authfile=None, cert_dir=None, fmt='v2s2', watch=None):
    """Push `image` to `dest_ref` (a transport:reference) as v2s2; return the manifest digest.

    watch: see stream().
    """
    storage = storage or Storage()
    digestfile = os.path.join(workdir, 'digest-%s' % uuid.uuid4().hex[:12])
    cmd = storage.args() + ['push', '--format', fmt, '--digestfile', digestfile,
                            '--tls-verify=%s' % ('true' if tls_verify else 'false')]
    if authfile:
        cmd += ['--authfile', authfile]
    if cert_dir:
        cmd += ['--cert-dir', cert_dir]
    cmd += [image, dest_ref]
    rc, tail = stream(cmd, log_line or (lambda line: None), watch=watch)
    if rc != 0:
        raise BackendError('buildah push to %s failed: %s'
                           % (scrub(dest_ref), _failure_reason(tail)))
    with open(digestfile) as f:
        digest = f.read().strip()
    os.unlink(digestfile)
    return digest


def inspect_image(image, storage=None):
    """buildah inspect of an image in storage (dict)."""
    storage = storage or Storage()
    return json.loads(storage.run(['inspect', '--type', 'image', image], what='inspect'))


def image_id_of(ref, storage=None):
    """Config digest of an image already in storage (e.g. a pulled parent), or None."""
    storage = storage or Storage()
    out = storage.run(['inspect', '--type', 'image', '--format', '{{.FromImageID}}', ref],
                      check=False)
    out = out.strip()
    if not re.match(r'^(sha256:)?[0-9a-f]{64}\Z', out):
        return None
    return out if out.startswith('sha256:') else 'sha256:' + out


def layer_sizes(diff_ids, storage):
    """{diff_id: uncompressed size} for layers in storage (from its layer index) and
    in its read-only image stores."""
    sizes = {}
    for root in [storage.root or '/var/lib/containers/storage'] + storage.image_stores:
        for name in os.listdir(root) if os.path.isdir(root) else []:
            if not name.endswith('-layers'):
                continue
            try:
                with open(os.path.join(root, name, 'layers.json')) as f:
                    for layer in json.load(f) or []:
                        if layer.get('diff-digest') in diff_ids and 'diff-size' in layer:
                            sizes[layer['diff-digest']] = int(layer['diff-size'])
            except (OSError, ValueError):
                continue
    return sizes


class MountedImage(object):
    """Context manager: a read-only view of an image's root file system.

    Creates a working container from the image and mounts it (as root, no user
    namespace is needed); both are removed on exit, also on errors. With remove=False
    the container is left for Storage.destroy() of a private storage to delete, which
    unmounts it anyway.
    """

    def __init__(self, image, storage=None, remove=True):
        self.image = image
        self.storage = storage or Storage()
        self.container = 'kcb-inspect-%s' % uuid.uuid4().hex[:12]
        self.path = None
        self.remove = remove

    def __enter__(self):
        self.storage.run(['from', '--pull-never', '--name', self.container, self.image],
                         what='from')
        try:
            self.path = self.storage.run(['mount', self.container], what='mount').strip()
        except BaseException:
            self.storage.run(['rm', self.container], check=False)
            raise
        return self.path

    def __exit__(self, *exc):
        if self.remove:
            self.storage.run(['rm', self.container], check=False)   # rm unmounts too
        return False


def remove_image(image, storage=None):
    """Remove an image from storage (ignoring one that is already gone)."""
    storage = storage or Storage()
    storage.run(['rmi', '--force', image], check=False)


_VERSIONS = {}


def version(buildah='buildah'):
    """buildah's version, asked once per process (a task's buildroot records it; the
    call costs ~0.03 s of CPU, which a task would otherwise spend beside its push)."""
    if buildah not in _VERSIONS:
        out = subprocess.run([buildah, '--version'], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL).stdout.decode('utf-8', 'replace')
        match = re.search(r'version (\S+)', out)
        _VERSIONS[buildah] = match.group(1) if match else 'unknown'
    return _VERSIONS[buildah]


__all__ = ['Storage', 'build_image', 'push_image', 'inspect_image', 'image_id_of',
           'layer_sizes', 'MountedImage', 'remove_image', 'goarch', 'scrub', 'stream',
           'version']
