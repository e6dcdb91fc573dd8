"""LogRelay: ordering, visibility after flush, retries without loss or duplication,
task loss, resume for reattach, file-name checks, bounded memory."""

import threading
import tracemalloc

import koji
import pytest

from koji_containerbuild import errors
from koji_containerbuild.logs import LogRelay, check_log_name, hub_output_sizes
from tests.doubles.hub_session import HubSessionDouble


def make_relay(hub, upload_path, tmp_path, **kw):
    kw.setdefault('flush_interval', 3600)  # only explicit flushes push, unless a test says so
    kw.setdefault('retry_delay', 0.001)
    return LogRelay(hub, upload_path, str(tmp_path / 'work'), **kw)


def lines(prefix, count):
    return ['%s line %d' % (prefix, i) for i in range(count)]


def joined(items):
    return ''.join(x + '\n' for x in items).encode()


def test_lines_arrive_in_order_per_file(hub, task_id, upload_path, tmp_path):
    a, b = lines('a', 3000), lines('b', 2000)
    with make_relay(hub, upload_path, tmp_path, chunk_size=4096) as relay:
        for i in range(3000):
            relay.write('osbs-build.log', a[i])
            if i < 2000:
                relay.write('x86_64.log', b[i])
    out = hub.uploaded_files(task_id)
    assert out == {'osbs-build.log': joined(a), 'x86_64.log': joined(b)}
    assert relay.uploaded_sizes() == {'osbs-build.log': len(joined(a)),
                                      'x86_64.log': len(joined(b))}
    # local copies are the same bytes
    assert (tmp_path / 'work' / 'logs' / 'osbs-build.log').read_bytes() == joined(a)


def test_flush_makes_lines_visible_on_the_hub(hub, task_id, upload_path, tmp_path):
    relay = make_relay(hub, upload_path, tmp_path)
    relay.write('osbs-build.log', 'first')
    assert hub.uploaded_files(task_id) == {}
    relay.flush()
    assert hub.downloadTaskOutput(task_id, 'osbs-build.log') == b'first\n'
    relay.write('osbs-build.log', 'second')
    relay.flush()
    assert hub.downloadTaskOutput(task_id, 'osbs-build.log') == b'first\nsecond\n'
    relay.close()


def test_background_thread_uploads_without_flush(hub, task_id, upload_path, tmp_path):
    relay = make_relay(hub, upload_path, tmp_path, flush_interval=0.01)
    relay.write('osbs-build.log', 'hello')
    done = threading.Event()
    # eventual visibility, no timing assertion: poll until the uploader has run
    for _ in range(1000):
        if hub.upload_size(upload_path, 'osbs-build.log') == 6:
            done.set()
            break
        done.wait(0.01)
    assert done.is_set()
    relay.close()
    # every rawUpload came from the one background thread
    assert all(k == {'overwrite': True} for _a, k in hub.calls_of('rawUpload'))


def test_transient_upload_errors_are_retried_without_loss(hub, task_id, upload_path,
                                                          tmp_path):
    data = lines('l', 500)
    relay = make_relay(hub, upload_path, tmp_path, chunk_size=1000)
    for line in data[:250]:
        relay.write('osbs-build.log', line)
    hub.fail_next('rawUpload', koji.GenericError('hub hiccup'), count=3)
    relay.flush()
    hub.fail_next('rawUpload', OSError('connection reset'), count=2)
    for line in data[250:]:
        relay.write('osbs-build.log', line)
    relay.close()
    assert hub.downloadTaskOutput(task_id, 'osbs-build.log') == joined(data)
    offsets = [a[1] for a, _k in hub.calls_of('rawUpload')]
    # the failed chunks were sent again at the same offset
    assert offsets[0] == offsets[1] == offsets[2] == offsets[3] == 0
    assert len(offsets) == len(set(offsets)) + 5


class LostAnswerHub(HubSessionDouble):
    """The hub writes the chunk, but the answer never reaches the builder."""

    lose = 0

    def rawUpload(self, *args, **kwargs):
        result = self.__getattr__('rawUpload')(*args, **kwargs)
        if self.lose:
            self.lose -= 1
            raise koji.GenericError('connection lost after the upload was written')
        return result


def test_lost_answers_do_not_duplicate_lines(tmp_path):
    hub = LostAnswerHub()
    task_id = hub.add_task()
    path = koji.pathinfo.taskrelpath(task_id)
    data = lines('l', 300)
    relay = make_relay(hub, path, tmp_path, chunk_size=512)
    hub.lose = 4
    for line in data:
        relay.write('osbs-build.log', line)
    relay.close()
    assert hub.downloadTaskOutput(task_id, 'osbs-build.log') == joined(data)


class DamagingHub(HubSessionDouble):
    """Answers one upload with a wrong checksum (a damaged transfer)."""

    damage = 0

    def rawUpload(self, *args, **kwargs):
        result = self.__getattr__('rawUpload')(*args, **kwargs)
        if self.damage:
            self.damage -= 1
            result = dict(result, hexdigest='00000000')
        return result


def test_damaged_upload_is_sent_again(tmp_path):
    hub = DamagingHub()
    task_id = hub.add_task()
    relay = make_relay(hub, koji.pathinfo.taskrelpath(task_id), tmp_path)
    hub.damage = 1
    relay.write('a.log', 'payload')
    relay.close()
    assert hub.downloadTaskOutput(task_id, 'a.log') == b'payload\n'
    assert len(hub.calls_of('rawUpload')) == 2


def test_retry_gives_up_after_retry_timeout(hub, task_id, upload_path, tmp_path):
    relay = make_relay(hub, upload_path, tmp_path, retry_timeout=0.05, retry_delay=0.01)
    hub.fail_next('rawUpload', koji.GenericError('hub down'), count=10 ** 6)
    relay.write('osbs-build.log', 'x')
    with pytest.raises(errors.BackendError) as exc:
        relay.flush()
    assert 'osbs-build.log' in str(exc.value) and 'hub down' in str(exc.value)
    with pytest.raises(errors.BackendError):
        relay.close()
    relay.close(raise_error=False)


def test_cancelled_task_stops_uploads_at_once(hub, task_id, upload_path, tmp_path):
    relay = make_relay(hub, upload_path, tmp_path, retry_timeout=3600)
    relay.write('osbs-build.log', 'before')
    relay.flush()
    hub.cancel_task(task_id)
    relay.write('osbs-build.log', 'after')
    with pytest.raises(koji.ActionNotAllowed):
        relay.flush()
    # one attempt only: ActionNotAllowed is not retried
    assert len(hub.calls_of('rawUpload')) == 2
    assert isinstance(relay.error, koji.ActionNotAllowed)
    relay.close(raise_error=False)
    assert hub.downloadTaskOutput(task_id, 'osbs-build.log') == b'before\n'


def test_context_manager_does_not_mask_the_body_exception(hub, task_id, upload_path,
                                                          tmp_path):
    hub.cancel_task(task_id)
    with pytest.raises(RuntimeError):
        with make_relay(hub, upload_path, tmp_path) as relay:
            relay.write('osbs-build.log', 'x')
            relay.flush_interval = 0
            raise RuntimeError('body failed')


def test_resume_skips_what_the_hub_already_has(hub, task_id, upload_path, tmp_path):
    data = lines('l', 400)
    first = make_relay(hub, upload_path, tmp_path / 'one')
    for line in data[:150]:
        first.write('osbs-build.log', line)
    for line in data[:10]:
        first.write('x86_64.log', line)
    first.close()
    before = len(hub.calls_of('rawUpload'))
    offsets = hub_output_sizes(hub, task_id)
    assert offsets == {'osbs-build.log': len(joined(data[:150])),
                       'x86_64.log': len(joined(data[:10]))}
    # the re-run replays the backend log from the start, then goes on
    second = make_relay(hub, upload_path, tmp_path / 'two', resume_offsets=offsets)
    for line in data:
        second.write('osbs-build.log', line)
    for line in data[:10]:
        second.write('x86_64.log', line)
    second.close()
    assert hub.downloadTaskOutput(task_id, 'osbs-build.log') == joined(data)
    assert hub.downloadTaskOutput(task_id, 'x86_64.log') == joined(data[:10])
    new_calls = hub.calls_of('rawUpload')[before:]
    assert [a[1] for a, _k in new_calls] == [offsets['osbs-build.log']]


@pytest.mark.parametrize('name', ['', '.hidden', '../x.log', 'a/b.log', 'x..log', '/abs',
                                  'new\nline', 'tab\t', 'a' * 300, None, b'bytes.log'])
def test_invalid_file_names_are_refused(hub, upload_path, tmp_path, name):
    with pytest.raises(errors.BackendError):
        check_log_name(name)
    relay = make_relay(hub, upload_path, tmp_path)
    with pytest.raises(errors.BackendError):
        relay.write(name, 'line')
    relay.close()


def test_write_after_close_is_refused(hub, upload_path, tmp_path):
    relay = make_relay(hub, upload_path, tmp_path)
    relay.close()
    relay.close()
    with pytest.raises(errors.BackendError):
        relay.write('osbs-build.log', 'late')


def test_bytes_and_odd_strings_are_written_faithfully(hub, task_id, upload_path, tmp_path):
    relay = make_relay(hub, upload_path, tmp_path)
    relay.write('a.log', b'\xff\xfe raw')
    relay.write('a.log', b'\xff'.decode('utf-8', 'surrogateescape'))
    relay.write('a.log', '\ud800 lone')
    relay.write('a.log', 'caf\u00e9')
    relay.write('a.log', 42)
    relay.close()
    assert hub.downloadTaskOutput(task_id, 'a.log') == \
        b'\xff\xfe raw\n\xff\n? lone\ncaf\xc3\xa9\n42\n'


def test_concurrent_writers(hub, task_id, upload_path, tmp_path):
    relay = make_relay(hub, upload_path, tmp_path, flush_interval=0.001, chunk_size=2048)

    def worker(n):
        for i in range(2000):
            relay.write('w%d.log' % n, 'w%d %d' % (n, i))
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    relay.close()
    out = hub.uploaded_files(task_id)
    for n in range(4):
        assert out['w%d.log' % n] == joined(['w%d %d' % (n, i) for i in range(2000)])


def _peak_for(count, tmp_path):
    hub = HubSessionDouble(topdir=str(tmp_path / ('hub%d' % count)))
    task_id = hub.add_task()
    relay = LogRelay(hub, koji.pathinfo.taskrelpath(task_id), str(tmp_path / ('w%d' % count)),
                     flush_interval=3600)
    line = 'x' * 100
    tracemalloc.start()
    try:
        for i in range(count):
            relay.write('osbs-build.log', line)
            if i % 20000 == 0:
                relay.flush()
        relay.close()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_log_length(tmp_path):
    small = _peak_for(10000, tmp_path)
    large = _peak_for(100000, tmp_path)
    # 10x the log, about the same peak: buffers and one upload chunk, not the log
    assert large < small * 2 + 512 * 1024
    assert large < 8 * 1024 * 1024


class OneAtATimeSession(object):
    """Counts calls entered while another is in progress (what the hub's callnum check
    would punish)."""

    def __init__(self, inner, state=None):
        self.inner = inner
        self.state = state if state is not None else {'inside': 0, 'overlaps': 0}
        self.opts = {'use_fast_upload': True}
        if state is None:
            self.host = OneAtATimeSession(inner.host, self.state)

    @property
    def overlaps(self):
        return self.state['overlaps']

    def __getattr__(self, name):
        target = getattr(self.inner, name)

        def call(*args, **kwargs):
            self.state['inside'] += 1
            if self.state['inside'] > 1:
                self.state['overlaps'] += 1
            try:
                # give another thread every chance to enter
                threading.Event().wait(0.0005)
                return target(*args, **kwargs)
            finally:
                self.state['inside'] -= 1
        return call


def test_serialized_session_keeps_calls_one_at_a_time(hub, task_id, upload_path, tmp_path):
    from koji_containerbuild.logs import SerializedSession
    raw = OneAtATimeSession(hub)
    session = SerializedSession(raw)
    assert session.opts == {'use_fast_upload': True}
    relay = LogRelay(session, upload_path, str(tmp_path / 'w'), flush_interval=0.001,
                     chunk_size=64)
    for i in range(300):
        relay.write('osbs-build.log', 'line %d' % i)
        session.getTaskInfo(task_id)
        session.host.getID()
    relay.close()
    assert raw.overlaps == 0
    assert hub.downloadTaskOutput(task_id, 'osbs-build.log') == \
        joined(['line %d' % i for i in range(300)])
    session.multicall = False
    assert raw.multicall is False


def test_unserialized_session_would_overlap(hub, task_id, upload_path, tmp_path):
    # the same load without the proxy does overlap: the proxy above is what prevents it
    raw = OneAtATimeSession(hub)
    relay = LogRelay(raw, upload_path, str(tmp_path / 'w'), flush_interval=0.001,
                     chunk_size=64)
    for i in range(300):
        relay.write('osbs-build.log', 'line %d' % i)
        raw.getTaskInfo(task_id)
        if raw.overlaps:
            break
    relay.close()
    assert raw.overlaps > 0


def test_append_file_goes_after_what_the_hub_has(hub, task_id, upload_path, tmp_path):
    first = make_relay(hub, upload_path, tmp_path / 'one')
    first.write('notes.log', 'attempt 1: a')
    first.write('notes.log', 'attempt 1: b')
    first.close()
    offsets = hub_output_sizes(hub, task_id)
    # the re-run writes other notes: appended, not taken for a replay of the first ones
    second = make_relay(hub, upload_path, tmp_path / 'two', resume_offsets=offsets,
                        append=('notes.log',))
    second.write('notes.log', 'attempt 2')
    second.close()
    assert hub.downloadTaskOutput(task_id, 'notes.log') == \
        b'attempt 1: a\nattempt 1: b\nattempt 2\n'
    # without a previous size the file starts at 0 as usual
    third = make_relay(hub, upload_path, tmp_path / 'three', append=('other.log',))
    third.write('other.log', 'x')
    third.close()
    assert hub.downloadTaskOutput(task_id, 'other.log') == b'x\n'
