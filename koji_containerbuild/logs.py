"""Relay build log lines to Koji task output files, live, without forking.

Design (details in docs/logs.md):

- ``write()`` appends the line to a local file ``<workdir>/logs/<filename>`` through a
  small write buffer; memory use does not grow with the log length.
- One background thread pushes the bytes not yet on the hub with ``session.rawUpload``
  at explicit offsets (the hub truncates a file to the offset before writing, so a
  retried chunk replaces itself: no line is lost or duplicated), every
  ``flush_interval`` seconds and on ``flush()``.
- A failed upload (any error but ``koji.ActionNotAllowed``) is retried with exponential
  backoff for up to ``retry_timeout`` seconds. ``ActionNotAllowed`` means the task is no
  longer OPEN on this host (cancelled, or freed after a kojid restart): uploading stops at
  once and the fault is kept in ``error``.
- Reattach: ``resume_offsets`` gives the bytes of each file already on the hub; the re-run
  writes the log again from the start and the relay skips that prefix. Files named in
  ``append`` are not replayed: what is written goes after the bytes already on the hub.
"""

import logging
import os
import re
import threading
import time

import koji
import koji.util

from koji_containerbuild import errors

# Upload chunk: the default ClientSession upload_blocksize, well under the hub's
# 4 MiB request limit.
CHUNK_SIZE = 1024 * 1024
# Local write buffer per file; a flush moves it to the file before each upload pass.
WRITE_BUFFER = 64 * 1024
MAX_BACKOFF = 30.0

_NAME_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}\Z')


def check_log_name(filename):
    """Return ``filename`` if it is a plain file name the hub accepts, else BackendError.

    The hub rejects names with a directory part or a leading dot; we also refuse '..'
    anywhere, control characters and anything outside a conservative character set.
    """
    if not isinstance(filename, str) or not _NAME_RE.match(filename) or '..' in filename:
        raise errors.BackendError('Invalid log file name: %r' % (filename,))
    return filename


def _encode(line):
    if isinstance(line, bytes):
        return line
    if not isinstance(line, str):
        line = str(line)
    try:
        return line.encode('utf-8')
    except UnicodeEncodeError:
        # lone surrogates: bytes smuggled in by surrogateescape go back as they were,
        # anything else becomes U+FFFD
        try:
            return line.encode('utf-8', 'surrogateescape')
        except UnicodeEncodeError:
            return line.encode('utf-8', 'replace')


class _LockedCall(object):
    """A method or namespace of the session (``session.host``) whose calls hold the
    lock; its attributes (``host.subtask``) are wrapped the same way."""

    __slots__ = ('_target', '_lock')

    def __init__(self, target, lock):
        self._target = target
        self._lock = lock

    def __call__(self, *args, **kwargs):
        with self._lock:
            return self._target(*args, **kwargs)

    def __getattr__(self, name):
        return _wrap(getattr(self._target, name), self._lock)


_PLAIN = (dict, list, tuple, set, frozenset, str, bytes, int, float, bool, type(None))


def _wrap(value, lock):
    # data passes through; methods and namespaces (``session.host``) get the lock
    return value if isinstance(value, _PLAIN) else _LockedCall(value, lock)


class SerializedSession(object):
    """Proxy making one koji ClientSession safe to share between threads.

    ClientSession numbers every call (``callnum``) and the hub refuses a call whose number
    is lower than one it has seen (SequenceError); two threads calling at once can send
    them out of order. The relay's uploader thread and the task's own thread must
    therefore share the session through this proxy (``handler.session =
    SerializedSession(handler.session)``): each call holds one re-entrant lock from
    numbering to answer. Plain attributes (``opts``, ``logged_in``) pass through.
    """

    def __init__(self, session, lock=None):
        object.__setattr__(self, '_session', session)
        object.__setattr__(self, '_lock', lock or threading.RLock())

    def __getattr__(self, name):
        return _wrap(getattr(self._session, name), self._lock)

    def __setattr__(self, name, value):
        setattr(self._session, name, value)


def hub_output_sizes(session, task_id):
    """{filename: size} of the task's output on the hub (for ``resume_offsets``)."""
    output = session.listTaskOutput(task_id, stat=True)
    sizes = {}
    for name, info in (output or {}).items():
        try:
            sizes[name] = int(info['st_size'])
        except (KeyError, TypeError, ValueError):
            continue
    return sizes


class _LogFile(object):
    __slots__ = ('name', 'writer', 'reader', 'written', 'uploaded')

    def __init__(self, name, path, uploaded, append=False):
        self.name = name
        # one inode for both ends: the files survive the work directory being removed
        self.writer = open(path, 'wb', buffering=WRITE_BUFFER)
        self.reader = os.open(path, os.O_RDONLY)
        self.written = 0
        self.uploaded = uploaded
        if append and uploaded:
            # new lines go after the hub's bytes (the local file is sparse before them)
            self.writer.seek(uploaded)
            self.written = uploaded


class LogRelay(object):
    """Append log lines to task output files on the hub, live.

    Parameters:
        session: the task's hub session (rawUpload, listTaskOutput).
        upload_path: the task's upload dir, ``handler.getUploadDir()``.
        workdir: local directory; files go to ``<workdir>/logs/``.
        flush_interval: seconds between background upload passes (<= 0.5 keeps lines
            visible on the hub within 2 s).
        retry_timeout: seconds an upload is retried (exponential backoff) before the
            relay gives up with a BackendError in ``error``.
        resume_offsets: {filename: bytes already on the hub}; that prefix is not sent
            again.
        append: file names whose new lines go after the bytes already on the hub (notes
            of this attempt, not a replay of the previous one).
        retry_delay: first backoff delay (doubles up to 30 s).
    """

    def __init__(self, session, upload_path, workdir, flush_interval=0.5, retry_timeout=300.0,
                 logger=None, resume_offsets=None, retry_delay=0.5, chunk_size=CHUNK_SIZE,
                 append=()):
        self.session = session
        self.upload_path = upload_path
        self.logdir = os.path.join(workdir, 'logs')
        self.flush_interval = float(flush_interval)
        self.retry_timeout = float(retry_timeout)
        self.retry_delay = float(retry_delay)
        self.chunk_size = int(chunk_size)
        self.logger = logger or logging.getLogger('koji.containerbuild.logs')
        self.error = None
        self._resume = dict(resume_offsets or {})
        self._append = frozenset(append)
        self._files = {}
        self._order = []
        self._lock = threading.Lock()       # guards _files and writers
        self._cond = threading.Condition()  # thread wake-up and flush hand-shake
        self._requested = 0
        self._done = 0
        self._stopping = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name='koji-log-relay')
        self._thread.daemon = True
        self._thread.start()

    # ------------------------------------------------------------ writer side

    def _open(self, filename):
        check_log_name(filename)
        try:
            os.makedirs(self.logdir, exist_ok=True)
            entry = _LogFile(filename, os.path.join(self.logdir, filename),
                             int(self._resume.get(filename, 0)), filename in self._append)
        except OSError as exc:
            raise errors.BackendError('Cannot create local log file %s: %s'
                                      % (filename, exc))
        self._files[filename] = entry
        self._order.append(entry)
        return entry

    def write(self, filename, line):
        """Append ``line`` (str or bytes) plus a newline to log ``filename``."""
        self.write_bytes(filename, _encode(line) + b'\n')

    def write_bytes(self, filename, data):
        """Append raw bytes to ``filename`` (no newline added)."""
        with self._lock:
            if self._closed:
                raise errors.BackendError('Log relay is closed')
            entry = self._files.get(filename)
            if entry is None:
                entry = self._open(filename)
            entry.writer.write(data)
            entry.written += len(data)

    def has_file(self, filename):
        with self._lock:
            return filename in self._files

    def uploaded_sizes(self):
        """{filename: bytes on the hub} as far as this relay knows."""
        with self._lock:
            return dict((e.name, max(e.uploaded, 0)) for e in self._order)

    def written_sizes(self):
        with self._lock:
            return dict((e.name, e.written) for e in self._order)

    def flush(self):
        """Push everything written so far to the hub now; raises ``error`` if the relay
        has stopped."""
        with self._cond:
            if self._thread.is_alive():
                self._requested += 1
                target = self._requested
                self._cond.notify_all()
                while self._done < target and self._thread.is_alive():
                    self._cond.wait(1.0)
        if self.error is not None:
            raise self.error

    def close(self, raise_error=True):
        """Final flush, stop the uploader thread, close local files. Idempotent.

        Raises ``error`` (if any) unless ``raise_error`` is false.
        """
        with self._cond:
            self._stopping = True
            self._requested += 1
            self._cond.notify_all()
        self._thread.join()
        with self._lock:
            if not self._closed:
                self._closed = True
                for entry in self._order:
                    try:
                        entry.writer.close()
                    except OSError:
                        pass
                    os.close(entry.reader)
        if raise_error and self.error is not None:
            raise self.error

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        # don't mask the body's exception with an upload error
        self.close(raise_error=exc_type is None)
        return False

    # ------------------------------------------------------------ uploader side

    def _run(self):
        while True:
            with self._cond:
                if self._done >= self._requested and not self._stopping:
                    self._cond.wait(self.flush_interval)
                target = self._requested
                stopping = self._stopping
            try:
                self._push_all()
            except koji.ActionNotAllowed as exc:
                self.logger.warning('Task lost (%s); log upload stopped', exc)
                self.error = exc
            except errors.BackendError as exc:
                self.logger.error('%s', exc)
                self.error = exc
            with self._cond:
                self._done = max(self._done, target)
                self._cond.notify_all()
            if stopping or self.error is not None:
                return

    def _pending(self):
        with self._lock:
            pending = []
            for entry in self._order:
                if entry.written > entry.uploaded:
                    entry.writer.flush()
                    pending.append((entry, entry.written))
            return pending

    def _push_all(self):
        for entry, size in self._pending():
            while entry.uploaded < size:
                length = min(self.chunk_size, size - entry.uploaded)
                chunk = os.pread(entry.reader, length, entry.uploaded)
                if not chunk:
                    raise errors.BackendError('Local log file %s shrank' % entry.name)
                self._upload(entry, chunk)

    def _upload(self, entry, chunk):
        offset = entry.uploaded
        digest = koji.util.adler32_constructor(chunk).hexdigest()
        first_failure = None
        attempt = 0
        while True:
            try:
                result = self.session.rawUpload(chunk, offset, self.upload_path, entry.name,
                                                overwrite=True)
                if result.get('size') != len(chunk) or result.get('hexdigest') != digest:
                    raise koji.GenericError('upload of %s at offset %d was damaged: %r'
                                            % (entry.name, offset, result))
                break
            except koji.ActionNotAllowed:
                raise
            except Exception as exc:  # network or hub trouble: retry, bounded
                now = time.monotonic()
                if first_failure is None:
                    first_failure = now
                elapsed = now - first_failure
                if elapsed >= self.retry_timeout:
                    raise errors.BackendError(
                        'Uploading %s to the hub failed for %.0f s: %s'
                        % (entry.name, elapsed, exc))
                delay = min(self.retry_delay * (2 ** attempt), MAX_BACKOFF,
                            self.retry_timeout - elapsed)
                attempt += 1
                self.logger.warning('Upload of %s at offset %d failed (%s); retry in %.1f s',
                                    entry.name, offset, exc, delay)
                time.sleep(max(delay, 0))
        with self._lock:
            entry.uploaded = offset + len(chunk)
