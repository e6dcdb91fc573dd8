"""Native backend: the CGInitBuild reservation, and what a re-run finds of an earlier one.

A kojid restart re-runs the task id from the start in a new process with a new work
directory, so the reservation is kept in the task's output on the hub
(reservation.json). A re-run refunds a reservation still BUILDING as CANCELED before
the plan's checks (which refuse a BUILDING NVR); reserving the same NVR again then
recycles the same build id (Koji reuses a CANCELED build without archives).
The token is readable by whoever can read the task's output; it only works with
CGImport/CGRefundBuild, which also require access to this content generator.
"""

import json

import koji

from koji_containerbuild.backends.native_common import short
from koji_containerbuild.errors import BackendError

RESERVATION_FILE = 'reservation.json'
MAX_RESERVATION_FILE = 64 * 1024


class Reservation(object):
    """A CGInitBuild reservation that is refunded unless imported."""

    def __init__(self, session, cg_name, logger):
        self.session = session
        self.cg_name = cg_name
        self.logger = logger
        self.build_id = None
        self.token = None
        self.imported = False
        self.refunded = False

    def reserve(self, identity):
        data = {'name': identity.component, 'version': identity.version,
                'release': identity.release}
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
        self.refunded = True
        state = koji.BUILD_STATES['CANCELED' if canceled else 'FAILED']
        try:
            self.session.CGRefundBuild(self.cg_name, self.build_id, self.token, state)
            self.logger.info('refunded build %s (%s)', self.build_id,
                             koji.BUILD_STATES[state])
        except Exception as exc:
            level = self.logger.info if self.imported else self.logger.warning
            level('could not refund build %s: %s', self.build_id, short(exc))


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
    if not (isinstance(record, dict) and type(record.get('build_id')) is int
            and isinstance(record.get('token'), str) and isinstance(record.get('nvr'), str)
            and record.get('cg') == cg_name):
        logger.warning('ignoring a malformed %s of an earlier run', RESERVATION_FILE)
        return None
    return record


def refund_earlier(session, task_id, cg_name, logger):
    """Refund (CANCELED) a reservation an earlier run of this task left BUILDING."""
    record = earlier_reservation(session, task_id, cg_name, logger)
    if record is None:
        return None
    build = session.getBuild(record['build_id'])
    if not build or build['state'] != koji.BUILD_STATES['BUILDING'] \
            or build['nvr'] != record['nvr']:
        return None
    try:
        session.CGRefundBuild(cg_name, record['build_id'], record['token'],
                              koji.BUILD_STATES['CANCELED'])
    except koji.GenericError as exc:
        logger.warning('could not refund build %s of an earlier run: %s',
                       record['build_id'], short(exc))
        return None
    logger.info('re-run: refunded build %s (id %s) reserved by the earlier run',
                record['nvr'], record['build_id'])
    return record
