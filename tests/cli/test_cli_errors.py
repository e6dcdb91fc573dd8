"""Bad input: one error line on stderr, non-zero exit, no traceback, nothing submitted."""

import pytest

from tests.cli.hubserver import tag

SRC = 'git://scm.example.com/containers/demo#4f2c9a1'
TARGET = 'container-candidate'
BRANCH = ['--git-branch', 'main']


def assert_rejected(proc, hub, expected, code=2):
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert 'Traceback' not in proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, lines
    assert expected in lines[0], lines[0]
    assert hub.hub.submitted() == []


# Rejected before the hub is contacted at all.
OFFLINE = [
    ('container-build', [], 'missing TARGET and SCM_URL#REF'),
    ('container-build', [TARGET] + BRANCH, 'missing SCM_URL#REF'),
    ('container-build', [TARGET, SRC, 'extra'] + BRANCH, 'too many arguments: extra'),
    ('container-build', [TARGET, 'git://scm.example.com/containers/demo'] + BRANCH,
     'needs a "#<commit or ref>" suffix'),
    ('container-build', [TARGET, 'https://scm.example.com/demo#abc'] + BRANCH,
     "unsupported scheme 'https://'"),
    ('container-build', [TARGET, SRC], 'Missing option --git-branch'),
    ('container-build', [TARGET, SRC, '--userdata', '{not json'] + BRANCH,
     'Invalid value for --userdata: not valid JSON'),
    ('container-build', [TARGET, SRC, '--userdata', '[1, 2]'] + BRANCH,
     '--userdata: must be a JSON object'),
    ('container-build', [TARGET, SRC, '--scratch', '--isolated'] + BRANCH,
     'options --scratch and --isolated cannot be used together'),
    ('container-build', [TARGET, SRC, '--arch-override', 'x86_64'] + BRANCH,
     'option --arch-override is only allowed for scratch or isolated builds'),
    ('container-build', [TARGET, SRC, '--arch-override', 'x86_64;rm', '--scratch'] + BRANCH,
     'Invalid option --arch-override'),
    ('container-build', [TARGET, SRC, '--signing-intent', 'r', '--compose-id', '1'] + BRANCH,
     'options --signing-intent and --compose-id cannot be used together'),
    ('container-build', [TARGET, SRC, '--compose-id', 'abc'] + BRANCH,
     "Invalid value for --compose-id: 'abc' is not an integer"),
    ('container-build', [TARGET, SRC, '--compose-id', '0'] + BRANCH,
     'Invalid option --compose-id'),
    ('container-build', [TARGET, SRC, '--release', 'a-1'] + BRANCH, 'Invalid option --release'),
    ('container-build', [TARGET, SRC, '--repo-url', 'file:///etc/passwd'] + BRANCH,
     'Invalid option --repo-url'),
    ('container-build', [TARGET, SRC, '--replace-dependency', 'gomod:x'] + BRANCH,
     'Invalid option --replace-dependency'),
    ('container-build', [TARGET, SRC, '--koji-parent-build', 'nover'] + BRANCH,
     'Invalid option --koji-parent-build'),
    ('container-build',
     [TARGET, SRC, '--operator-csv-modifications-url', 'https://x.example.com/m'] + BRANCH,
     'option --operator-csv-modifications-url is only allowed for isolated builds'),
    ('container-build', [TARGET, SRC, '--wait', '--nowait'] + BRANCH,
     '--wait and --nowait cannot be used together'),
    ('container-build', [TARGET, SRC, '--channel-override', ' '] + BRANCH,
     '--channel-override needs a channel name'),
    ('container-build', [TARGET, SRC, '--no-such-flag'] + BRANCH, 'no such option'),
    ('container-build', [TARGET, SRC, '--koji-build-id', '5'] + BRANCH, 'no such option'),
    ('flatpak-build', [TARGET, 'git://scm.example.com/demo'] + BRANCH, 'needs a "#'),
    ('flatpak-build', [TARGET, SRC, '--isolated', '--scratch'] + BRANCH,
     'options --scratch and --isolated cannot be used together'),
    ('source-container-build', [], 'missing TARGET'),
    ('source-container-build', [TARGET, SRC, '--koji-build-id', '1'], 'too many arguments'),
    ('source-container-build', [TARGET],
     'one of the options --koji-build-id or --koji-build-nvr is required'),
    ('source-container-build', [TARGET, '--koji-build-id', 'x'],
     "Invalid value for --koji-build-id: 'x' is not an integer"),
    ('source-container-build', [TARGET, '--koji-build-nvr', 'bad'],
     'Invalid option --koji-build-nvr'),
    ('source-container-build', [TARGET, '--koji-build-id', '1', '--userdata', '"s"'],
     '--userdata: must be a JSON object'),
    ('source-container-build', [TARGET, '--koji-build-id', '1', '--isolated'],
     'no such option: --isolated'),
]


@pytest.mark.parametrize('command, args, expected', OFFLINE,
                         ids=['%s-%d' % (c[0], i) for i, c in enumerate(OFFLINE)])
def test_rejected_before_contacting_the_hub(koji_cli, hub, command, args, expected):
    proc = koji_cli(command, *args)
    assert_rejected(proc, hub, expected)
    assert proc.stderr.startswith('koji %s: error: ' % command)
    assert hub.hub.calls == []


@pytest.mark.parametrize('command, extra', [
    ('container-build', [SRC] + BRANCH),
    ('flatpak-build', [SRC] + BRANCH),
    ('source-container-build', ['--koji-build-id', '9']),
])
def test_unknown_target(koji_cli, hub, command, extra):
    proc = koji_cli(command, 'no-such-target', *extra)
    assert_rejected(proc, hub, 'No such build target: no-such-target')
    assert hub.hub.methods() == ['getAPIVersion', 'getBuildTarget']


@pytest.mark.parametrize('command, extra', [
    ('container-build', [SRC] + BRANCH),
    ('source-container-build', ['--koji-build-id', '9']),
])
def test_locked_destination_tag(koji_cli, hub, command, extra):
    hub.hub.tags[11] = tag(11, 'dest-candidate', locked=True)
    proc = koji_cli(command, TARGET, *extra)
    assert_rejected(proc, hub, 'Destination tag dest-candidate is locked')


def test_missing_destination_tag(koji_cli, hub):
    del hub.hub.tags[11]
    proc = koji_cli('container-build', TARGET, SRC, *BRANCH)
    assert_rejected(proc, hub, 'No such destination tag: dest-candidate')


def test_unreachable_hub_is_not_a_traceback(koji_cli, hub):
    hub.server.shutdown()
    hub.server.server_close()
    hub.thread.join()  # the fixture's second shutdown/close/join are no-ops
    proc = koji_cli('container-build', TARGET, SRC, *BRANCH)
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stdout + proc.stderr
    assert 'Unable to connect to server' in proc.stderr
