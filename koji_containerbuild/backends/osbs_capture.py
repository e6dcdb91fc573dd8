"""What osbs-client prints goes to the task's log, once.

- osbs-client clones the repository on the builder (contract §2.1) with git writing to the
  process's stdout/stderr, which is kojid's: `Cloning into ...`, `HEAD is now at ...` end
  up in kojid's output. While `create_*` runs, file descriptors 1 and 2 are redirected to a
  pipe whose lines go to the task's log (`capture_fds`).
- Importing osbs puts a stderr handler on the `osbs` logger, and its records also propagate
  to kojid's logging: every warning twice. `quiet_osbs_stderr` removes that handler;
  `osbs_records_to_task` sends the `osbs` logger's warnings to the task's log and to the
  task's logger while a task runs, and nowhere else.
"""

import contextlib
import logging
import os
import sys
import threading

READ_CHUNK = 65536
MAX_LINE = 65536     # longer output lines are cut (and say so)


def quiet_osbs_stderr():
    """Drop the stderr handler osbs-client puts on its logger at import."""
    log = logging.getLogger('osbs')
    for handler in list(log.handlers):
        if type(handler) is logging.StreamHandler and \
                getattr(handler, 'stream', None) in (sys.stderr, sys.__stderr__):
            log.removeHandler(handler)


class _ToTask(logging.Handler):
    def __init__(self, write, logger):
        logging.Handler.__init__(self, logging.WARNING)
        self.write = write
        self.task_logger = logger

    def emit(self, record):
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        self.write('osbs-client %s: %s' % (record.levelname, text))
        self.task_logger.log(record.levelno, 'osbs-client: %s', text)


@contextlib.contextmanager
def osbs_records_to_task(write, logger):
    """While the block runs, `osbs` warnings go to write(line) and `logger`, once."""
    log = logging.getLogger('osbs')
    handler = _ToTask(write, logger)
    propagate = log.propagate
    log.addHandler(handler)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


def _pump(fd, write):
    """Lines from `fd` to write(line), in bounded pieces, until EOF."""
    pending = b''
    cut = False
    while True:
        try:
            chunk = os.read(fd, READ_CHUNK)
        except OSError:
            chunk = b''
        if not chunk:
            break
        pending += chunk
        while True:
            end = pending.find(b'\n')
            if end < 0:
                break
            line, pending = pending[:end], pending[end + 1:]
            if not cut:
                write(line.rstrip(b'\r').decode('utf-8', 'replace'))
            cut = False
        if len(pending) > MAX_LINE:
            if not cut:   # the rest of this line is dropped, once said
                write(pending[:MAX_LINE].decode('utf-8', 'replace') + ' [line cut]')
            pending = b''
            cut = True
    if pending and not cut:
        write(pending.rstrip(b'\r').decode('utf-8', 'replace'))


@contextlib.contextmanager
def capture_fds(write):
    """Redirect this process's stdout and stderr (fds 1 and 2: what child processes
    inherit) to write(line) while the block runs."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    read_fd, write_fd = os.pipe()
    saved = (os.dup(1), os.dup(2))
    reader = threading.Thread(target=_pump, args=(read_fd, write), name='osbs-output')
    reader.daemon = True
    reader.start()
    interrupted = True
    try:
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        yield
        interrupted = False
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        # EOF once every copy of the pipe's write end is closed; a signal (kojid killing
        # the task) leaves no time to wait for a child still writing
        reader.join(0.2 if interrupted else 5.0)
        if not reader.is_alive():
            os.close(read_fd)
