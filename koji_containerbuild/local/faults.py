"""Koji-free copies of the koji exception classes errors.py derives from (local command).

`import koji` costs about 0.1 s (requests, gssapi, rpm, koji.tasks come with it): more
than all the rest the local command does before its first buildah call, and that command
talks to no Koji hub. When the process is that command (local/cli.py main() without
argv), it calls use() before anything imports errors.py, which then derives its faults
from these classes: same names, same fault codes, same message rule. Koji keeps such a
copy for kojikamid too ("kojikamid dup" in koji/__init__.py). The hub, the builder, the
CLI plugin and any process that imported koji or errors first never get them: their
faults stay koji.GenericError subclasses.
"""

import sys

WANTED = False


def use():
    """Ask errors.py for these bases. True when it will use them; False when errors.py or
    koji is imported already (then the faults are koji's, as everywhere else)."""
    global WANTED
    if 'koji_containerbuild.errors' in sys.modules or 'koji' in sys.modules:
        return False
    WANTED = True
    return True


class GenericError(Exception):
    """koji.GenericError: the base of the faults, code 1000."""
    faultCode = 1000
    fromFault = False

    def __str__(self):
        # koji's rule: a fault's message is its first argument
        try:
            return str(self.args[0]['args'][0])
        except Exception:
            try:
                return str(self.args[0])
            except Exception:
                return str(self.__dict__)


class ActionNotAllowed(GenericError):
    faultCode = 1004


class BuildError(GenericError):
    faultCode = 1005


class ParameterError(GenericError):
    faultCode = 1019


class ConfigurationError(GenericError):
    faultCode = 1021
