"""checkout.log: the task output file kojid's own build tasks leave for their SCM checkout.

The fetch (source.fetch_source) logs its git steps through a logger; CheckoutLog is that
logger, forwarding to the task's logger and writing each line to the file as well. The
lines are already redacted (gitfetch, source); the file is bounded in size.
"""

import os

NAME = 'checkout.log'
MAX_SIZE = 256 * 1024     # bytes: the git steps of one fetch are a few lines


def logged(handler, fetch, *args, **kwargs):
    """fetch(*args, logger=..., **kwargs) leaving `checkout.log` in the task output of
    `handler` (a koji.tasks.BaseTaskHandler): the git steps and their redacted errors,
    also when the fetch fails. An upload that fails is a warning, not the task's end."""
    path = os.path.join(handler.workdir, NAME)
    log = CheckoutLog(path, kwargs.get('logger') or handler.logger)
    kwargs['logger'] = log
    try:
        return fetch(*args, **kwargs)
    except Exception as exc:
        log.error('%s', exc)
        raise
    finally:
        log.close()
        try:
            handler.uploadFile(path)
        except Exception as exc:      # koji.GenericError or OSError: the log is extra
            handler.logger.warning('could not upload %s: %s', NAME, exc)


class CheckoutLog(object):
    def __init__(self, path, logger):
        self.logger = logger
        self.size = 0
        self.fobj = open(path, 'w')

    def _write(self, level, msg, args):
        getattr(self.logger, level)(msg, *args)
        if self.fobj is None or self.size >= MAX_SIZE:
            return
        try:
            text = msg % args if args else str(msg)
        except (TypeError, ValueError):
            text = '%s %r' % (msg, args)
        text = text.rstrip('\n') + '\n'
        text = text[:MAX_SIZE - self.size]
        self.size += len(text)
        self.fobj.write(text)

    def debug(self, msg, *args, **kwargs):
        self._write('debug', msg, args)

    def info(self, msg, *args, **kwargs):
        self._write('info', msg, args)

    def warning(self, msg, *args, **kwargs):
        self._write('warning', msg, args)

    def error(self, msg, *args, **kwargs):
        self._write('error', msg, args)

    def close(self):
        if self.fobj is not None:
            self.fobj.close()
            self.fobj = None
