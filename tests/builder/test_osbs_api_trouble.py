"""An unreachable OSBS API is said in the task log, attempt by attempt, and the wait is
bounded by retry_timeout (osbs-client alone would retry silently for ~8 minutes)."""

import socket
import time

import pytest

from koji_containerbuild import errors
from koji_containerbuild.backends import osbs_http
from koji_containerbuild.backends.osbs import NOTES_LOG
from tests.builder.conftest import TARGET, write_builder_conf


def _closed_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_unreachable_api_is_logged_per_attempt_and_bounded(git_daemon, make_task,
                                                            osbs_double, hub, tmp_path,
                                                            monkeypatch):
    # if osbs-client were called, the double would spend its retries (scaled: 24 s)
    monkeypatch.setenv('OSBS_DOUBLE_TIME_SCALE', '0.05')
    conf = tmp_path / 'osbs.conf'
    url = 'http://127.0.0.1:%d/' % _closed_port()
    text = conf.read_text()
    conf.write_text('\n'.join('openshift_url = %s' % url if line.startswith('openshift_url')
                              else line for line in text.splitlines()))
    builder = write_builder_conf(str(tmp_path / 'b.conf'), str(conf), retry_timeout='2.5')
    task_id, handler = make_task('buildContainer', [git_daemon.url('demo'), TARGET,
                                                    {'git_branch': 'main'}],
                                 config_file=builder)
    started = time.monotonic()
    with pytest.raises(errors.BackendError) as info:
        handler.run()
    assert time.monotonic() - started < 20      # not osbs-client's minutes
    assert 'OSBS API %s is unreachable' % url in str(info.value)
    assert 'retry_timeout' in str(info.value)
    notes = hub.uploaded_files(task_id)[NOTES_LOG].decode()
    assert 'is unreachable (attempt 1: ConnectionRefusedError' in notes
    assert 'next try in 1.0 s' in notes and '(attempt 2: ' in notes
    assert osbs_double.calls() == []          # nothing was sent through osbs-client


def test_status_trouble_mid_build_is_logged(git_daemon, make_task, osbs_double, hub):
    osbs_double.configure(run={'tasks': [['clone', ['a', 'b']]], 'hold_at': 1})
    osbs_double.inject('get_build', {'type': 'OsbsNetworkException', 'message': 'gateway',
                                     'status_code': 503}, count=2)
    task_id, handler = make_task('buildContainer', [git_daemon.url('demo'), TARGET,
                                                    {'git_branch': 'main'}])
    import threading

    def _release():
        while not osbs_double.runs() or len(osbs_double.calls('get_build')) < 4:
            time.sleep(0.02)
        osbs_double.release(osbs_double.runs()[0])
    thread = threading.Thread(target=_release)
    thread.start()
    try:
        assert handler.run()['koji_builds'] == ['987654']
    finally:
        thread.join()
    notes = hub.uploaded_files(task_id)[NOTES_LOG].decode()
    assert 'failed (attempt 1: OsbsNetworkException: (503) gateway); next try in' in notes


def test_probe_api_retries_then_succeeds_or_gives_up():
    notes, sleeps, answers = [], [], [ConnectionRefusedError(111, 'refused'),
                                      socket.gaierror(-2, 'Name or service not known')]

    class Sock(object):
        def close(self):
            pass

    def connect(address, timeout):
        assert address == ('osbs.example.com', 6443) and timeout > 0
        if answers:
            raise answers.pop(0)
        return Sock()
    url = 'https://user:secret@osbs.example.com:6443/'
    assert osbs_http.probe_api(url, 60, notes.append, connect, sleeps.append) == 3
    assert sleeps == [1.0, 2.0]
    assert 'attempt 1: ConnectionRefusedError' in notes[0]
    assert 'attempt 2: gaierror' in notes[1] and 'next try in 2.0 s' in notes[1]
    assert 'reachable again (attempt 3)' in notes[2]
    assert all('secret' not in n for n in notes)

    def refuse(address, timeout):
        raise ConnectionRefusedError(111, 'refused')
    with pytest.raises(errors.BackendError, match='unreachable'):
        osbs_http.probe_api(url, 0.0, notes.append, refuse, sleeps.append)
    # no network for the double's file:// cluster (and anything not http/https)
    assert osbs_http.probe_api('file:///tmp/x/', 1, notes.append, refuse) == 0


def test_call_bounded():
    assert osbs_http.call_bounded(lambda: 5, 1, 'x') == 5
    with pytest.raises(KeyError):
        osbs_http.call_bounded(lambda: {}['k'], 1, 'x')
    with pytest.raises(osbs_http.ApiTimeout, match='slow call: no answer within'):
        osbs_http.call_bounded(lambda: time.sleep(2), 0.1, 'slow call')
