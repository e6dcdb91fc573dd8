"""The task's OSBS run record, kept in the task's own output on the hub.

osbs-client cannot find a pipeline run by Koji task id, and a freed task is re-run from
scratch (same id, maybe another builder) while an orphaned old process deletes the local
work directory on exit. So what a re-run needs lives on the hub, in `osbs-run.json`:

    {"version": 1, "state": "creating" | "running" | "finished",
     "name": <pipeline run name>, "kind", "section", "namespace", "scratch", "arches",
     "outcome": "succeeded" | "failed" | "cancelled" | "deleted",
     "result": {...} (succeeded), "error": "..." (failed/deleted), "removed": bool,
     "attempts": n}

Written with one overwriting rawUpload (the record is a few hundred bytes, one chunk).
"""

import json

import koji

from koji_containerbuild.backends.retry import TaskLost, is_transient_hub, retry
from koji_containerbuild.errors import BackendError

RECORD_NAME = 'osbs-run.json'
MAX_RECORD = 64 * 1024
STATES = ('creating', 'running', 'finished')


class RunRecord(object):
    def __init__(self, session, task_id, upload_path, retry_timeout=300.0, logger=None):
        self.session = session
        self.task_id = task_id
        self.upload_path = upload_path
        self.retry_timeout = retry_timeout
        self.logger = logger
        self.data = {}

    def _hub(self, func, what):
        try:
            return retry(func, is_transient_hub, self.retry_timeout, what, self.logger)
        except koji.ActionNotAllowed as exc:
            raise TaskLost('task %s: %s (%s)' % (self.task_id, what, exc))

    def load(self):
        """The record a previous attempt left, or None. A damaged record is reported and
        treated as absent (the attempt died before its first complete write)."""
        output = self._hub(lambda: self.session.listTaskOutput(self.task_id),
                           'listing task output')
        if not output or RECORD_NAME not in output:
            return None
        raw = self._hub(lambda: self.session.downloadTaskOutput(self.task_id, RECORD_NAME),
                        'reading %s' % RECORD_NAME)
        try:
            if isinstance(raw, str):
                raw = raw.encode('utf-8')
            if len(raw) > MAX_RECORD:
                raise ValueError('record too large')
            data = json.loads(raw.decode('utf-8'))
            if not isinstance(data, dict) or data.get('state') not in STATES:
                raise ValueError('unexpected content')
            name = data.get('name')
            if name is not None and not isinstance(name, str):
                raise ValueError('bad run name')
        except (ValueError, UnicodeDecodeError) as exc:
            if self.logger:
                self.logger.warning('Ignoring damaged %s of task %s: %s',
                                    RECORD_NAME, self.task_id, exc)
            return None
        self.data = data
        return data

    def save(self, **fields):
        """Merge `fields` into the record and upload it (overwriting)."""
        data = dict(self.data)
        data.update(fields)
        data['version'] = 1
        try:
            blob = json.dumps(data, sort_keys=True).encode('utf-8')
        except (TypeError, ValueError) as exc:
            raise BackendError('cannot record the OSBS run: %s' % exc)
        self._hub(lambda: self.session.rawUpload(blob, 0, self.upload_path, RECORD_NAME,
                                                 overwrite=True),
                  'writing %s' % RECORD_NAME)
        self.data = data
        return data
