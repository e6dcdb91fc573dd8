"""RPM components of an image root file system, read with the rpm Python bindings.

The rpmdb is looked up at /var/lib/rpm, then /usr/lib/sysimage/rpm, resolving symlinks
inside the image root (an image is untrusted: a link must not lead to the host's
files). The fields follow the content-generator component format.
"""

import os
import sys
import threading

from koji_containerbuild.errors import BackendError

DB_PATHS = ('var/lib/rpm', 'usr/lib/sysimage/rpm')
SIG_TAGS = ('SIGPGP', 'SIGGPG', 'DSAHEADER', 'RSAHEADER')
_FMT = '\x1f'.join(['%{NAME}', '%{VERSION}', '%{RELEASE}', '%{ARCH}', '%{EPOCH}',
                    '%{SIGMD5}'] + ['%%{%s:pgpsig}' % t for t in SIG_TAGS] + ['%{LICENSE}'])
# rpm keeps _dbpath as a process-wide macro: one reader (or expander) at a time; the
# pipeline reads an image's RPMs and the host's in parallel threads.
_LOCK = threading.Lock()
_MAX_LINKS = 40


def resolve_in_root(root, relpath):
    """Resolve `relpath` inside `root` as if `root` were `/`; None if it does not exist."""
    root = os.path.realpath(root)
    parts = [p for p in relpath.split('/') if p]
    current = root
    links = 0
    while parts:
        part = parts.pop(0)
        if part == '.':
            continue
        if part == '..':
            if current != root:
                current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        if os.path.islink(candidate):
            links += 1
            if links > _MAX_LINKS:
                return None
            target = os.readlink(candidate)
            if target.startswith('/'):
                current = root
            parts = [p for p in target.split('/') if p] + parts
            continue
        if not os.path.lexists(candidate):
            return None
        current = candidate
    return current


def find_dbpath(rootfs):
    """Absolute path of the image's rpmdb directory, or None (e.g. a scratch image)."""
    for rel in DB_PATHS:
        path = resolve_in_root(rootfs, rel)
        if path and os.path.isdir(path) and os.listdir(path):
            return path
    return None


def _none(value):
    return None if value in ('(none)', '') else value


def _signature(values):
    for value in values:
        value = _none(value)
        if value and 'Key ID ' in value:
            return value.split('Key ID ', 1)[1].strip()
    return None


def rpm_components(rootfs_or_dbpath):
    """[{type, name, version, release, epoch, arch, sigmd5, signature}] sorted by name.

    Accepts an image root file system or an rpmdb directory. No rpmdb -> [].
    gpg-pubkey entries (imported keys, not packages) are dropped.
    """
    return rpm_components_and_licenses(rootfs_or_dbpath)[0]


def nvra(comp):
    """The key of a component in the licenses map."""
    return '%s-%s-%s.%s' % (comp['name'], comp['version'], comp['release'], comp['arch'])


def _rpm_bindings():
    """The rpm module (only the native pipeline needs it): a missing one is a clear fault,
    not a traceback naming a module."""
    try:
        import rpm
    except ImportError as exc:
        raise BackendError('The RPM Python bindings are not installed for this Python '
                           '(%s): install python3-rpm for the Python kojid runs (%s)'
                           % (exc, sys.executable))
    return rpm


def rpm_components_and_licenses(rootfs_or_dbpath):
    """(rpm_components(...), {nvra: License header value or None}) in one rpmdb read.

    The license stays out of the components: they are the content-generator format.
    """
    rpm = _rpm_bindings()
    path = rootfs_or_dbpath
    if not os.path.isdir(path):
        raise BackendError('Cannot read RPMs: %s is not a directory' % path)
    if os.path.exists(os.path.join(path, 'rpmdb.sqlite')) or \
            os.path.exists(os.path.join(path, 'Packages')):
        dbpath = os.path.realpath(path)
    else:
        dbpath = find_dbpath(path)
    if dbpath is None:
        return [], {}
    result = []
    licenses = {}
    with _LOCK:
        rpm.addMacro('_dbpath', dbpath)
        try:
            ts = rpm.TransactionSet('/')
            ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES | rpm._RPMVSF_NODIGESTS)
            try:
                headers = list(ts.dbMatch())
            except rpm.error as exc:
                raise BackendError('Cannot read the rpmdb of the image: %s' % exc)
            for hdr in headers:
                fields = hdr.sprintf(_FMT).split('\x1f', 6 + len(SIG_TAGS))
                name, ver, rel, arch, epoch, sigmd5 = fields[:6]
                if name == 'gpg-pubkey':
                    continue
                epoch = _none(epoch)
                result.append({
                    'type': 'rpm', 'name': name, 'version': ver, 'release': rel,
                    'epoch': int(epoch) if epoch is not None else None,
                    'arch': arch, 'sigmd5': _none(sigmd5),
                    'signature': _signature(fields[6:6 + len(SIG_TAGS)]),
                })
                licenses[nvra(result[-1])] = _none(fields[-1])
            ts.closeDB()
        finally:
            rpm.delMacro('_dbpath')
    result.sort(key=lambda c: (c['name'], c['version'], c['release'], c['arch']))
    return result, licenses


def host_components():
    """RPMs of the build host (its rpmdb at the default path; none on a non-RPM host)."""
    rpm = _rpm_bindings()

    # Under the lock: another thread may have _dbpath pointed at an image's rpmdb.
    with _LOCK:
        dbpath = rpm.expandMacro('%{_dbpath}')
    if not os.path.isdir(dbpath):
        return []
    return rpm_components(dbpath)
