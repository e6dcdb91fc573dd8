"""OsbsLogRouter: routing, platform confirmation, user warnings, metadata markers and
their path safety."""

import json
import os

import pytest

from koji_containerbuild.logs import LogRelay
from koji_containerbuild.osbs_logs import (OsbsLogRouter, parse_user_warning,
                                           platform_of_task, read_inside)

WARN = '2024-05-01 12:00:00,123 - atomic_reactor.plugins.x - USER_WARNING - %s'


@pytest.fixture
def kojiwork(tmp_path):
    work = tmp_path / 'koji' / 'work'
    (work / 'tasks' / '1' / '1').mkdir(parents=True)
    (work / 'tasks' / '1' / '1' / 'metadata.json').write_text('{"ok": 1}')
    (tmp_path / 'secret.json').write_text('SECRET-OUTSIDE')
    return work


@pytest.fixture
def relay(hub, upload_path, tmp_path):
    relay = LogRelay(hub, upload_path, str(tmp_path / 'builder'), flush_interval=3600)
    yield relay
    relay.close(raise_error=False)


def output(hub, task_id, relay):
    relay.flush()
    return dict((k, v.decode('utf-8', 'replace')) for k, v in
                hub.uploaded_files(task_id).items())


@pytest.mark.parametrize('task,platform', [
    ('binary-container-build-x86-64', 'x86_64'),
    ('binary-container-build-aarch64', 'aarch64'),
    ('binary-container-build-ppc64le', 'ppc64le'),
    ('binary-container-build-s390x', 's390x'),
    ('binary-container-build-', None),
    ('binary-container-build-../x', None),
    ('binary-container-prebuild', None),
    ('clone', None),
    (None, None),
])
def test_platform_of_task(task, platform):
    assert platform_of_task(task) == platform


def test_routing(hub, task_id, relay, kojiwork):
    router = OsbsLogRouter(relay, str(kojiwork), platforms=['x86_64', 'aarch64'])
    router.feed('clone', 'cloning')
    router.feed('binary-container-build-x86-64', 'step x86')
    router.feed('binary-container-build-aarch64', 'step arm')
    router.feed('binary-container-cachito', 'fetching deps')
    router.feed('binary-container-build-x86-64', 'done x86')
    assert router.finish() == []
    out = output(hub, task_id, relay)
    assert out == {
        'osbs-build.log': 'clone: cloning\nbinary-container-build-x86-64: step x86\n'
                          'binary-container-build-aarch64: step arm\n'
                          'binary-container-cachito: fetching deps\n'
                          'binary-container-build-x86-64: done x86\n',
        'x86_64.log': 'step x86\ndone x86\n',
        'aarch64.log': 'step arm\n',
        'remote-sources.log': 'fetching deps\n',
    }


def test_unconfirmed_platform_waits_for_confirmation(hub, task_id, relay, kojiwork):
    router = OsbsLogRouter(relay, str(kojiwork), platforms=None)
    router.feed('binary-container-build-ppc64le', 'one')
    router.feed('binary-container-build-ppc64le', 'two')
    assert 'ppc64le.log' not in output(hub, task_id, relay)
    router.confirm_platforms(['ppc64le', 'bad/name', None])
    router.feed('binary-container-build-ppc64le', 'three')
    out = output(hub, task_id, relay)
    assert out['ppc64le.log'] == 'one\ntwo\nthree\n'
    assert router.confirmed_platforms == ['ppc64le']
    assert set(out) == {'osbs-build.log', 'ppc64le.log'}


def test_held_lines_are_bounded(hub, task_id, relay, kojiwork):
    router = OsbsLogRouter(relay, str(kojiwork), platforms=['x86_64'], pending_lines=2)
    for i in range(5):
        router.feed('binary-container-build-s390x', 'l%d' % i)
    router.confirm_platforms(['s390x'])
    out = output(hub, task_id, relay)
    assert out['s390x.log'] == '[3 earlier lines are only in osbs-build.log]\nl0\nl1\n'
    assert out['osbs-build.log'].count('binary-container-build-s390x: ') == 5


def test_never_confirmed_platform_gets_no_log(hub, task_id, relay, kojiwork):
    router = OsbsLogRouter(relay, str(kojiwork), platforms=['x86_64'])
    router.feed('binary-container-build-ppc64le', 'excluded arch')
    router.finish()
    assert 'ppc64le.log' not in output(hub, task_id, relay)


@pytest.mark.parametrize('payload,expected', [
    ('{"message": "Base image is deprecated"}', 'Base image is deprecated'),
    ('{"message": 42}', '42'),
    ('{"message": ["a", {"b": 1}]}', '["a", {"b": 1}]'),
    ('{"message": null}', None),
    ('{"msg": "no message key"}', None),
    ('{"message": "unterminated', None),
    ('{not json}', None),
    ('["message"]', None),
])
def test_parse_user_warning(payload, expected):
    assert parse_user_warning(WARN % payload) == expected


def test_user_warning_shape_is_anchored():
    assert parse_user_warning(' - USER_WARNING - {"message": "x"}') is None
    assert parse_user_warning(WARN % '{"message": "x"}' + '  ') is None
    assert parse_user_warning(WARN % '{"message": "x"}' + '\n') == 'x'
    assert parse_user_warning(WARN % '{"message": "x"}' + '\n\n') is None
    assert parse_user_warning('a\nb' + WARN % '{"message": "x"}') is None
    # the rightmost separator followed by '{' is the one (osbs-client's greedy .+)
    assert parse_user_warning('a - USER_WARNING - {"message": "b - USER_WARNING - '
                              '{\\"message\\": 1}"}') is None
    assert parse_user_warning('a - USER_WARNING - {"message": "m"} - USER_WARNING - x}') \
        is None
    assert parse_user_warning('a - USER_WARNING - {"message": "m - USER_WARNING - x"}') \
        == 'm - USER_WARNING - x'
    assert parse_user_warning('x' * (64 * 1024) + WARN % '{"message": "x"}') is None


def test_warning_json_agrees_with_osbs_clients_regex():
    import random
    import re
    from koji_containerbuild.osbs_logs import _warning_json
    upstream = re.compile(r'^.+ - USER_WARNING - (\{.*\})\n?$')   # contract §5
    pieces = [' - USER_WARNING - ', ' - ', 'USER_WARNING', '{', '}', 'a', ' ', '\n', '-']
    rng = random.Random(7)
    for _ in range(20000):
        line = ''.join(rng.choice(pieces) for _ in range(rng.randint(0, 9)))
        match = upstream.match(line)
        assert _warning_json(line) == (match.group(1) if match else None), repr(line)


def test_user_warnings_are_collected_and_not_logged(hub, task_id, relay, kojiwork):
    router = OsbsLogRouter(relay, str(kojiwork), platforms=['x86_64'])
    router.feed('binary-container-prebuild', WARN % '{"message": "zeta"}')
    router.feed('binary-container-postbuild', WARN % '{"message": "alpha"}')
    router.feed('binary-container-exit', WARN % '{"message": "zeta"}')
    router.feed('binary-container-init', WARN % '{"msg": "kept in the log"}')
    router.feed('binary-container-prebuild',
                (WARN % '{"message": "bad \xff utf8"}').encode('latin-1'))
    assert router.user_warnings() == ['alpha', 'bad \ufffd utf8', 'zeta']
    assert router.finish() == ['alpha', 'bad \ufffd utf8', 'zeta']
    out = output(hub, task_id, relay)
    assert out['user_warnings.log'] == 'alpha\nbad \ufffd utf8\nzeta\n'
    assert 'zeta' not in out['osbs-build.log']
    assert 'kept in the log' in out['osbs-build.log']


@pytest.mark.parametrize('task', ['binary-container-build-x86-64', 'clone',
                                  'binary-container-cachito', 'source-container-build',
                                  'x-binary-container-exit'])
def test_user_warning_from_a_task_running_user_code_stays_a_log_line(
        hub, task_id, relay, kojiwork, task):
    # a Dockerfile RUN step (or a repository's content) printing a warning-shaped line
    router = OsbsLogRouter(relay, str(kojiwork), platforms=['x86_64'])
    line = WARN % '{"message": "Please also push to evil.example.com"}'
    router.feed(task, line)
    assert router.finish() == []
    out = output(hub, task_id, relay)
    assert '%s: %s' % (task, line) in out['osbs-build.log']
    assert 'user_warnings.log' not in out
    if task == 'binary-container-build-x86-64':
        assert out['x86_64.log'] == line + '\n'


@pytest.mark.parametrize('line', [
    # the shapes that made the old regex quadratic, at the router's real input sizes
    'x' + ' - USER_WARNING - ' * 40000 + '}',
    'x - USER_WARNING - {' + '{' * 600000 + '}',
    ' - USER_WARNING - x' * 30000 + '}',
    'a - USER_WARNING - {"message": "' + '[' * 60000 + '"}',
    'a - USER_WARNING - {"message": ' + '[' * 30000 + ']' * 30000 + '}',
])
def test_hostile_warning_lines_are_linear_and_never_raise(hub, task_id, relay, kojiwork,
                                                          line):
    router = OsbsLogRouter(relay, str(kojiwork))
    router.feed('binary-container-exit', line)    # the allowlisted task: parsed
    router.finish()
    out = output(hub, task_id, relay)
    if len(line) > 64 * 1024:
        assert out['osbs-build.log'] == 'binary-container-exit: %s\n' % line


def test_invalid_utf8_line_is_relayed_as_replacement(hub, task_id, relay, kojiwork):
    router = OsbsLogRouter(relay, str(kojiwork))
    router.feed('clone', b'\xc3\x28 broken')
    router.feed(b'weird-task', 'x')
    assert output(hub, task_id, relay)['osbs-build.log'] == \
        "clone: \ufffd( broken\nb'weird-task': x\n"


def test_metadata_marker_copies_the_file(hub, task_id, relay, kojiwork):
    router = OsbsLogRouter(relay, str(kojiwork), scratch=True)
    router.feed('binary-container-exit',
                '2024 - koji_import - INFO - platform:_metadata_ tasks/1/1/metadata.json')
    out = output(hub, task_id, relay)
    assert out == {'metadata.json': '{"ok": 1}'}
    assert router.metadata_files == ['metadata.json']
    # the marker line is dropped; a second marker for the same name is skipped
    router.feed('binary-container-exit', 'platform:_metadata_ tasks/1/1/metadata.json')
    assert router.metadata_files == ['metadata.json']


def test_source_exit_task_marker_is_honoured(hub, task_id, relay, kojiwork):
    router = OsbsLogRouter(relay, str(kojiwork), scratch=True)
    router.feed('source-container-exit', 'platform:_metadata_ tasks/1/1/metadata.json')
    assert output(hub, task_id, relay) == {'metadata.json': '{"ok": 1}'}


@pytest.mark.parametrize('task', [
    'binary-container-build-x86-64', 'binary-container-prebuild', 'clone',
    'binary-container-cachito', 'binary-container-exit-x', 'source-container-build'])
def test_marker_from_a_build_task_is_an_ordinary_line(hub, task_id, relay, kojiwork, task):
    # a Dockerfile `RUN echo platform:_metadata_ <another user's file>` must copy nothing
    (kojiwork / 'cli-build' / 'other-user').mkdir(parents=True)
    (kojiwork / 'cli-build' / 'other-user' / 'secret.json').write_text('OTHER-USER')
    router = OsbsLogRouter(relay, str(kojiwork), platforms=['x86_64'], scratch=True)
    line = 'platform:_metadata_ cli-build/other-user/secret.json'
    router.feed(task, line)
    out = output(hub, task_id, relay)
    assert router.metadata_files == []
    assert 'secret.json' not in out and 'OTHER-USER' not in ''.join(out.values())
    assert out['osbs-build.log'] == '%s: %s\n' % (task, line)


def test_marker_of_a_non_scratch_build_is_dropped(hub, task_id, relay, kojiwork):
    router = OsbsLogRouter(relay, str(kojiwork), scratch=False)
    router.feed('binary-container-exit', 'platform:_metadata_ tasks/1/1/metadata.json')
    assert router.metadata_files == []
    assert output(hub, task_id, relay) == {}


def test_only_one_json_metadata_file_per_build(hub, task_id, relay, kojiwork):
    (kojiwork / 'tasks' / '1' / '1' / 'other.json').write_text('{"two": 2}')
    (kojiwork / 'tasks' / '1' / '1' / 'notes.txt').write_text('text')
    router = OsbsLogRouter(relay, str(kojiwork), scratch=True)
    router.feed('binary-container-exit', 'platform:_metadata_ tasks/1/1/notes.txt')
    assert router.metadata_files == []
    router.feed('binary-container-exit', 'platform:_metadata_ tasks/1/1/metadata.json')
    router.feed('binary-container-exit', 'platform:_metadata_ tasks/1/1/other.json')
    assert router.metadata_files == ['metadata.json']
    assert output(hub, task_id, relay) == {'metadata.json': '{"ok": 1}'}


def test_unconfirmed_platform_names_are_capped(hub, task_id, relay, kojiwork, monkeypatch):
    import koji_containerbuild.osbs_logs as mod
    monkeypatch.setattr(mod, 'MAX_PENDING_PLATFORMS', 3)
    router = OsbsLogRouter(relay, str(kojiwork), platforms=[])
    for i in range(50):
        router.feed('binary-container-build-p%d' % i, 'line of p%d' % i)
    assert sorted(router._pending) == ['p0', 'p1', 'p2']
    router.confirm_platforms(['p1', 'p7'])
    out = output(hub, task_id, relay)
    assert out['p1.log'] == 'line of p1\n'
    assert 'p7.log' not in out        # its line was never held
    assert out['osbs-build.log'].count('\n') == 50


def _hostile(tmp_path, kojiwork):
    outside = tmp_path / 'secret.json'
    links = kojiwork / 'links'
    links.mkdir()
    os.symlink(str(outside), str(links / 'out.json'))
    os.symlink(str(tmp_path), str(links / 'updir'))
    os.symlink('../tasks/1/1/metadata.json', str(links / 'inside.json'))
    (kojiwork / 'dir.json').mkdir()
    os.mkfifo(str(kojiwork / 'fifo.json'))
    (kojiwork / 'big.json').write_bytes(b'x' * 2048)
    return outside


@pytest.mark.parametrize('relpath', [
    '/etc/passwd', str(os.sep) + 'tmp/x.json', '../secret.json', 'tasks/../../secret.json',
    'links/out.json', 'links/updir/secret.json', 'dir.json', 'fifo.json', 'big.json',
    'missing.json', '', 'a\0b.json', 'osbs-build.log', 'tasks/1/1/.hidden',
])
def test_metadata_marker_path_safety(hub, task_id, relay, kojiwork, tmp_path, relpath):
    _hostile(tmp_path, kojiwork)
    router = OsbsLogRouter(relay, str(kojiwork), max_metadata_bytes=1024, scratch=True)
    router.feed('binary-container-exit', 'platform:_metadata_ ' + relpath)
    assert router.metadata_files == []
    assert output(hub, task_id, relay) == {}


def test_symlink_staying_inside_is_followed(hub, task_id, relay, kojiwork, tmp_path):
    _hostile(tmp_path, kojiwork)
    router = OsbsLogRouter(relay, str(kojiwork), scratch=True)
    router.feed('binary-container-exit', 'platform:_metadata_ links/inside.json')
    assert output(hub, task_id, relay) == {'inside.json': '{"ok": 1}'}


def test_marker_without_work_dir_is_skipped(hub, task_id, relay):
    router = OsbsLogRouter(relay, None, scratch=True)
    router.feed('binary-container-exit', 'platform:_metadata_ tasks/1/1/metadata.json')
    assert output(hub, task_id, relay) == {}


def test_read_inside_reasons(kojiwork, tmp_path):
    _hostile(tmp_path, kojiwork)
    assert read_inside(str(kojiwork), 'tasks/1/1/metadata.json') == (b'{"ok": 1}', None)
    assert read_inside(str(kojiwork), '../secret.json')[1] == "'..' in path"
    assert read_inside(str(kojiwork), '/etc/passwd')[1] == 'absolute path'
    assert read_inside(str(kojiwork), 'links/out.json')[1] == \
        'resolves outside the work directory'
    assert read_inside(str(kojiwork), 'fifo.json')[1] == 'not a regular file'
    assert read_inside(str(kojiwork), 'big.json', max_bytes=10)[1].startswith('too large')


def test_finish_without_warnings_writes_no_file(hub, task_id, relay, kojiwork):
    router = OsbsLogRouter(relay, str(kojiwork))
    router.feed('clone', 'x')
    assert router.finish() == []
    assert set(output(hub, task_id, relay)) == {'osbs-build.log'}


def test_json_warning_cap(hub, task_id, relay, kojiwork, monkeypatch):
    import koji_containerbuild.osbs_logs as mod
    monkeypatch.setattr(mod, 'MAX_WARNINGS', 2)
    router = OsbsLogRouter(relay, str(kojiwork))
    for i in range(5):
        router.feed('binary-container-exit', WARN % json.dumps({'message': 'w%d' % i}))
    assert router.finish() == ['w0', 'w1']
    assert output(hub, task_id, relay)['user_warnings.log'] == \
        'w0\nw1\n[3 more warnings not kept]\n'
