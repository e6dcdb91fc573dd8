"""A kojid double built on kojid's own task manager, koji.daemon.TaskManager.

A real separate "kojid" process (`python -m tests.doubles.kojid <spec.json>`) does what
kojid's main loop does with the real TaskManager: the plugin loaded with
koji.plugin.PluginTracker and its handlers registered by `scanPlugin` (plus
koji.tasks' own, as kojid's `findHandlers`), then forever `updateTasks()` (reap finished
task processes, SIGUSR2 to waiting tasks the hub alerts, the real `cleanupTask` for a
cancelled task: its process tree, deepest first, SIGINT, 3 s, SIGTERMs, SIGKILLs) and
`getNextTask()` -> the real `takeTask` (the handler is built **in the kojid process**
with kojid's session, `checkHost`, `openTask`, `setTaskWeight(handler.weight())`) ->
the real `forkTask` (subsession, fork, `setpgrp`, `handler.session` = the subsession,
SIGUSR2 ignored) -> the real `runTask` (closeTask / failTask / refuseTask; SystemExit and
KeyboardInterrupt leave the task untouched) -> `os._exit(0)`. The task processes inherit
kojid's signal handlers: SIGTERM -> SystemExit, SIGINT -> KeyboardInterrupt.

What differs from kojid, and why: no mock buildroots (`updateBuildroots`), and
`readyForTask` skips the load-average and free-space checks (the test machine is busy;
the hub's enabled/capacity and `maxjobs` checks stay); `sleeptime` is short.

Test side: `Kojid(hub, options)` serves the in-memory HubSessionDouble to those processes
over an authenticated loopback socket (every call, faults included); kojid's main
session and each task's subsession are separate connections, and `logoutChild` (from
cleanupTask) expires a subsession. The plugin's configuration file is the admin's
`/etc/kojid/plugins/...` in production; here `config_file` (per task in `start`, else
the parent task's, else the Kojid default) is put on the handler class before
`takeTask` builds the handler.

API: `start(task_id, ...)` assigns the hub's task to this host and returns the task
process pid once kojid forked it; `pid`, `wait`, `cancel` (the user's cancel on the hub,
then kojid's own reaction), `kill9` (a crashed task process: kojid reaps it and frees
the task on its next poll), `kill_kojid` (kill -9 kojid: its task processes become
orphans), `restart_kojid` (kojid comes back: it frees the OPEN tasks it has no process
for, as kojid does at start-up), `result(task_id)`, `wait_state`, `close`, `logfile`.
With `schedule=True` the hub double assigns FREE tasks (subtasks, freed tasks) to this
kojid, as the hub's scheduler does.

    kojid = Kojid(hub, options, config_file=conf)        # tests/builder: `kojid` fixture
    task_id = hub.add_task('buildContainer', params, owner='alice')
    pid = kojid.start(task_id)
    result = kojid.result(task_id)                       # or raises the task's fault
    kojid.close()

kojid keeps polling: a task it has no process for (after `kill9`) is freed at its next
poll, as kojid does. A test that re-runs a task in its own process instead must
`kill_kojid()` first (nothing then touches the hub's task).
"""

import json
import logging
import optparse
import os
import pickle
import secrets
import signal
import subprocess
import sys
import threading
import time
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Listener

import koji
import koji.daemon

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOUBLES = os.path.join(ROOT, 'tests', 'doubles')
SLEEPTIME = 0.1               # kojid's poll interval here (15 s by default in kojid)
FINISHED = (koji.TASK_STATES['CLOSED'], koji.TASK_STATES['FAILED'],
            koji.TASK_STATES['CANCELED'])


def _proc_state(pid):
    try:
        with open('/proc/%d/stat' % pid) as fobj:
            return fobj.read().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _alive(pid):
    state = _proc_state(pid)
    return state is not None and state != 'Z'


# ------------------------------------------------------------------ test side

class Kojid(object):
    def __init__(self, hub, options, plugin_dir=None, plugin='builder_containerbuild',
                 env=None, logdir=None, config_file=None, schedule=False):
        self.hub = hub
        self.options = options
        self.plugin_dir = plugin_dir or os.path.join(ROOT, 'builder')
        self.plugin = plugin
        self.env = dict(env or {})
        self.logdir = logdir or options.workdir
        self.config_file = config_file
        if schedule:
            hub.schedule = True
        self.authkey = secrets.token_bytes(16)
        self.listener = Listener(('127.0.0.1', 0), authkey=self.authkey)
        self.logger = logging.getLogger('tests.kojid')
        self.configs = {}             # task id -> plugin config file
        self.pids = {}                # task id -> pid of its latest task process
        self.all_pids = set()
        self.events = []              # (kind, task_id, value) reported by kojid
        self.kojid_pid = None
        self.logfile = None
        self._proc = None
        self._specs = []              # spec paths of the kojid processes started
        self._cond = threading.Condition()
        self._sessions = {}           # session id -> {'expired': bool, 'start_ts'}
        self._next_session = 1
        self._stopping = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    # -- the hub, served
    def _accept(self):
        while not self._stopping:
            try:
                conn = self.listener.accept()
            except Exception:
                if self._stopping:
                    return
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _new_session(self):
        with self._cond:
            sid = self._next_session
            self._next_session += 1
            self._sessions[sid] = {'expired': False, 'start_ts': time.time()}
            return sid

    def _sinfo(self, sid):
        return {'session-id': sid, 'session-key': 'key-%d' % sid, 'user_id': self.hub.user_id,
                'start_ts': self._sessions[sid]['start_ts'], 'expired': False,
                'authtype': koji.AUTHTYPES['SSL'], 'host_id': self.hub.host_id}

    def _special(self, sid, path, args):
        """Calls answered here: session bookkeeping and kojid's reports."""
        if path == '__hello__':
            return args[0] if args[0] else self._new_session()
        if path == '__opts__':
            return dict(self.hub.opts)
        if path == 'subsession':
            return self._sinfo(self._new_session())
        if path == 'getSessionInfo':
            return self._sinfo(sid)
        if path == 'logoutChild':
            with self._cond:
                if args[0] in self._sessions:
                    self._sessions[args[0]]['expired'] = True
            return None
        if path == 'logout':
            with self._cond:
                self._sessions[sid]['expired'] = True
            return None
        if path == '__event__':
            self._event(*args)
            return None
        if path == '__config__':
            return self._config_for(args[0])
        raise KeyError(path)

    def _serve(self, conn):
        sid = None
        try:
            while True:
                try:
                    path, args, kwargs = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    if path == '__hello__':
                        sid = self._special(sid, path, args)
                        reply = ('ok', sid)
                    elif sid is not None and self._sessions[sid]['expired'] and \
                            path != 'logout':
                        raise koji.AuthExpired('session %s expired' % sid)
                    elif path.startswith('__') or path in (
                            'subsession', 'getSessionInfo', 'logoutChild', 'logout'):
                        reply = ('ok', self._special(sid, path, args))
                    else:
                        target = self.hub
                        for part in path.split('.'):
                            target = getattr(target, part)
                        reply = ('ok', target(*args, **kwargs))
                except (Exception, SystemExit) as exc:
                    # SystemExit too: a hub hook running a task in this thread (the World's
                    # in-process children) must not end the connection without an answer
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

    def _event(self, kind, task_id, value):
        with self._cond:
            self.events.append((kind, task_id, value))
            if kind == 'taken':
                self.pids[task_id] = value
                self.all_pids.add(value)
            self._cond.notify_all()

    def _config_for(self, task_id):
        seen = set()
        while task_id is not None and task_id not in seen:
            seen.add(task_id)
            if task_id in self.configs:
                return self.configs[task_id]
            try:
                task_id = self.hub.task(task_id)['parent']
            except koji.GenericError:
                break
        return self.config_file

    def _wait_event(self, pred, timeout, what):
        deadline = time.time() + timeout
        with self._cond:
            while True:
                found = [e for e in self.events if pred(e)]
                if found:
                    return found[-1]
                remaining = deadline - time.time()
                if remaining <= 0:
                    raise RuntimeError('kojid double: timed out waiting for %s (log: %s)'
                                       % (what, self.logfile))
                if self._proc is not None and self._proc.poll() is not None:
                    raise RuntimeError('kojid double exited (%s) while waiting for %s '
                                       '(log: %s)' % (self._proc.returncode, what,
                                                      self.logfile))
                self._cond.wait(min(remaining, 0.2))

    # -- the kojid process
    def start_kojid(self):
        """Start the kojid process (if it is not running); return its pid."""
        if self.kojid_running():
            return self.kojid_pid
        spec = {
            'options': dict(vars(self.options)),
            'address': list(self.listener.address), 'authkey': self.authkey.hex(),
            'plugin_dir': self.plugin_dir, 'plugin': self.plugin,
        }
        os.makedirs(self.logdir, exist_ok=True)
        path = os.path.join(self.logdir, 'kojid-%d.json' % time.time_ns())
        with open(path, 'w') as fobj:
            json.dump(spec, fobj)
        self._specs.append(path)
        env = dict(os.environ)
        env.update(self.env)
        env['PYTHONPATH'] = os.pathsep.join([ROOT, DOUBLES] +
                                            [p for p in [env.get('PYTHONPATH')] if p])
        self.logfile = path[:-5] + '.log'
        with open(self.logfile, 'w') as log:
            self._proc = subprocess.Popen([sys.executable, '-m', 'tests.doubles.kojid', path],
                                          cwd=ROOT, env=env, stdout=log,
                                          stderr=subprocess.STDOUT)
        marker = len(self.events)
        self._wait_event(lambda e: e[0] == 'ready' and e[2] == self._proc.pid
                         and self.events.index(e) >= marker, 60, 'kojid start-up')
        self.kojid_pid = self._proc.pid
        return self.kojid_pid

    def _ours(self, pid):
        try:
            with open('/proc/%d/cmdline' % pid, 'rb') as fobj:
                cmdline = fobj.read()
        except OSError:
            return False
        return any(spec.encode() in cmdline for spec in self._specs)

    def kojid_running(self):
        return self._proc is not None and self._proc.poll() is None

    def restart_kojid(self):
        """kojid comes back after a crash: a new process; at its first poll it frees the
        OPEN tasks of this host it has no process for (they run again from scratch)."""
        if self.kojid_running():
            raise RuntimeError('kojid is still running')
        return self.start_kojid()

    # -- tasks
    def start(self, task_id, method=None, params=None, config_file=None, via_kojid=True,
              extra=None, timeout=60):
        """Hand an existing hub task to kojid (ASSIGNED to this host) and wait until
        kojid forked its task process; returns that pid. (method/params come from the
        hub's task; via_kojid is always true now; extra is accepted for compatibility.)"""
        if config_file:
            self.configs[task_id] = config_file
        if self.hub.task(task_id)['state'] == koji.TASK_STATES['OPEN'] and not (
                task_id in self.pids and _alive(self.pids[task_id])):
            # a task made OPEN by the test (no process): kojid's bookkeeping would free it
            # while this assigns it, and the hub would hand it out twice
            self.hub.free_task(task_id)
        before = self.pids.get(task_id)
        self.start_kojid()
        # with the hub's scheduler on, it may have handed the task to kojid already
        self.hub.assign_task(task_id, if_free=True)
        event = self._wait_event(lambda e: e[0] == 'taken' and e[1] == task_id
                                 and e[2] != before, timeout, 'task %s taken' % task_id)
        return event[2]

    def wait_taken(self, task_id, timeout=60, not_pid=None):
        """Wait until kojid runs `task_id` in a process other than `not_pid`; its pid."""
        return self._wait_event(lambda e: e[0] == 'taken' and e[1] == task_id
                                and e[2] != not_pid, timeout,
                                'task %s taken' % task_id)[2]

    def pid(self, task_id):
        return self.pids[task_id]

    def wait(self, task_id, timeout=60):
        """Wait for the task process to end (reaped by kojid, or gone as an orphan)."""
        pid = self.pids[task_id]
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self._cond:
                if any(e[0] == 'exited' and e[1] == task_id and e[2] == pid
                       for e in self.events):
                    return None
            if not _alive(pid):
                return None
            time.sleep(0.05)
        raise RuntimeError('task process %d still running' % pid)

    def wait_state(self, task_id, states=FINISHED, timeout=120):
        """Wait until the hub's task is in one of `states`; its record."""
        deadline = time.time() + timeout
        while True:
            task = self.hub.task(task_id)
            if task['state'] in states:
                return task
            if time.time() > deadline:
                raise RuntimeError('task %s still %s (log: %s)' % (
                    task_id, koji.TASK_STATES[task['state']], self.logfile))
            time.sleep(0.05)

    def result(self, task_id, timeout=120):
        """Wait for the task to finish; its result, or raise its fault (as
        getTaskResult)."""
        self.wait_state(task_id, timeout=timeout)
        return self.hub.getTaskResult(task_id)

    def cancel(self, task_id, timeout=30):
        """A user's cancel: CANCELED on the hub, then kojid's reaction (its next poll
        runs the real cleanupTask on the task's process tree). Returns when kojid is
        done with it."""
        pid = self.pids[task_id]
        if self.hub.task(task_id)['state'] not in FINISHED:
            self.hub.cancel_task(task_id)
        event = self._wait_event(lambda e: e[0] == 'cleaned' and e[1] == task_id
                                 and e[2][0] == pid, timeout, 'cleanup of %s' % task_id)
        self.wait(task_id, timeout=timeout)
        return event[2][1]

    def kill9(self, task_id):
        """SIGKILL of the task process (a crash); returns once kojid reaped it."""
        pid = self.pids[task_id]
        os.kill(pid, signal.SIGKILL)
        self.wait(task_id, timeout=30)

    def kill_kojid(self, task_id=None):
        """kill -9 kojid: its task processes go on as orphans."""
        if self._proc is None:
            return
        os.kill(self._proc.pid, signal.SIGKILL)
        self._proc.wait()

    def close(self):
        self._stopping = True
        if self.kojid_running():
            self._proc.kill()
            self._proc.wait()
        for pid in sorted(self.all_pids):
            # only a task process of ours (a fork of our kojid: same command line), and
            # its process group (git, buildah); never a recycled pid
            if not self._ours(pid):
                continue
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        try:
            self.listener.close()
        except OSError:
            pass


# ------------------------------------------------------------------ kojid side

class _RemoteNamespace(object):
    """`session.host.*`, `session.repo.*`."""

    def __init__(self, session, prefix):
        self._session = session
        self._prefix = prefix

    def __getattr__(self, name):
        if name.startswith('_'):
            raise AttributeError(name)
        return lambda *a, **k: self._session._call('%s.%s' % (self._prefix, name), a, k)


def _connect(address, authkey, tries=5):
    """multiprocessing's Client; its handshake is retried: under load the test's listener
    has been seen to reject a correct digest now and then (AuthenticationError), which is
    the double's transport, not anything kojid or the plugin does."""
    for attempt in range(tries):
        try:
            return Client(address, authkey=authkey)
        except AuthenticationError:
            if attempt == tries - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


class RemoteSession(object):
    """A hub session of the kojid process (or a task's subsession): every call goes to
    the test's hub double, one connection per session."""

    def __init__(self, address, authkey, session_id=None):
        self._address = tuple(address)
        self._authkey = authkey
        self._conn = _connect(self._address, authkey)
        self._lock = threading.Lock()
        self.host = _RemoteNamespace(self, 'host')
        self.repo = _RemoteNamespace(self, 'repo')
        self.logged_in = True
        self.multicall = False
        sid = self._call('__hello__', (session_id,), {})
        self.sinfo = self._call('getSessionInfo', (), {})
        assert self.sinfo['session-id'] == sid
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

    # what koji.daemon.TaskManager uses of a ClientSession
    def subsession(self):
        sinfo = self._call('subsession', (), {})
        return RemoteSession(self._address, self._authkey, session_id=sinfo['session-id'])

    def _forget(self):
        """Drop this process's copy of the session without logging out (after fork)."""
        try:
            self._conn.close()
        except OSError:
            pass
        self.logged_in = False

    def logout(self):
        if self.logged_in:
            try:
                self._call('logout', (), {})
            finally:
                self.logged_in = False


class DoubleTaskManager(koji.daemon.TaskManager):
    """koji.daemon.TaskManager with kojid's own code paths; only reports what it does to
    the test and skips the host-load checks (see the module docstring)."""

    def __init__(self, options, session):
        super(DoubleTaskManager, self).__init__(options, session)
        self.reporter = session

    def report(self, kind, task_id, value):
        if os.getpid() != self.kojid_pid:
            return        # a task process: the main session is not ours there
        self.reporter._call('__event__', (kind, task_id, value), {})

    def readyForTask(self):
        self.hostdata = self.session.host.getHost()
        if not self.hostdata['enabled']:
            self.status = 'Host is disabled'
            return False
        if self.task_load > self.hostdata['capacity']:
            self.status = 'Over capacity'
            return False
        if len(self.tasks) >= self.options.maxjobs:
            self.status = 'Full queue'
            return False
        return True

    def takeTask(self, task):
        handler_class = self.handlers.get(task['method'])
        config_file = self.reporter._call('__config__', (task['id'],), {})
        if handler_class is not None and config_file and \
                hasattr(handler_class, 'config_file'):
            # the admin's /etc/kojid/plugins/<plugin>.conf, per test
            handler_class.config_file = config_file
        taken = super(DoubleTaskManager, self).takeTask(task)
        if taken and task['id'] in self.pids:
            self.report('taken', task['id'], self.pids[task['id']])
        return taken

    def _waitTask(self, task_id, pid=None):
        pid = self.pids.get(task_id) if pid is None else pid
        done = super(DoubleTaskManager, self)._waitTask(task_id, pid)
        if done:
            self.report('exited', task_id, pid)
        return done

    def cleanupTask(self, task_id, wait=True):
        pid = self.pids.get(task_id)
        result = super(DoubleTaskManager, self).cleanupTask(task_id, wait=wait)
        self.report('cleaned', task_id, [pid, result])
        return result


def _raise_system_exit(signum, frame):
    # kojid's SIGTERM handler, inherited by its forked task processes
    raise SystemExit(143)


def kojid_main(spec):
    signal.signal(signal.SIGTERM, _raise_system_exit)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format='%(asctime)s [%(process)d] %(name)s %(levelname)s %(message)s')
    import koji.plugin
    import koji.tasks
    values = dict(spec['options'])
    values['sleeptime'] = SLEEPTIME
    options = optparse.Values(values)
    session = RemoteSession(spec['address'], bytes.fromhex(spec['authkey']))
    tracker = koji.plugin.PluginTracker(path=spec['plugin_dir'])
    module = tracker.load(spec['plugin'])
    tm = DoubleTaskManager(options, session)
    tm.kojid_pid = os.getpid()
    tm.findHandlers(vars(koji.tasks))
    tm.scanPlugin(module)
    logger = logging.getLogger('koji.build')
    logger.info('kojid double %s: handlers %s', os.getpid(), sorted(tm.handlers))
    tm.report('ready', None, os.getpid())
    try:
        while True:
            try:
                tm.updateTasks()
                taken = tm.getNextTask()
            except koji.GenericError as exc:
                logger.warning('kojid loop: %s', exc)
                taken = False
            if not taken:
                time.sleep(options.sleeptime)
    except (SystemExit, KeyboardInterrupt):
        tm.shutdown()
    finally:
        logging.shutdown()


def main(argv):
    with open(argv[1]) as fobj:
        spec = json.load(fobj)
    kojid_main(spec)


if __name__ == '__main__':
    main(sys.argv)
