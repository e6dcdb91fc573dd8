"""A small XML-RPC kojihub double for running the real koji CLI against.

It answers the calls the koji CLI makes for the container commands, with the
return shapes of ../shared/docs/koji-plugin-facts.md (getBuildTarget, getTag,
getTaskInfo, ...), and records every call as (method, args, kwargs), kwargs
decoded from koji's `__starstar` convention.
"""

import threading
from xmlrpc.client import Fault
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

import koji

TASK_ID = 4242
HOST = {'id': 7, 'user_id': 9, 'name': 'builder1.example.com', 'update_ts': 1700000000.0,
        'ready': True, 'task_load': 1.0, 'arches': 'x86_64', 'capacity': 4.0,
        'description': None, 'comment': None, 'enabled': True}


def build_target(name, dest_tag_id=11, dest_tag_name='dest-candidate'):
    return {'id': 3, 'name': name, 'build_tag': 10, 'build_tag_name': name + '-build',
            'dest_tag': dest_tag_id, 'dest_tag_name': dest_tag_name}


def tag(tag_id, name, locked=False):
    return {'id': tag_id, 'name': name, 'perm_id': None, 'perm': None, 'arches': 'x86_64',
            'locked': locked, 'maven_support': False, 'maven_include_all': False, 'extra': {}}


class _Quiet(SimpleXMLRPCRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


class FakeHub(object):
    """State of the fake hub; tests change the attributes before running the CLI.

    task_states: states getTaskInfo walks through (the last one stays).
    result: what getTaskResult returns for a CLOSED task.
    task_fault: (code, message) getTaskResult raises for a FAILED task.
    submit_fault: (code, message) buildContainer/buildSourceContainer raise.
    """

    def __init__(self):
        self.targets = {'container-candidate': build_target('container-candidate')}
        self.tags = {11: tag(11, 'dest-candidate')}
        self.task_states = ['OPEN', 'CLOSED']
        self.result = {'koji_builds': ['501'], 'repositories': [], 'user_warnings': []}
        self.task_fault = (koji.BuildError.faultCode, 'image build failed: no space left')
        self.submit_fault = None
        self.calls = []
        self._lock = threading.Lock()
        self._request = None
        self.current = None

    # ------------------------------------------------------------ server plumbing

    def _dispatch(self, method, params):
        args, kwargs = koji.decode_args(*params)
        with self._lock:
            self.calls.append((method, list(args), kwargs))
        handler = getattr(self, 'rpc_' + method, None)
        if handler is None:
            raise Fault(koji.GenericError.faultCode, 'Invalid method: %s' % method)
        try:
            return handler(*args, **kwargs)
        except TypeError as exc:
            raise Fault(koji.ParameterError.faultCode, str(exc))

    def submitted(self):
        return [c for c in self.calls if c[0] in ('buildContainer', 'buildSourceContainer')]

    def methods(self):
        return [c[0] for c in self.calls]

    # ------------------------------------------------------------ hub calls

    def rpc_getAPIVersion(self):
        return koji.API_VERSION

    def rpc_getBuildTarget(self, info, event=None, strict=False):
        target = self.targets.get(info)
        if target is None and strict:
            raise Fault(koji.GenericError.faultCode, 'No such build target: %s' % info)
        return target

    def rpc_getTag(self, info, strict=False, event=None, blocked=False):
        return self.tags.get(info)

    def _submit(self, request):
        if self.submit_fault:
            raise Fault(*self.submit_fault)
        self._request = request
        return TASK_ID

    def rpc_buildContainer(self, src, target, opts=None, priority=None, channel=None):
        return self._submit([src, target, opts])

    def rpc_buildSourceContainer(self, target, opts=None, priority=None, channel=None):
        return self._submit([target, opts])

    def _state(self):
        """Advance to the next scripted state (getTaskInfo is the CLI's poll)."""
        with self._lock:
            self.current = self.task_states[0]
            if len(self.task_states) > 1:
                self.task_states.pop(0)
        return koji.TASK_STATES[self.current]

    def rpc_getTaskInfo(self, task_id, request=False, strict=False):
        if task_id != TASK_ID:
            return None
        state = self._state()
        method = 'buildContainer' if len(self._request or ()) == 3 else 'buildSourceContainer'
        info = {'id': TASK_ID, 'state': state, 'create_time': '2024-01-01 00:00:00',
                'create_ts': 1704067200.0, 'start_time': None, 'start_ts': None,
                'completion_time': None, 'completion_ts': None, 'channel_id': 5,
                'host_id': HOST['id'] if state == koji.TASK_STATES['OPEN'] else None,
                'parent': None, 'label': None, 'waiting': None, 'awaited': None, 'owner': 1,
                'method': method, 'arch': 'noarch', 'priority': 20, 'weight': 0.2}
        if request:
            info['request'] = self._request
        return info

    def rpc_getHost(self, info, event=None, strict=False):
        return HOST if info in (HOST['id'], HOST['name']) else None

    def rpc_getTaskChildren(self, task_id, request=False, strict=False):
        return []

    def rpc_listTaskOutput(self, task_id, stat=False, all_volumes=False, strict=False):
        names = ['orchestrator.log', 'x86_64.log']
        if all_volumes:
            return dict((n, ['DEFAULT']) for n in names)
        return names

    def rpc_getTaskResult(self, task_id, raise_fault=True):
        state = self.current or self.task_states[0]
        if state == 'CLOSED':
            return self.result
        if state == 'FAILED':
            raise Fault(*self.task_fault)
        if state == 'CANCELED':
            raise Fault(koji.GenericError.faultCode, 'Task %i is canceled' % task_id)
        raise Fault(koji.GenericError.faultCode, 'Task %i is not finished' % task_id)


class HubServer(object):
    """Serve a FakeHub on 127.0.0.1 on a free port, in a daemon thread."""

    def __init__(self, hub=None):
        self.hub = hub or FakeHub()
        self.server = SimpleXMLRPCServer(('127.0.0.1', 0), requestHandler=_Quiet,
                                         allow_none=True, logRequests=False)
        self.server.register_instance(self.hub)
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
