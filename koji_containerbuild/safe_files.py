"""Files the builder and the local command write: never through a path a repository
controls.

The rule (docs/security.md): what we write goes into a directory we created ourselves
(the task's work directory, a fresh output directory), and each file there is created
with O_CREAT|O_EXCL|O_NOFOLLOW, so an entry that was already there (a symlink committed
by a repository, a file left by someone else) is never written through. Reads of
repository files go through source.read_file (O_NOFOLLOW, regular files only) after a
check that the path does not leave the checkout.
"""

import errno
import os
import shutil
import stat

from koji_containerbuild.errors import ConfigError, SourceError

_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)
# What marks a directory as an earlier output of ours (the local command may replace it).
OUTPUT_MARKER = '.koji-containerbuild-output'


def write_new(path, data, mode=0o644):
    """Create `path` and write `data` (bytes or str). An existing entry of that name (in a
    directory of ours: a leftover of an earlier run) is removed first, never followed."""
    if isinstance(data, str):
        data = data.encode('utf-8', 'surrogateescape')
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        raise SourceError('Cannot write %s: a directory is in the way' % path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC
    fd = os.open(path, flags, mode)
    with os.fdopen(fd, 'wb') as handle:
        handle.write(data)
    return path


def read_in_tree(root, relpath, limit, what):
    """Bytes of the regular file `relpath` inside the checkout `root`, refusing symbolic
    links (in any component) and anything that resolves outside `root`."""
    from koji_containerbuild import source
    path = os.path.join(root, relpath)
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if not real.startswith(real_root + os.sep):
        raise SourceError('%s leaves the repository (symbolic link)' % what)
    if os.path.relpath(real, real_root) != os.path.normpath(relpath):
        raise SourceError('%s is reached through a symbolic link; it must be a regular '
                          'file in the repository' % what)
    return source.read_file(path, limit, what)


def make_output_dir(path, anchor=None):
    """Create the output directory `path` fresh and return its absolute path.

    anchor: a directory the user chose (default: the current directory when `path` is
    below it, else the nearest existing ancestor of `path`). Every component between the anchor and
    `path` is created by us or opened without following symlinks, so a symlink
    committed under the anchor (e.g. a checkout's `koji-containerbuild-output/...`)
    is refused. An existing `path` is replaced only when it is an empty directory or
    an earlier output of ours (it holds OUTPUT_MARKER); its old content is removed
    without following links.
    """
    path = os.path.abspath(path)
    if anchor is None:
        cwd = os.getcwd()
        if path.startswith(cwd.rstrip(os.sep) + os.sep):
            anchor = cwd
        else:
            # a path the user named outside the current directory: from its nearest
            # existing ancestor on, every component is created by us
            anchor = os.path.dirname(path)
            while not os.path.lexists(anchor) and os.path.dirname(anchor) != anchor:
                anchor = os.path.dirname(anchor)
    anchor = os.path.abspath(anchor)
    rel = os.path.relpath(path, anchor)
    parts = [p for p in rel.split(os.sep) if p not in ('', '.')]
    if not parts or '..' in parts:
        raise ConfigError('Output directory %s must be below %s' % (path, anchor))
    fd = os.open(anchor, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            sub = _open_dir(fd, part, path)
            os.close(fd)
            fd = sub
        leaf = parts[-1]
        try:
            info = os.lstat(leaf, dir_fd=fd)
        except FileNotFoundError:
            info = None
        if info is not None:
            if not stat.S_ISDIR(info.st_mode):
                raise ConfigError('Output directory %s exists and is not a directory '
                                  '(a symbolic link or a file): remove it or choose '
                                  'another --output-dir' % path)
            sub = _open_dir(fd, leaf, path)
            try:
                names = os.listdir(sub)
                marker = _is_regular(sub, OUTPUT_MARKER)
            finally:
                os.close(sub)
            if names and not marker:
                raise ConfigError('Output directory %s exists and is not an earlier '
                                  'output of %s: remove it or choose another --output-dir'
                                  % (path, 'koji-containerbuild'))
            # shutil.rmtree never follows symlinks inside the tree
            shutil.rmtree(path)
        os.mkdir(leaf, 0o755, dir_fd=fd)
        sub = _open_dir(fd, leaf, path)
        try:
            marker_fd = os.open(OUTPUT_MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                                os.O_NOFOLLOW | _CLOEXEC, 0o644, dir_fd=sub)
            os.close(marker_fd)
        finally:
            os.close(sub)
    finally:
        os.close(fd)
    return path


def _open_dir(parent_fd, name, path):
    """Open the directory `name` below `parent_fd` without following a symlink."""
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC,
                       dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise ConfigError('Refusing output directory %s: %s is a symbolic link or not '
                              'a directory' % (path, name))
        raise


def _is_regular(dir_fd, name):
    try:
        return stat.S_ISREG(os.lstat(name, dir_fd=dir_fd).st_mode)
    except FileNotFoundError:
        return False
