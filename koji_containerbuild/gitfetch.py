"""Run git safely for source checkouts: clean environment, timeouts, no credential leaks.

The repository URL is user input and the server's answers are hostile: git runs with no
user or system config, no prompts, only the URL's own transport allowed, no hooks, in
its own process group (killed on timeout or interruption), and every message that may
reach a log or a fault is redacted.
"""

import os
import re
import subprocess
import tempfile
import time

from koji_containerbuild import scmurl
from koji_containerbuild.procs import kill_group, wait_exit
from koji_containerbuild.errors import SourceError

DEFAULT_TIMEOUT = 600.0
MAX_MESSAGE = 2000
# git transports each SCM scheme may use (also for redirects and lazy fetches).
_PROTOCOLS = {
    'git://': 'git',
    'git+http://': 'http:https',
    'git+https://': 'https',
    'git+rsync://': 'rsync',
    'git+ssh://': 'ssh',
}
_CONFIG = (
    'core.hooksPath=/dev/null',
    'core.fsmonitor=false',
    'credential.helper=',
    'protocol.version=2',
    'fetch.recurseSubmodules=false',
    'submodule.recurse=false',
    'advice.detachedHead=false',
    'init.defaultBranch=main',
    'gc.auto=0',
    'maintenance.auto=false',
)


def protocols_for(scheme):
    return _PROTOCOLS.get(scheme, '')


class Git(object):
    """git commands in one repository directory with a hardened environment."""

    def __init__(self, repodir, scheme, secrets=(), timeout=DEFAULT_TIMEOUT, logger=None,
                 home=None):
        self.repodir = repodir
        self.secrets = [s for s in secrets if s]
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.logger = logger
        self.env = {
            'PATH': os.environ.get('PATH', '/usr/bin:/bin'),
            'HOME': home or repodir,
            'LC_ALL': 'C',
            'GIT_CONFIG_NOSYSTEM': '1',
            'GIT_CONFIG_GLOBAL': '/dev/null',
            'GIT_TERMINAL_PROMPT': '0',
            'GIT_ASKPASS': '/bin/false',
            'SSH_ASKPASS': '/bin/false',
            'GIT_SSH_COMMAND': 'ssh -o BatchMode=yes',
            'GIT_ALLOW_PROTOCOL': protocols_for(scheme),
            'GIT_PROTOCOL_FROM_USER': '0',
            'GIT_LFS_SKIP_SMUDGE': '1',
        }

    def redact(self, text):
        return scmurl.redact(text, self.secrets)

    def run(self, *args, **kwargs):
        """Run `git <args>`; return (returncode, stdout, stderr) as redacted text."""
        check = kwargs.pop('check', True)
        what = kwargs.pop('what', None)
        cmd = ['git']
        for item in _CONFIG:
            cmd.extend(['-c', item])
        cmd.extend(args)
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise SourceError('Fetching the source took longer than %d seconds'
                              % int(self.timeout))
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(cmd, cwd=self.repodir, env=self.env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err, start_new_session=True)
            try:
                wait_exit(proc, left)
            except subprocess.TimeoutExpired:
                kill_group(proc, wait=10)
                raise SourceError('Fetching the source took longer than %d seconds (git %s)'
                                  % (int(self.timeout), args[0]))
            except BaseException:
                # KeyboardInterrupt/SystemExit from kojid's cancel: leave no git behind.
                kill_group(proc, wait=10)
                raise
            stdout = _tail(out, 1024 * 1024)
            stderr = self.redact(_tail(err, 64 * 1024))
        if self.logger is not None:
            self.logger.debug('git %s -> %d %s', args[0], proc.returncode,
                              stderr.strip()[-MAX_MESSAGE:])
        if check and proc.returncode != 0:
            raise SourceError('%s failed: %s'
                              % (what or 'git %s' % args[0], summarize(stderr)))
        return proc.returncode, stdout, stderr


def summarize(stderr):
    """The useful part of git's stderr for a fault message (already redacted)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    fatal = [line for line in lines if re.match(r'(fatal|error):', line)]
    text = '; '.join(fatal or lines[-3:]) or 'no error output'
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 3] + '...'


def _tail(handle, limit):
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(max(0, size - limit))
    return handle.read().decode('utf-8', 'replace')

