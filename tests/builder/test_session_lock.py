"""The relay's uploader thread and the task thread share one hub session: calls on it must
never overlap (koji's ClientSession numbers calls; the hub refuses out-of-order numbers)."""

import os
import threading
import time

from tests.builder.conftest import TARGET


def test_handler_session_serializes_calls_across_threads(make_task, hub):
    task_id, handler = make_task('buildContainer', ['git://h/r#x', TARGET, {}])
    # as kojid's forkTask: the subsession replaces the session the handler was built with,
    # then run() sets up the task process
    subsession = hub
    handler.session = subsession
    handler.enter_task_process()
    assert handler.session is not subsession
    state = {'inside': 0, 'overlaps': 0}
    real = hub.getLastEvent

    def slow_call(*args, **kwargs):
        state['inside'] += 1
        if state['inside'] > 1:
            state['overlaps'] += 1
        time.sleep(0.01)
        state['inside'] -= 1
        return real(*args, **kwargs)

    hub.getLastEvent = slow_call
    host_calls = []
    hub.host.getID = lambda: host_calls.append(threading.get_ident()) or 1
    threads = [threading.Thread(target=lambda: [handler.session.getLastEvent()
                                                for _ in range(10)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state['overlaps'] == 0
    # host.* calls go through the same proxy
    assert handler.session.host.getID() == 1 and host_calls
    assert handler.parent_pid == os.getppid()


def test_handler_built_in_kojid_takes_its_parent_pid_in_the_task_process(make_task):
    """kojid builds handlers in its own process: nothing process-bound is taken there."""
    task_id, handler = make_task('buildContainer', ['git://h/r#x', TARGET, {}])
    assert handler.parent_pid is None and handler.ownership is None
