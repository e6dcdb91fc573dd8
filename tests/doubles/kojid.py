"""A kojid double: run a task handler in a real child process, the way kojid does, and
kill its process tree the way kojid does.

Parent side (the test): `Kojid(hub, options)` serves the hub double to child processes
over a local authenticated socket (kojid's children talk XML-RPC to the hub; here the
calls are forwarded to the in-memory HubSessionDouble, its faults included).
`start(task_id, method, params, ...)` spawns the task process; in it, like kojid's
forkTask: own process group, SIGUSR2 ignored, SIGTERM -> SystemExit (kojid's inherited
handler), SIGINT -> KeyboardInterrupt, the plugin loaded with koji.plugin.PluginTracker,
the handler class picked by its Methods, koji.daemon.TaskManager.runTask (the real one:
closeTask/failTask, SystemExit/KeyboardInterrupt re-raised untouched), then os._exit.

`cancel(task_id)` runs the real koji.daemon.TaskManager.cleanupTask on the task's pid:
its process tree, deepest first, one SIGINT then 3 s, up to two SIGTERMs 1 s apart, up to
three SIGKILLs 1 s apart — kojid's own code, so its order and timing (no time scale: the
facts give kojid's real timing and the handler must live with it).
`kill9(task_id)` is a SIGKILL of the task process (a crash); `start(..., via_kojid=True)`
puts a middle "kojid" process between the test and the task, and `kill_kojid(task_id)`
SIGKILLs it, leaving the task process an orphan as after `kill -9 kojid`.

Child side: `python -m tests.doubles.kojid <spec.json>`.
"""

import json
import logging
import os
import pickle
import secrets
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Client, Listener

import koji
import koji.daemon

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOUBLES = os.path.join(ROOT, 'tests', 'doubles')


def _bare_task_manager(logger, session=None):
    """A koji.daemon.TaskManager with just what runTask/cleanupTask use (no hub login)."""
    tm = koji.daemon.TaskManager.__new__(koji.daemon.TaskManager)
    tm.logger = logger
    tm.session = session
    tm.pids = {}
    tm.subsessions = {}
    return tm


# ------------------------------------------------------------------ parent side

class Kojid(object):
    def __init__(self, hub, options, plugin_dir=None, plugin='builder_containerbuild',
                 env=None, logdir=None):
        self.hub = hub
        self.options = options
        self.plugin_dir = plugin_dir or os.path.join(ROOT, 'builder')
        self.plugin = plugin
        self.env = dict(env or {})
        self.logdir = logdir or options.workdir
        self.authkey = secrets.token_bytes(16)
        self.listener = Listener(('127.0.0.1', 0), authkey=self.authkey)
        self.procs = {}
        self.middles = {}
        self._stopping = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        self.logger = logging.getLogger('tests.kojid')

    def _accept(self):
        while not self._stopping:
            try:
                conn = self.listener.accept()
            except Exception:
                if self._stopping:
                    return
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            while True:
                try:
                    path, args, kwargs = conn.recv()
                except (EOFError, OSError):
                    return
                if path == '__opts__':
                    conn.send(('ok', dict(self.hub.opts)))
                    continue
                try:
                    target = self.hub
                    for part in path.split('.'):
                        target = getattr(target, part)
                    reply = ('ok', target(*args, **kwargs))
                except Exception as exc:
                    try:
                        pickle.dumps(exc)
                        reply = ('err', exc)
                    except Exception:
                        reply = ('err', koji.GenericError('%s: %s' % (type(exc).__name__,
                                                                      exc)))
                try:
                    conn.send(reply)
                except (EOFError, OSError):
                    return
        finally:
            conn.close()

    def start(self, task_id, method, params, config_file=None, via_kojid=False, extra=None):
        spec = {
            'task_id': task_id, 'method': method, 'params': params,
            'options': dict(vars(self.options)),
            'address': list(self.listener.address), 'authkey': self.authkey.hex(),
            'plugin_dir': self.plugin_dir, 'plugin': self.plugin,
            'config_file': config_file, 'extra': extra or {},
        }
        path = os.path.join(self.logdir, 'kojid-spec-%s-%d.json' % (task_id, time.time_ns()))
        os.makedirs(self.logdir, exist_ok=True)
        with open(path, 'w') as fobj:
            json.dump(spec, fobj)
        env = dict(os.environ)
        env.update(self.env)
        env['PYTHONPATH'] = os.pathsep.join([ROOT, DOUBLES] +
                                            [p for p in [env.get('PYTHONPATH')] if p])
        log = open(path[:-5] + '.log', 'w')
        args = [sys.executable, '-m', 'tests.doubles.kojid', path]
        if via_kojid:
            args.append('--kojid')
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.logfile = path[:-5] + '.log'
        if via_kojid:
            self.middles[task_id] = proc
            pid_file = path + '.pid'
            deadline = time.time() + 30
            while not os.path.exists(pid_file):
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError('kojid double did not start its task')
                time.sleep(0.01)
            with open(pid_file) as fobj:
                self.procs[task_id] = int(fobj.read())
        else:
            self.procs[task_id] = proc
        return proc

    def pid(self, task_id):
        proc = self.procs[task_id]
        return proc if isinstance(proc, int) else proc.pid

    def cancel(self, task_id):
        """kojid's reaction to a cancelled task: TaskManager.cleanupTask, for real."""
        tm = _bare_task_manager(self.logger)
        tm.pids[task_id] = self.pid(task_id)
        result = tm.cleanupTask(task_id, wait=False)
        proc = self.procs[task_id]
        if not isinstance(proc, int):
            proc.wait(10)
        return result

    def kill9(self, task_id):
        proc = self.procs[task_id]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def kill_kojid(self, task_id):
        middle = self.middles[task_id]
        os.kill(middle.pid, signal.SIGKILL)
        middle.wait()

    def wait(self, task_id, timeout=60):
        """Wait for the task process to end; its exit code (None if not our child)."""
        proc = self.procs[task_id]
        if isinstance(proc, int):
            deadline = time.time() + timeout
            while time.time() < deadline:
                try:
                    with open('/proc/%d/stat' % proc) as fobj:
                        state = fobj.read().rsplit(')', 1)[1].split()[0]
                    if state == 'Z':
                        return None
                except OSError:
                    return None
                time.sleep(0.05)
            raise RuntimeError('task process %d still running' % proc)
        return proc.wait(timeout)

    def close(self):
        self._stopping = True
        for task_id in list(self.procs):
            try:
                os.kill(self.pid(task_id), signal.SIGKILL)
            except OSError:
                pass
        for proc in list(self.procs.values()) + list(self.middles.values()):
            if not isinstance(proc, int):
                try:
                    proc.wait(5)
                except Exception:
                    pass
        for middle in self.middles.values():
            try:
                middle.kill()
            except OSError:
                pass
        try:
            self.listener.close()
        except OSError:
            pass


# ------------------------------------------------------------------ child side

class _RemoteHost(object):
    def __init__(self, session):
        self._session = session

    def __getattr__(self, name):
        if name.startswith('_'):
            raise AttributeError(name)
        return lambda *a, **k: self._session._call('host.' + name, a, k)


class RemoteSession(object):
    """The task process's hub session: every call goes to the parent's hub double."""

    def __init__(self, address, authkey):
        self._conn = Client(tuple(address), authkey=authkey)
        self._lock = threading.Lock()
        self.host = _RemoteHost(self)
        self.logged_in = True
        self.multicall = False
        self.opts = self._call('__opts__', (), {})

    def _call(self, path, args, kwargs):
        with self._lock:
            self._conn.send((path, args, kwargs))
            status, value = self._conn.recv()
        if status == 'err':
            raise value
        return value

    def __getattr__(self, name):
        if name.startswith('_'):
            raise AttributeError(name)
        return lambda *a, **k: self._call(name, a, k)

    def logout(self):
        pass


def _raise_system_exit(signum, frame):
    # kojid's SIGTERM handler, inherited by its forked task processes
    raise SystemExit(143)


def _task_main(spec):
    os.setpgrp()
    signal.signal(signal.SIGUSR2, lambda *args: None)
    signal.signal(signal.SIGTERM, _raise_system_exit)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format='%(asctime)s [%(process)d] %(name)s %(levelname)s %(message)s')
    logger = logging.getLogger('koji.build')
    import koji.plugin
    import koji.tasks
    tracker = koji.plugin.PluginTracker(path=spec['plugin_dir'])
    module = tracker.load(spec['plugin'])
    handler_class = None
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, koji.tasks.BaseTaskHandler) and \
                spec['method'] in getattr(value, 'Methods', ()):
            handler_class = value
    import optparse
    options = optparse.Values(spec['options'])
    session = RemoteSession(spec['address'], bytes.fromhex(spec['authkey']))
    handler = handler_class(spec['task_id'], spec['method'], spec['params'], session, options)
    if spec.get('config_file'):
        handler.config_file = spec['config_file']
    tm = _bare_task_manager(logger, session)
    try:
        tm.runTask(handler)
    finally:
        try:
            session.logout()
        finally:
            logging.shutdown()
            os._exit(0)


def _kojid_main(spec_path):
    """A middle 'kojid' process: start the task process and wait for it."""
    proc = subprocess.Popen([sys.executable, '-m', 'tests.doubles.kojid', spec_path],
                            cwd=ROOT)
    with open(spec_path + '.pid.tmp', 'w') as fobj:
        fobj.write(str(proc.pid))
    os.rename(spec_path + '.pid.tmp', spec_path + '.pid')
    proc.wait()


def main(argv):
    spec_path = argv[1]
    if '--kojid' in argv[2:]:
        return _kojid_main(spec_path)
    with open(spec_path) as fobj:
        spec = json.load(fobj)
    _task_main(spec)


if __name__ == '__main__':
    main(sys.argv)
