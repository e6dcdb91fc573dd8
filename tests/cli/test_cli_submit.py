"""The real koji CLI with the plugin: what reaches the hub and what the user sees."""

import pytest

from tests.cli.conftest import WEBURL
from tests.cli.hubserver import TASK_ID, build_target, tag

SRC = 'git://scm.example.com/containers/demo#4f2c9a1'
TARGET = 'container-candidate'
TASK_LINES = ['Created task: %d' % TASK_ID,
              'Task info: %s/taskinfo?taskID=%d' % (WEBURL, TASK_ID)]


def assert_clean(proc):
    assert 'Traceback' not in proc.stdout + proc.stderr


def test_minimal_container_build_nowait(koji_cli, hub):
    proc = koji_cli('container-build', TARGET, SRC, '--git-branch', 'main', '--nowait')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == TASK_LINES
    assert proc.stderr == ''
    assert hub.hub.submitted() == [
        ('buildContainer', [SRC, TARGET, {'git_branch': 'main'}], {'priority': None})]
    # --nowait: no watching at all
    assert 'getTaskInfo' not in hub.hub.methods()
    assert hub.hub.methods()[:3] == ['getAPIVersion', 'getBuildTarget', 'getTag']


def test_every_binary_flag_reaches_the_hub(koji_cli, hub):
    proc = koji_cli(
        'container-build', TARGET, SRC, '--nowait', '--git-branch', 'rhel-9.4',
        '--scratch', '--arch-override', 'x86_64,aarch64 ppc64le',
        '--repo-url', 'http://repos.example.com/a.repo',
        '--repo-url', 'https://repos.example.com/b.repo',
        '--replace-dependency', 'gomod:github.com/x/y:v1.2.3',
        '--replace-dependency', 'pip:requests:2.31.0:requests2',
        '--signing-intent', 'release', '--userdata', '{"team": "infra", "n": [1, 2]}',
        '--release', '3.el9', '--koji-parent-build', 'base-image-9.4-12',
        '--background', '--channel-override', 'container-special')
    assert proc.returncode == 0, proc.stderr
    assert hub.hub.submitted() == [('buildContainer', [SRC, TARGET, {
        'git_branch': 'rhel-9.4', 'scratch': True, 'arch_override': 'x86_64 aarch64 ppc64le',
        'yum_repourls': ['http://repos.example.com/a.repo', 'https://repos.example.com/b.repo'],
        'dependency_replacements': ['gomod:github.com/x/y:v1.2.3',
                                    'pip:requests:2.31.0:requests2'],
        'signing_intent': 'release', 'userdata': {'team': 'infra', 'n': [1, 2]},
        'release': '3.el9', 'koji_parent_build': 'base-image-9.4-12',
    }], {'priority': 5, 'channel': 'container-special'})]


def test_isolated_build_with_composes_and_csv_url(koji_cli, hub):
    proc = koji_cli('container-build', TARGET, SRC, '--nowait', '--git-branch', 'main',
                    '--isolated', '--release', '5', '--compose-id', '12', '--compose-id', '34',
                    '--operator-csv-modifications-url', 'https://csv.example.com/mods.json')
    assert proc.returncode == 0, proc.stderr
    assert hub.hub.submitted() == [('buildContainer', [SRC, TARGET, {
        'git_branch': 'main', 'isolated': True, 'release': '5', 'compose_ids': [12, 34],
        'operator_csv_modifications_url': 'https://csv.example.com/mods.json',
    }], {'priority': None})]


def test_flatpak_build_sets_flatpak(koji_cli, hub):
    proc = koji_cli('flatpak-build', TARGET, SRC, '--nowait', '--git-branch', 'f40')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == TASK_LINES
    assert hub.hub.submitted() == [
        ('buildContainer', [SRC, TARGET, {'git_branch': 'f40', 'flatpak': True}],
         {'priority': None})]


@pytest.mark.parametrize('flags, opts', [
    (['--koji-build-id', '501'], {'koji_build_id': 501}),
    (['--koji-build-nvr', 'demo-1.0-3', '--scratch', '--signing-intent', 'beta',
      '--userdata', '{"a": 1}'],
     {'koji_build_nvr': 'demo-1.0-3', 'scratch': True, 'signing_intent': 'beta',
      'userdata': {'a': 1}}),
])
def test_source_container_build(koji_cli, hub, flags, opts):
    proc = koji_cli('source-container-build', TARGET, '--nowait', *flags)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == TASK_LINES
    assert hub.hub.submitted() == [('buildSourceContainer', [TARGET, opts], {'priority': None})]


def test_source_background_and_channel(koji_cli, hub):
    proc = koji_cli('source-container-build', TARGET, '--nowait', '--koji-build-id', '7',
                    '--background', '--channel-override', 'src-chan')
    assert proc.returncode == 0, proc.stderr
    assert hub.hub.submitted() == [('buildSourceContainer', [TARGET, {'koji_build_id': 7}],
                                    {'priority': 5, 'channel': 'src-chan'})]


def test_locked_dest_tag_is_fine_for_scratch(koji_cli, hub):
    hub.hub.tags[11] = tag(11, 'dest-candidate', locked=True)
    proc = koji_cli('container-build', TARGET, SRC, '--nowait', '--git-branch', 'main',
                    '--scratch')
    assert proc.returncode == 0, proc.stderr
    assert len(hub.hub.submitted()) == 1


def test_wait_closed_prints_result(koji_cli, hub):
    hub.hub.result = {
        'koji_builds': ['501', 502],
        'repositories': ['registry.example.com/demo:1.0-3',
                         'registry.example.com/demo@sha256:' + 'a' * 64],
        'user_warnings': ['base image is deprecated'],
    }
    proc = koji_cli('container-build', TARGET, SRC, '--git-branch', 'main', '--wait')
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == TASK_LINES
    assert 'Watching tasks (this may be safely interrupted)...' in lines
    assert '%d buildContainer (noarch) completed successfully' % TASK_ID in lines
    assert lines[-7:] == [
        'Build: %s/buildinfo?buildID=501' % WEBURL,
        'Build: %s/buildinfo?buildID=502' % WEBURL,
        'Repositories:',
        '    registry.example.com/demo:1.0-3',
        '    registry.example.com/demo@sha256:' + 'a' * 64,
        'User warnings:',
        '    base image is deprecated',
    ]
    methods = hub.hub.methods()
    assert methods.count('getTaskInfo') == 2  # OPEN, then CLOSED
    assert methods[-1] == 'getTaskResult'


def test_wait_failed_task_exits_1_with_the_fault(koji_cli, hub):
    hub.hub.task_states = ['OPEN', 'FAILED']
    proc = koji_cli('container-build', TARGET, SRC, '--git-branch', 'main', '--wait')
    assert proc.returncode == 1
    assert_clean(proc)
    assert 'FAILED: BuildError: image build failed: no space left' in proc.stdout
    assert proc.stderr.splitlines() == [
        'koji container-build: error: task %d failed: BuildError: image build failed: '
        'no space left' % TASK_ID]
    assert 'Build:' not in proc.stdout


def test_wait_quiet_failed_still_reports_the_fault(koji_cli, hub):
    hub.hub.task_states = ['FAILED']
    proc = koji_cli('source-container-build', TARGET, '--koji-build-id', '3', '--wait',
                    '--quiet')
    assert proc.returncode == 1
    assert proc.stdout == ''
    assert proc.stderr.splitlines() == [
        'koji source-container-build: error: task %d failed: BuildError: image build '
        'failed: no space left' % TASK_ID]


def test_wait_canceled_task_exits_1(koji_cli, hub):
    hub.hub.task_states = ['OPEN', 'CANCELED']
    proc = koji_cli('flatpak-build', TARGET, SRC, '--git-branch', 'main', '--wait')
    assert proc.returncode == 1
    assert_clean(proc)
    assert 'was canceled' in proc.stdout
    assert 'is canceled' in proc.stderr


def test_background_process_does_not_wait(koji_cli, hub):
    # stdin is /dev/null: koji_cli.lib._running_in_bg() is True, as for `koji build`
    proc = koji_cli('container-build', TARGET, SRC, '--git-branch', 'main')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == TASK_LINES
    assert 'getTaskInfo' not in hub.hub.methods()


def test_foreground_process_waits_by_default(koji_cli, hub):
    proc = koji_cli.in_foreground('container-build', TARGET, SRC, '--git-branch', 'main')
    assert proc.returncode == 0, proc.stderr
    assert 'completed successfully' in proc.stdout
    assert proc.stdout.splitlines()[-1] == 'Build: %s/buildinfo?buildID=501' % WEBURL


def test_foreground_nowait(koji_cli, hub):
    proc = koji_cli.in_foreground('container-build', TARGET, SRC, '--git-branch', 'main',
                                  '--nowait')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == TASK_LINES
    assert 'getTaskInfo' not in hub.hub.methods()


def test_hostile_result_is_printed_safely(koji_cli, hub):
    # XML 1.0 cannot carry C0 controls; C1 controls (CSI) and bidi overrides it can
    hub.hub.result = {'koji_builds': ['12; rm -rf /', None],
                      'repositories': 'registry.example.com/x:1\x9b2J',
                      'user_warnings': ['evil\u202etxt.exe']}
    proc = koji_cli('container-build', TARGET, SRC, '--git-branch', 'main', '--wait')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-6:] == [
        "Build: 12; rm -rf / (not a build id)",
        'Build: None (not a build id)',
        'Repositories:',
        '    registry.example.com/x:1\\x9b2J',
        'User warnings:',
        '    evil\\u202etxt.exe',
    ]


def test_hub_refusal_is_one_line_and_exit_1(koji_cli, hub):
    hub.hub.submit_fault = (1004, 'container builds on channel special need permission x')
    proc = koji_cli('container-build', TARGET, SRC, '--git-branch', 'main',
                    '--channel-override', 'special')
    assert proc.returncode == 1
    assert proc.stdout == ''
    assert proc.stderr.splitlines() == [
        'koji container-build: error: the hub refused the build: ActionNotAllowed: '
        'container builds on channel special need permission x']


def test_other_target_names_its_dest_tag(koji_cli, hub):
    hub.hub.targets['other'] = build_target('other', 12, 'other-dest')
    hub.hub.tags[12] = tag(12, 'other-dest')
    proc = koji_cli('container-build', 'other', SRC, '--git-branch', 'main', '--nowait')
    assert proc.returncode == 0, proc.stderr
    assert ('getTag', [12], {}) in hub.hub.calls
    assert hub.hub.submitted()[0][1][1] == 'other'


def test_wait_quiet_success_prints_nothing(koji_cli, hub):
    """Like `koji build --quiet`: nothing on stdout when the build succeeds."""
    hub.hub.result = {'koji_builds': ['501'], 'repositories': ['registry.example.com/d:1'],
                      'user_warnings': ['base image is deprecated']}
    proc = koji_cli('container-build', TARGET, SRC, '--git-branch', 'main', '--wait',
                    '--quiet')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == '' and proc.stderr == ''
    assert hub.hub.methods()[-1] == 'getTaskResult'
