"""Route OSBS (Tekton) log lines to Koji task output files through a LogRelay.

osbs-client yields ``(pipeline_task, line)`` pairs (osbs-client-contract §3). Each line
goes to:

- ``osbs-build.log``: every line, prefixed with its pipeline task name;
- ``<platform>.log``: lines of ``binary-container-build-<arch>`` tasks (the arch with
  dashes, ``x86-64`` -> platform ``x86_64``) once the platform is confirmed — it was
  requested, or the backend confirmed it later (``confirm_platforms``, e.g. from
  ``get_final_platforms``). Until then up to ``PENDING_LINES`` lines (``PENDING_BYTES``
  characters) are held, for at most ``MAX_PENDING_PLATFORMS`` platform names; beyond
  that they stay only in ``osbs-build.log`` and a note (or a warning) says so;
- ``remote-sources.log``: lines of the remote-sources task.

User-warning lines (contract §5) are collected (bounded, deduplicated) and left out of the
logs, but only from the pipeline tasks that run atomic-reactor's plugins
(``WARNING_TASKS``): build tasks print whatever the user's Dockerfile RUNs print, and a
RUN step must not put words in the task result. A line that looks like one but does not
parse, is longer than ``MAX_WARNING_LINE``, or comes from another task stays in the logs.
The parse is linear (no regex backtracking): the router's lock is held meanwhile.

Metadata marker lines (``platform:_metadata_ <path>``, contract §6) name a file copied into
the task output. Build tasks print whatever the user's Dockerfile RUNs print, so a marker
counts only when it comes from the exit task, where atomic-reactor's koji_import logs it
(``MARKER_TASKS``), of a scratch build (the only builds it is logged for), names a
``*.json`` file strictly inside the Koji work directory (no absolute path, ``..`` or
symlink leaving it) of at most ``MAX_METADATA_BYTES``, and only the first such file of the
build is copied. A marker from any other task is an ordinary log line; a refused one from
the exit task is logged and dropped.
Nothing here raises on hostile input: malformed JSON, non-string messages, invalid UTF-8,
hostile paths.
"""

import json
import logging
import os
import re
import stat
import threading

from koji_containerbuild import errors
from koji_containerbuild.logs import check_log_name

BUILD_LOG = 'osbs-build.log'
REMOTE_SOURCES_LOG = 'remote-sources.log'
USER_WARNINGS_LOG = 'user_warnings.log'
PLATFORM_TASK_PREFIX = 'binary-container-build-'
# pipeline tasks that fetch remote sources (atomic-reactor pipelines name them after the
# tool they run)
REMOTE_SOURCES_TASKS = ('binary-container-cachito', 'binary-container-cachi2',
                        'binary-container-hermeto', 'binary-container-remote-sources',
                        'remote-sources')
METADATA_MARKER = 'platform:_metadata_'
# the pipeline tasks running atomic-reactor's exit plugins (koji_import) in the binary and
# source pipelines; a strict allowlist: build tasks run user code
MARKER_TASKS = ('binary-container-exit', 'source-container-exit')
MAX_METADATA_FILES = 1  # koji_import uploads one metadata.json per build
# the pipeline tasks running atomic-reactor's plugins (init, prebuild, postbuild, exit),
# where user warnings are logged; a strict allowlist, like MARKER_TASKS
WARNING_TASKS = ('binary-container-init', 'binary-container-prebuild',
                 'binary-container-postbuild', 'binary-container-exit',
                 'source-container-init', 'source-container-exit')
USER_WARNING_SEP = ' - USER_WARNING - '
MAX_WARNING_LINE = 64 * 1024   # longer lines are never taken for a warning

PENDING_LINES = 10000          # per unconfirmed platform ...
PENDING_BYTES = 4 * 1024 * 1024  # ... and at most this much text
MAX_WARNINGS = 1000
MAX_WARNING_CHARS = 4096
MAX_PENDING_PLATFORMS = 16    # unconfirmed platform names held at once
MAX_METADATA_BYTES = 16 * 1024 * 1024
MAX_MARKER_PATH = 4096

_PLATFORM_RE = re.compile(r'^[A-Za-z0-9_]{1,64}\Z')
_OWN_LOGS = (BUILD_LOG, REMOTE_SOURCES_LOG, USER_WARNINGS_LOG)


def platform_of_task(pipeline_task):
    """The platform a ``binary-container-build-<arch>`` task builds, else None."""
    if not isinstance(pipeline_task, str) or not pipeline_task.startswith(PLATFORM_TASK_PREFIX):
        return None
    platform = pipeline_task[len(PLATFORM_TASK_PREFIX):].replace('-', '_')
    return platform if _PLATFORM_RE.match(platform) else None


def _warning_json(line):
    r"""The JSON text of a user-warning line, as osbs-client's
    ``^.+ - USER_WARNING - (\{.*\})$`` finds it (the rightmost separator after at least
    one character, followed by ``{``, the line ending in ``}``, a final newline allowed),
    in linear time: each rfind scans left of the previous one."""
    text = line[:-1] if line.endswith('\n') else line
    if not text.endswith('}') or '\n' in text:
        return None
    end = len(text)
    while True:
        pos = text.rfind(USER_WARNING_SEP, 1, end)
        if pos < 1:
            return None
        start = pos + len(USER_WARNING_SEP)
        if text.startswith('{', start):
            return text[start:]
        end = start - 1   # separators may overlap by their ' - '


def parse_user_warning(line):
    """The message of a user-warning line, or None (never raises)."""
    if not isinstance(line, str) or len(line) > MAX_WARNING_LINE:
        return None
    raw = _warning_json(line)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get('message') is None:
        return None
    message = data['message']
    if not isinstance(message, str):
        message = json.dumps(message, sort_keys=True)
    return message[:MAX_WARNING_CHARS]


def read_inside(base_dir, relpath, max_bytes=MAX_METADATA_BYTES):
    """Read ``<base_dir>/<relpath>`` only if it is a regular file inside ``base_dir``.

    Returns (bytes, None) or (None, reason). Refused: empty, absolute or '..' paths, NUL
    bytes, anything whose real path leaves ``base_dir`` (symlinks included), non-regular
    files, files over ``max_bytes``. The resolved path is opened one component at a time
    with O_NOFOLLOW, so a symlink swapped in after the check is refused too.
    """
    if not relpath or len(relpath) > MAX_MARKER_PATH or '\0' in relpath:
        return None, 'empty, overlong or NUL path'
    if relpath.startswith('/') or os.path.isabs(relpath):
        return None, 'absolute path'
    if '..' in relpath.split('/'):
        return None, "'..' in path"
    try:
        base = os.path.realpath(base_dir)
        target = os.path.realpath(os.path.join(base, relpath))
    except (OSError, ValueError) as exc:
        return None, 'cannot resolve: %s' % exc
    if not target.startswith(base.rstrip('/') + '/'):
        return None, 'resolves outside the work directory'
    parts = target[len(base.rstrip('/')) + 1:].split('/')
    fds = []
    try:
        fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
        fds.append(fd)
        for part in parts[:-1]:
            fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            fds.append(fd)
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        fds.append(fd)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, 'not a regular file'
        if info.st_size > max_bytes:
            return None, 'too large (%d bytes)' % info.st_size
        data = os.read(fd, max_bytes + 1)
        if len(data) > max_bytes:
            return None, 'too large'
        return data, None
    except OSError as exc:
        return None, 'cannot open: %s' % exc.strerror
    finally:
        for fd in fds:
            os.close(fd)


class OsbsLogRouter(object):
    """Feed it osbs-client's ``(pipeline_task, line)`` pairs; it writes through ``relay``.

    Parameters:
        relay: a LogRelay (or anything with ``write(filename, line)``,
            ``write_bytes(filename, data)`` and ``has_file(filename)``).
        koji_work_dir: the Koji work directory seen by this builder
            (``<options.topdir>/work``); metadata markers resolve inside it only.
        platforms: requested platforms (confirmed at once), or None if unknown.
        logger: where skipped markers and oddities are reported.
        scratch: True for scratch builds; metadata markers count only then.
    """

    def __init__(self, relay, koji_work_dir=None, platforms=None, logger=None,
                 max_metadata_bytes=MAX_METADATA_BYTES, pending_lines=PENDING_LINES,
                 scratch=False):
        self.relay = relay
        self.koji_work_dir = koji_work_dir
        self.scratch = bool(scratch)
        self._unheld_warned = False
        self.logger = logger or logging.getLogger('koji.containerbuild.osbs_logs')
        self.max_metadata_bytes = max_metadata_bytes
        self.pending_lines = pending_lines
        self._confirmed = set()
        self._pending = {}         # platform -> list of lines
        self._dropped = {}         # platform -> lines not held
        self._pending_size = {}    # platform -> characters held
        self._warnings = set()
        self._warnings_dropped = 0
        self._copied = set()
        self.metadata_files = []
        # feed() may run in a log-following thread while the main thread confirms
        # platforms or finishes
        self._lock = threading.RLock()
        self.confirm_platforms(platforms or ())

    # ------------------------------------------------------------ platforms

    def confirm_platforms(self, platforms):
        """Mark platforms as confirmed (e.g. the answer of get_final_platforms) and
        release the lines held for them."""
        with self._lock:
            self._confirm(platforms)

    def _confirm(self, platforms):
        for platform in platforms or ():
            if not isinstance(platform, str) or not _PLATFORM_RE.match(platform):
                self.logger.warning('Ignoring invalid platform name %r', platform)
                continue
            if platform in self._confirmed:
                continue
            self._confirmed.add(platform)
            logname = '%s.log' % platform
            dropped = self._dropped.pop(platform, 0)
            if dropped:
                self.relay.write(logname, '[%d earlier lines are only in %s]'
                                 % (dropped, BUILD_LOG))
            for line in self._pending.pop(platform, ()):
                self.relay.write(logname, line)
            self._pending_size.pop(platform, None)

    @property
    def confirmed_platforms(self):
        return sorted(self._confirmed)

    # ------------------------------------------------------------ lines

    def feed(self, pipeline_task, line):
        """Route one line. Never raises on hostile content."""
        with self._lock:
            self._feed(pipeline_task, line)

    def _feed(self, pipeline_task, line):
        if not isinstance(pipeline_task, str):
            pipeline_task = str(pipeline_task)
        if isinstance(line, bytes):
            text = line.decode('utf-8', 'replace')
        elif isinstance(line, str):
            text = line
        else:
            text = str(line)
        if METADATA_MARKER in text and pipeline_task in MARKER_TASKS:
            self._metadata_marker(text)
            return
        if pipeline_task in WARNING_TASKS and USER_WARNING_SEP in text:
            message = parse_user_warning(text)
            if message is not None:
                self._add_warning(message)
                return
        self.relay.write(BUILD_LOG, '%s: %s' % (pipeline_task, text))
        platform = platform_of_task(pipeline_task)
        if platform is not None:
            if platform in self._confirmed:
                self.relay.write('%s.log' % platform, text)
            elif platform not in self._pending and \
                    len(self._pending) >= MAX_PENDING_PLATFORMS:
                if not self._unheld_warned:
                    self._unheld_warned = True
                    self.logger.warning('More than %d unconfirmed platforms; lines of %s '
                                        'and later ones stay only in %s',
                                        MAX_PENDING_PLATFORMS, platform, BUILD_LOG)
            else:
                held = self._pending.setdefault(platform, [])
                size = self._pending_size.get(platform, 0) + len(text)
                if len(held) < self.pending_lines and size <= PENDING_BYTES:
                    held.append(text)
                    self._pending_size[platform] = size
                else:
                    self._dropped[platform] = self._dropped.get(platform, 0) + 1
        elif pipeline_task in REMOTE_SOURCES_TASKS:
            self.relay.write(REMOTE_SOURCES_LOG, text)

    def _add_warning(self, message):
        if message in self._warnings:
            return
        if len(self._warnings) >= MAX_WARNINGS:
            self._warnings_dropped += 1
            return
        self._warnings.add(message)

    def _metadata_marker(self, text):
        relpath = text.strip().split(' ')[-1] if text.strip() else ''
        name = os.path.basename(relpath)
        if not self.scratch:
            self.logger.warning('Metadata marker skipped (not a scratch build): %r',
                                relpath[:200])
            return
        if len(self.metadata_files) >= MAX_METADATA_FILES:
            self.logger.warning('Metadata marker skipped (%d file(s) already copied): %r',
                                MAX_METADATA_FILES, relpath[:200])
            return
        if not name.endswith('.json'):
            self.logger.warning('Metadata marker skipped (not a .json file): %r',
                                relpath[:200])
            return
        if self.koji_work_dir is None:
            self.logger.warning('Metadata marker skipped (no Koji work directory): %r',
                                relpath[:200])
            return
        try:
            check_log_name(name)
        except errors.BackendError:
            self.logger.warning('Metadata marker skipped: bad file name %r', name[:200])
            return
        if name in _OWN_LOGS or name.endswith('.log') or name in self._copied \
                or self.relay.has_file(name):
            self.logger.warning('Metadata marker skipped: %s already in the task output',
                                name)
            return
        data, reason = read_inside(self.koji_work_dir, relpath, self.max_metadata_bytes)
        if data is None:
            self.logger.warning('Metadata marker skipped (%s): %r', reason, relpath[:200])
            return
        self._copied.add(name)
        self.relay.write_bytes(name, data)
        self.metadata_files.append(name)

    # ------------------------------------------------------------ results

    def user_warnings(self):
        """The collected user warnings, sorted."""
        with self._lock:
            return sorted(self._warnings)

    def finish(self):
        """Write user_warnings.log if there are warnings; returns user_warnings()."""
        with self._lock:
            return self._finish()

    def _finish(self):
        warnings = sorted(self._warnings)
        for message in warnings:
            self.relay.write(USER_WARNINGS_LOG, message)
        if self._warnings_dropped:
            self.relay.write(USER_WARNINGS_LOG, '[%d more warnings not kept]'
                             % self._warnings_dropped)
        self._pending.clear()
        self._pending_size.clear()
        return warnings
