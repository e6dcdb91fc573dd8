"""osbs.utils.UserWarningsStore (double of osbs-client 2.8.0, contract section 5)."""

import json
import logging
import re

logger = logging.getLogger(__name__)

_USER_WARNING_RE = re.compile(r'^.+ - USER_WARNING - (\{.*\})\n?$')


class UserWarningsStore(object):
    def __init__(self):
        self._user_warnings = set()

    @staticmethod
    def is_user_warning(line):
        return _USER_WARNING_RE.match(line)

    def store(self, line):
        match = self.is_user_warning(line)
        if not match:
            logger.error("Incorrect format for user warning, %s", line)
            return
        try:
            data = json.loads(match.group(1))
        except ValueError:
            logger.error("Incorrect JSON data input for user warning, %s", line)
            return
        self._user_warnings.add(data['message'])  # KeyError when missing, as upstream

    def __iter__(self):
        return iter(self._user_warnings)

    def __str__(self):
        return '\n'.join(self._user_warnings)

    def __len__(self):
        return len(self._user_warnings)

    def __bool__(self):
        return bool(self._user_warnings)
