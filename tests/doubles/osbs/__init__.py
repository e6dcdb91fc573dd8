"""A test double of osbs-client 2.8.0 (`osbs`), following
/work/shared/docs/osbs-client-contract.md.

The "cluster" is a state directory named by `openshift_url = file:///<dir>/` in the
osbs configuration, so several processes (a task handler in a child process, the test
itself) see the same pipeline runs. Tests drive it with `osbs._cluster.Cluster`.
"""

import json
import logging

from .constants import USER_WARNING_LEVEL, USER_WARNING_LEVEL_NAME

__version__ = "2.8.0"

logging.addLevelName(USER_WARNING_LEVEL, USER_WARNING_LEVEL_NAME)


def _user_warning(self, msg, *args, **kwargs):
    if self.isEnabledFor(USER_WARNING_LEVEL):
        self._log(USER_WARNING_LEVEL, json.dumps({'message': msg}), args, **kwargs)


logging.Logger.user_warning = _user_warning

_logger = logging.getLogger('osbs')
if not any(getattr(h, '_osbs_double', False) for h in _logger.handlers):
    _handler = logging.StreamHandler()
    _handler.setLevel(logging.WARNING)
    _handler._osbs_double = True
    _logger.addHandler(_handler)
