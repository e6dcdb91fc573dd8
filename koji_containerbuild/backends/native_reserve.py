"""Native backend: the CGInitBuild reservation, and what a re-run finds of an earlier one.

A kojid restart re-runs the task id from the start in a new process with a new work
directory, so the reservation is kept in the task's output on the hub
(reservation.json), in two steps: the intent (NVR, no id yet) right before CGInitBuild,
then the build id, token, repository, tags and destination tag right after it. A
scratch build records its repository and tags only (a re-run removes what it pushed).

What a re-run does with the record of an earlier run of the same task id (settle_earlier):
- build COMPLETE and imported by this task: nothing is built again; the re-run finishes
  what is missing (registry tags, tagBuild) and returns the same result (native_rerun);
- build still BUILDING: refunded as CANCELED before the plan's checks (which refuse a
  BUILDING NVR); reserving the same NVR again recycles the same build id (Koji reuses a
  CANCELED build without archives);
- only the intent (killed between CGInitBuild and the record): the BUILDING build of that
  NVR whose extra names this task (Reservation.reserve puts it there) is cancelled with
  cancelBuild (allowed to the build's owner, i.e. the builder user that reserved it), so
  the NVR never stays BUILDING for good.
The token is readable by whoever can read the task's output; it only works with
CGImport/CGRefundBuild, which also require access to this content generator.
"""

import json
import os

import koji

from koji_containerbuild.backends.native_common import short
from koji_containerbuild.errors import BackendError

RESERVATION_FILE = 'reservation.json'
MAX_RESERVATION_FILE = 64 * 1024
EXTRA_KEY = 'koji_containerbuild'     # build.extra of a reservation: {task_id, owner}


class Reservation(object):
    """A CGInitBuild reservation that is refunded unless imported.

    fence: the task's ownership.TaskOwnership (or None): CGInitBuild only while the task
    is ours and open; an orphan never refunds (the re-run of its task owns the build).
    """

    def __init__(self, session, cg_name, logger, fence=None):
        self.session = session
        self.cg_name = cg_name
        self.logger = logger
        self.fence = fence
        self.build_id = None
        self.token = None
        self.imported = False
        self.refunded = False

    def reserve(self, identity, task_id=None, owner=None):
        """CGInitBuild. Koji makes the caller (the builder's user) the reserved build's
        owner whatever `data` says; `extra` is kept, so the build names its task and the
        user it is for (shown in Koji web; replaced by the import's extra)."""
        if self.fence is not None:
            self.fence.check('CGInitBuild of %s' % identity.nvr)
        data = {'name': identity.component, 'version': identity.version,
                'release': identity.release}
        if task_id is not None:
            data['extra'] = {EXTRA_KEY: {'task_id': task_id, 'owner': owner}}
        try:
            info = self.session.CGInitBuild(self.cg_name, data)
        except koji.AuthError as exc:
            raise BackendError('Cannot reserve %s: this builder has no access to content '
                               'generator %r (koji grant-cg-access): %s'
                               % (identity.nvr, self.cg_name, exc))
        except koji.GenericError as exc:
            raise BackendError('Cannot reserve build %s: %s' % (identity.nvr, exc))
        self.build_id = int(info['build_id'])
        self.token = info['token']
        self.logger.info('reserved build %s as id %s', identity.nvr, self.build_id)
        return self.build_id

    def refund(self, canceled):
        """Refund a still reserved build; errors are logged, never raised."""
        if self.build_id is None or self.refunded:
            return
        if self.fence is not None and self.fence.orphaned():
            self.logger.warning('kojid is gone: build %s stays reserved for the re-run of '
                                'this task', self.build_id)
            return
        self.refunded = True
        state = koji.BUILD_STATES['CANCELED' if canceled else 'FAILED']
        try:
            self.session.CGRefundBuild(self.cg_name, self.build_id, self.token, state)
            self.logger.info('refunded build %s (%s)', self.build_id,
                             koji.BUILD_STATES[state])
        except Exception as exc:
            level = self.logger.info if self.imported else self.logger.warning
            level('could not refund build %s: %s', self.build_id, short(exc))


def write_record(handler, record):
    """Upload `record` as this task's reservation.json (replacing an earlier one)."""
    os.makedirs(handler.workdir, exist_ok=True)
    path = os.path.join(handler.workdir, RESERVATION_FILE)
    with open(path, 'w') as f:
        json.dump(record, f)
    handler.uploadFile(path)


def intent_record(nvr, cg_name, task_id):
    """What is recorded right before CGInitBuild (no build id yet)."""
    return {'intent': True, 'nvr': nvr, 'cg': cg_name, 'task_id': task_id,
            'build_id': None, 'token': None}


def earlier_reservation(session, task_id, cg_name, logger):
    """The reservation record an earlier run of `task_id` uploaded, or None."""
    try:
        names = session.listTaskOutput(task_id) or []
        if RESERVATION_FILE not in names:
            return None
        data = session.downloadTaskOutput(task_id, RESERVATION_FILE,
                                          size=MAX_RESERVATION_FILE)
        record = json.loads(data.decode('utf-8') if isinstance(data, bytes) else data)
    except (koji.GenericError, ValueError, UnicodeDecodeError) as exc:
        logger.warning('cannot read %s of an earlier run: %s', RESERVATION_FILE, short(exc))
        return None
    if not (isinstance(record, dict) and isinstance(record.get('nvr'), str)
            and record.get('cg') == cg_name):
        logger.warning('ignoring a malformed %s of an earlier run', RESERVATION_FILE)
        return None
    if (record.get('intent') is True or record.get('scratch') is True) \
            and record.get('build_id') is None:
        return record
    if not (type(record.get('build_id')) is int and isinstance(record.get('token'), str)):
        logger.warning('ignoring a malformed %s of an earlier run', RESERVATION_FILE)
        return None
    return record


def imported_by(build, task_id):
    """Whether `build` is COMPLETE and was imported by task `task_id`."""
    if not build or build['state'] != koji.BUILD_STATES['COMPLETE']:
        return False
    extra = build.get('extra') or {}
    return task_id in (build.get('task_id'), extra.get('container_koji_task_id'))


def settle_earlier(session, task_id, cg_name, logger):
    """Deal with what an earlier run of this task left. Returns None (nothing found), or
    (what, build, record): what is 'imported' (the re-run must only finish `build`),
    'refunded' (its reservation is cancelled now), 'scratch' (a scratch build: nothing
    in Koji) or 'other' (left as it is)."""
    record = earlier_reservation(session, task_id, cg_name, logger)
    if record is None:
        return None
    if record.get('scratch') is True:
        return 'scratch', None, record
    if record.get('build_id') is None:
        cancelled = _cancel_unrecorded(session, task_id, cg_name, record, logger)
        return ('refunded' if cancelled else 'other'), None, record
    build = session.getBuild(record['build_id'])
    if not build or build['nvr'] != record['nvr']:
        return 'other', build, record
    if imported_by(build, task_id):
        logger.info('re-run: build %s (id %s) was already imported by this task',
                    build['nvr'], build['id'])
        return 'imported', build, record
    if build['state'] != koji.BUILD_STATES['BUILDING']:
        return 'other', build, record
    if _refund(session, cg_name, record, logger):
        return 'refunded', build, record
    # an orphan of the earlier run may have imported it just now
    build = session.getBuild(record['build_id'])
    if imported_by(build, task_id) and build['nvr'] == record['nvr']:
        return 'imported', build, record
    return 'other', build, record


def refund_earlier(session, task_id, cg_name, logger):
    """Refund (CANCELED) a reservation an earlier run of this task left BUILDING;
    the record it refunded, else None. (settle_earlier does this and more.)"""
    record = earlier_reservation(session, task_id, cg_name, logger)
    if record is None or record.get('build_id') is None:
        return None
    build = session.getBuild(record['build_id'])
    if not build or build['state'] != koji.BUILD_STATES['BUILDING'] \
            or build['nvr'] != record['nvr']:
        return None
    return record if _refund(session, cg_name, record, logger) else None


def _refund(session, cg_name, record, logger):
    try:
        session.CGRefundBuild(cg_name, record['build_id'], record['token'],
                              koji.BUILD_STATES['CANCELED'])
    except koji.GenericError as exc:
        logger.warning('could not refund build %s of an earlier run: %s',
                       record['build_id'], short(exc))
        return False
    logger.info('re-run: refunded build %s (id %s) reserved by the earlier run',
                record['nvr'], record['build_id'])
    return True


def reserved_for(build):
    """The task id a reservation's build.extra names (Reservation.reserve), or None."""
    mark = (build.get('extra') or {}).get(EXTRA_KEY) if build else None
    return mark.get('task_id') if isinstance(mark, dict) else None


def _cancel_unrecorded(session, task_id, cg_name, record, logger):
    """The earlier run was killed between its intent and the record of CGInitBuild's
    answer: cancel the BUILDING build it reserved (no token, so cancelBuild: allowed to
    the build's owner, the builder user that reserved it). True if cancelled."""
    build = session.getBuild(record['nvr'])
    if not build or build['state'] != koji.BUILD_STATES['BUILDING']:
        return False
    if build.get('cg_name') != cg_name or reserved_for(build) != task_id:
        logger.info('re-run: %s is BUILDING but not reserved for this task; left alone',
                    record['nvr'])
        return False
    try:
        session.cancelBuild(build['id'])
    except koji.GenericError as exc:
        # e.g. the re-run runs on another builder (another user): the admin must act
        logger.warning('build %s (id %s) was reserved by a killed run of this task and '
                       'could not be cancelled: %s (koji cancel-build %s)',
                       record['nvr'], build['id'], short(exc), build['id'])
        return False
    logger.info('re-run: cancelled build %s (id %s), reserved by the killed earlier run '
                'before it could record the reservation', record['nvr'], build['id'])
    return True
