"""Reconcile the followed OSBS logs with the complete logs, before the run is removed.

osbs-client's follow stream can lose the end of a container's log without any sign
(contract §3: a stream that drops less than 60 s after its last line is not reopened and
the generator does not end early). Once the run has ended, `get_build_logs(name)` without
follow returns each container's complete log, `{pipeline_task: {step_container: text}}`.
For every pipeline task, the lines past those the stream delivered are routed as if the
stream had delivered them: same order, nothing twice. The task's notes log says how many
lines were recovered, and which logs could not be checked.

Memory: the complete logs are what osbs-client returns (one copy); lines are cut one at a
time (`str.find`), never split into a list, and each task's text is dropped once handled,
so a 100,000-line platform log is never held twice.
"""

import hashlib


class StreamTally(object):
    """What the follow stream delivered per pipeline task: a line count and a digest of
    those lines (to tell a stream that repeated or lost lines in the middle)."""

    def __init__(self):
        self.counts = {}
        self._digests = {}

    def add(self, task, line):
        self.counts[task] = self.counts.get(task, 0) + 1
        digest = self._digests.get(task)
        if digest is None:
            digest = self._digests[task] = hashlib.sha1()
        digest.update(_line_bytes(line))

    def digest(self, task):
        digest = self._digests.get(task)
        return (digest or hashlib.sha1()).hexdigest()


def _line_bytes(line):
    if isinstance(line, bytes):
        line = line.decode('utf-8', 'replace')
    elif not isinstance(line, str):
        line = str(line)
    return line.encode('utf-8', 'surrogatepass') + b'\n'


def iter_lines(text):
    """The lines of `text` ('\\n' separated, a final newline ends the last line), one at
    a time, without building a list."""
    if isinstance(text, bytes):
        text = text.decode('utf-8', 'replace')
    elif not isinstance(text, str):
        return
    pos, size = 0, len(text)
    while pos < size:
        end = text.find('\n', pos)
        if end < 0:
            end = size
        yield text[pos:end]
        pos = end + 1


def _task_lines(steps):
    """A pipeline task's lines across its step containers, in step order; each step's
    text is released once read."""
    if not isinstance(steps, dict):
        return
    for container in list(steps):
        text = steps.pop(container)
        yield from iter_lines(text)
        del text


def reconcile(complete, tally, feed, note):
    """Route the lines the stream missed.

    complete: get_build_logs(name) without follow (consumed: entries are popped);
    tally: the StreamTally of the follow stream (no longer fed);
    feed(task, line): the router's feed;
    note(text): a line for the task's notes log.
    Returns {pipeline_task: lines recovered}.
    """
    recovered = {}
    seen_tasks = set()
    for task in list(complete):
        steps = complete.pop(task)
        seen_tasks.add(task)
        streamed = tally.counts.get(task, 0)
        digest = hashlib.sha1()
        total = 0
        added = 0
        for line in _task_lines(steps):
            total += 1
            if total <= streamed:
                digest.update(_line_bytes(line))
                continue
            if added == 0 and streamed and digest.hexdigest() != tally.digest(task):
                note('the live log of %s differs from its complete log in its first %d '
                     'lines (the stream repeated or lost lines); lines after them follow '
                     'from the complete log' % (task, streamed))
            feed(task, line)
            added += 1
        if added:
            recovered[task] = added
        elif total < streamed:
            note('the complete log of %s has %d lines, fewer than the %d the live stream '
                 'delivered; nothing recovered' % (task, total, streamed))
        elif streamed and digest.hexdigest() != tally.digest(task):
            note('the live log of %s differs from its complete log (%d lines; the stream '
                 'repeated or lost lines)' % (task, streamed))
    for task in sorted(set(tally.counts) - seen_tasks):
        note('no complete log of %s (%d lines streamed): any later lines of it are missing '
             'and cannot be counted' % (task, tally.counts[task]))
    return recovered
