"""buildah.stream: tool output is read in bounded chunks, over-long lines are cut (and the
log says so), a watch can stop the command, and its whole process group goes."""

import os
import subprocess
import sys
import time

import pytest

from koji_containerbuild import buildah

ROOT_CMD = [sys.executable, '-c']


def _lines(chunks, max_line=10):
    out = []
    splitter = buildah.LineSplitter(out.append, max_line=max_line)
    for chunk in chunks:
        splitter.feed(chunk)
    splitter.close()
    return out


def test_line_splitter_keeps_short_lines_and_cuts_long_ones():
    assert _lines([b'a\nbb\r\n', b'c', b'c\n', b'tail']) == ['a', 'bb', 'cc', 'tail']
    assert _lines([b'0123456789abcdef\nok\n']) == [
        '0123456789 [line cut: 6 more bytes dropped]', 'ok']
    # a long line spread over many chunks, then a normal one
    assert _lines([b'x' * 7, b'y' * 7, b'z' * 100, b'\nnext\n']) == [
        'xxxxxxxyyy [line cut: 104 more bytes dropped]', 'next']
    assert _lines([b'q' * 25]) == ['qqqqqqqqqq [line cut: 15 more bytes dropped]']


def test_stream_memory_stays_bounded_on_a_huge_line():
    """300 MB without a newline (as a RUN step may print): the reader's peak memory
    stays far below the output size. Run in a fresh interpreter to read its own peak
    (VmHWM: ru_maxrss would carry the forking pytest worker's peak across exec)."""
    code = (
        'import re\n'
        'from koji_containerbuild import buildah\n'
        'seen = []\n'
        'rc, tail = buildah.stream(["sh", "-c", "head -c 300000000 /dev/zero; echo; '
        'echo after"], seen.append)\n'
        'peak = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())'
        '.group(1)) // 1024\n'
        'print(rc, len(seen), len(seen[0]), peak, seen[-1])\n'
        'print(seen[0][-60:])\n')
    out = subprocess.run(ROOT_CMD + [code], stdout=subprocess.PIPE, check=True,
                         cwd=_root()).stdout.decode()
    first, last = out.splitlines()[:2]
    rc, count, length, peak_mb, after = first.split()
    assert (rc, count, after) == ('0', '2', 'after')
    assert int(length) < buildah.MAX_LINE + 100
    assert int(peak_mb) < 120, 'reader peaked at %s MB' % peak_mb
    assert last.endswith('[line cut: %d more bytes dropped]' % (300000000 - buildah.MAX_LINE))


def test_watch_stops_the_command_and_its_group():
    calls = []
    seen = []

    class Stop(Exception):
        pass

    def watch():
        calls.append(time.monotonic())
        if len(calls) >= 3:
            raise Stop()
    started = time.monotonic()
    with pytest.raises(Stop):
        buildah.stream(['sh', '-c', 'sleep 30 & echo $!; sleep 30'], seen.append,
                       watch=watch, watch_interval=0.1)
    assert time.monotonic() - started < 5
    assert _gone(int(seen[0]))          # the background child went with the group


def _gone(pid):
    for _ in range(100):
        try:
            with open('/proc/%d/stat' % pid) as f:
                if f.read().rsplit(')', 1)[1].split()[0] == 'Z':
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def _root():
    import os
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_fence_watch_ignores_hub_errors_but_not_a_lost_task():
    from koji_containerbuild import native_build
    from koji_containerbuild.backends.retry import TaskLost
    calls = []

    def fence(what, hub=True):
        calls.append(hub)
        if hub:
            raise OSError('hub unreachable')
    watch = native_build.fence_watch(fence, hub_interval=0)
    watch()                       # the hub check failed: the build goes on
    assert calls == [True]

    def lost(what, hub=True):
        raise TaskLost('kojid is gone')
    with pytest.raises(TaskLost):
        native_build.fence_watch(lost)()
    assert native_build.fence_watch(None) is None


def test_prepare_sets_up_a_fresh_storage_and_never_raises(tmp_path):
    """A task prepares its storage while its checkout runs: afterwards the root and the
    overlay driver's feature probes (kept in the runroot) exist; a buildah that cannot
    run is left for the build to report."""
    storage = buildah.Storage.temporary(str(tmp_path))
    try:
        storage.prepare()
        assert os.path.isdir(os.path.join(storage.root, 'overlay-images'))
        assert any(name.startswith('overlay') for name in
                   os.listdir(os.path.join(storage.runroot, 'overlay')))
    finally:
        storage.destroy()
    buildah.Storage(str(tmp_path / 'r'), str(tmp_path / 'rr'), 'overlay',
                    buildah=str(tmp_path / 'no-such-buildah')).prepare()
    stuck = tmp_path / 'stuck-buildah'
    stuck.write_text('#!/bin/sh\nexec sleep 30\n')
    stuck.chmod(0o755)
    buildah.Storage(str(tmp_path / 's'), None, 'overlay', buildah=str(stuck)).prepare(
        timeout=0.2)
