"""Hostile CLI input: clear one-line errors before the hub is contacted, never a
traceback (RecursionError, UnicodeEncodeError, OverflowError) from deep inside."""

import pytest

from koji_containerbuild import options
from tests.cli.test_cli_errors import BRANCH, SRC, TARGET, assert_rejected

CASES = [
    (['--userdata', '[' * 100000], 'Invalid value for --userdata'),
    (['--userdata', '{"a":' * 5000 + '1' + '}' * 5000], 'nested deeper than 16 levels'),
    (['--userdata', '{"a": "%s"}' % ('x' * (options.MAX_USERDATA + 1))],
     'longer than %d characters' % options.MAX_USERDATA),
    (['--userdata', '{"a": "nul\\u0000"}'], 'control characters'),
    (['--userdata', '{"a": "\\ud800"}'], 'control characters or invalid unicode'),
    (['--userdata', '{"a": 99999999999999999999999}'], 'does not fit in 64 bits'),
    (['--compose-id', '1_0'], "'1_0' is not an integer"),
    (['--compose-id', '\u0661\u0662'], 'is not an integer'),
    (['--compose-id', '99999999999'], 'integer from 1 to 2147483647'),
    (['--release', '1\udcff'], 'Invalid option --release'),
    (['--git-branch', '-x'], 'Invalid option --git-branch'),
    (['--git-branch', 'a.lock'], 'Invalid option --git-branch'),
    (['--repo-url', 'ftp://repos.example.com/x.repo'], 'Invalid option --repo-url'),
    (['--repo-url', 'https://repos.example.com:99999/x.repo'], 'Invalid option --repo-url'),
    (['--channel-override', 'fast\udcff'], 'Invalid channel'),
]


@pytest.mark.parametrize('extra, expected', CASES, ids=[str(i) for i in range(len(CASES))])
def test_hostile_options_rejected_offline(koji_cli, hub, extra, expected):
    proc = koji_cli('container-build', TARGET, SRC, *(BRANCH + extra))
    assert_rejected(proc, hub, expected)
    assert hub.hub.calls == []


@pytest.mark.parametrize('target, src, expected', [
    ('bad\udcfftarget', SRC, 'Invalid target'),
    (TARGET, 'git+https://TOKEN@scm.example.com/demo.git#main', 'user name before the host'),
    (TARGET, 'git+https://u:S3cret@scm.example.com/demo.git#main', 'passwords are not allowed'),
    (TARGET, 'git+ssh://-oProxyCommand=id/demo.git#main', 'not a valid host'),
    (TARGET, 'git://scm.example.com/demo.git?../../..#main', 'Invalid subdirectory'),
    (TARGET, 'git://scm.example.com/demo.git#@{-1}', 'Invalid git revision'),
])
def test_hostile_target_and_source_rejected_offline(koji_cli, hub, target, src, expected):
    proc = koji_cli('container-build', target, src, *BRANCH)
    assert_rejected(proc, hub, expected)
    assert 'TOKEN' not in proc.stderr and 'S3cret' not in proc.stderr
    assert hub.hub.calls == []
