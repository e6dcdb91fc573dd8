"""Run the installed `koji` command against a FakeHub served on 127.0.0.1.

The plugin and library under test are the working tree's, not the copies
`pip install .` put in site-packages: `--plugin-paths <repo>/cli` loads the plugin
file after (so over) any installed one, and PYTHONPATH=<repo> makes its lazy
`koji_containerbuild` imports resolve to the working tree. HOME is a temp dir and
the profile comes from a temp config file, so the user's ~/.koji plays no part.
"""

import os
import subprocess
import sys

import pytest

from tests.cli.hubserver import HubServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KOJI = os.path.join(os.path.dirname(sys.executable), 'koji')
WEBURL = 'http://koji.example.com/koji'
TOPURL = 'http://koji.example.com/kojifiles'

# Make stdin the controlling terminal of a new session, so the koji CLI is "in the
# foreground" (koji_cli.lib._running_in_bg() is False), then exec koji.
_TTY_WRAPPER = ('import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); '
                'os.execv(sys.argv[1], sys.argv[1:])')


@pytest.fixture
def hub():
    with HubServer() as server:
        yield server


class KojiRunner(object):
    def __init__(self, server, home):
        self.server = server
        self.home = home
        self.config = os.path.join(home, 'koji.conf')
        with open(self.config, 'w') as f:
            f.write('[koji]\nserver = %s\nweburl = %s\ntopurl = %s\npoll_interval = 0\n'
                    'max_retries = 0\nanon_retry = false\n' % (server.url, WEBURL, TOPURL))
        self.env = dict(os.environ, HOME=home, PYTHONPATH=ROOT)
        self.env.pop('KRB5CCNAME', None)

    def argv(self, *args):
        return [KOJI, '-c', self.config, '-p', 'koji', '--server', self.server.url, '--noauth',
                '--plugin-paths', os.path.join(ROOT, 'cli')] + list(args)

    def __call__(self, *args, **kw):
        """Run koji with stdin from /dev/null (so "in the background")."""
        return subprocess.run(self.argv(*args), env=self.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=60, **kw)

    def in_foreground(self, *args):
        """Run koji with a terminal as stdin, in the terminal's foreground group."""
        master, slave = os.openpty()
        try:
            return subprocess.run([sys.executable, '-c', _TTY_WRAPPER] + self.argv(*args),
                                  env=self.env, stdin=slave, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, universal_newlines=True,
                                  start_new_session=True, timeout=60)
        finally:
            os.close(slave)
            os.close(master)


@pytest.fixture
def koji_cli(hub, tmp_path):
    return KojiRunner(hub, str(tmp_path))
