"""A builder-side Koji hub session double: what kojid hands a task handler as ``session``.

It follows /work/shared/docs/koji-plugin-facts.md (Koji 1.35.3 hub behaviour) and
container-image-metadata.md §2/§4. Use it wherever a test needs a hub:

    hub = HubSessionDouble()
    hub.add_user('alice')
    hub.add_tag('f40-build', arches='x86_64 aarch64')
    hub.add_tag('f40-candidate')
    hub.add_target('f40-candidate', 'f40-build', 'f40-candidate')
    hub.add_package('f40-candidate', 'demo')
    task_id = hub.add_task('buildContainer', [src, 'f40-candidate', {}], owner='alice')
    handler = MyHandler(task_id, 'buildContainer', params, hub, options)

What it models (each rule is the real hub's, not a convenience):

- Return shapes of the user API (getTag, getBuildConfig, getPackageConfig, getBuild,
  getBuildType, getTaskInfo, getUser, getChannel, getLastEvent, getBuildTarget, getRepo
  (seed repos with ``add_repo``; Koji 1.35+'s ``repo.request``/``repo.checkRequest`` as
  BaseTaskHandler.getRepo uses them: a request is made when no READY repo exists and
  nothing serves it, as on a hub without kojira or a createrepo host), listTaskOutput with ``st_size`` as a *string*,
  downloadTaskOutput returning bytes as ClientSession does, listArchives whose ``extra``
  is the CG output's whole ``extra``: ``{'image': {'arch'}, 'docker': {...}}``).
- Faults are real koji exception classes (GenericError, ActionNotAllowed, AuthError,
  TagError, ParameterError, BuildError). Where the hub would hit a raw Python error
  (a missing metadata key in CGImport) the client sees ``xmlrpc.client.Fault`` with
  faultCode 1, and so does a caller of this double.
- Uploads: ``rawUpload`` mirrors the hub's upload handler (file name / directory checks,
  only the host owning the OPEN task may write under ``tasks/<id%10000>/<id>``, "upload
  path exists" at offset 0 without overwrite, offset -1 appends, any other offset
  truncates the file to that offset first, returns ``{'size', 'fileverify', 'offset',
  'hexdigest'}`` with an adler32 hexdigest as koji.daemon.fast_incremental_upload expects).
  ``uploadWrapper`` behaves like ClientSession.uploadWrapper with use_fast_upload.
- ``host.subtask``: an existing child with the same (parent, label) is returned whatever
  its state; ``owner`` is refused; the parent must be OPEN and owned by this host; a child's
  priority defaults to parent - 1, owner and arch to the parent's.
- ``host.taskWaitResults`` returns ``[[id, result], ...]``; a failed child re-raises its
  fault, a canceled one raises "Task N is canceled"; ``canfail`` children give
  ``{'faultCode', 'faultString'}`` instead.
- kojid's side (koji.daemon.TaskManager): ``host.getTasks`` (tasks ASSIGNED to this host;
  with ``schedule = True`` FREE tasks of the methods kojid reported in ``updateHost`` and
  of ``host_channels`` are assigned first, except those this host refused),
  ``host.getHostTasks`` (``alert`` for a waiting task whose awaited child finished),
  ``openTask``, ``setTaskWeight``, ``refuseTask`` (FREE again, see ``refusals()``),
  ``freeTasks``, ``updateHost``; ``closeTask``/``failTask`` decode kojid's XML-RPC
  encoded response as the hub does. ``assign_task`` plays the scheduler for one task.
- Cancellation (``cancelTask`` / ``cancel_task``; ``cancelTaskChildren`` for the children
  only): CANCELED at once, children recursively,
  BUILDING builds whose task_id is the task become CANCELED; afterwards closeTask,
  subtask, tagBuild and uploads for that task raise ActionNotAllowed.
- Content generators: CGInitBuild / CGImport / CGRefundBuild with CG access (AuthError),
  reservation tokens, the duplicate-NVR table, metadata v0 validation, ``image`` btype
  rules, size/checksum verification of every output against the uploads, owner and
  task_id rules. CGImport never tags.
- Policies: ``set_policy(name, result)``; a missing policy allows under check/assert and
  raises GenericError under evalPolicy.

Test helpers: ``add_*`` seeders, ``cancel_task``, ``finish_task`` (close or fail a task as
another builder would), ``fail_next(method, exc, count=1)`` fault injection (method names
as called: ``'rawUpload'``, ``'host.subtask'``...), ``calls`` (every call as
``(method, args, kwargs)``; rawUpload chunks are logged as their length only),
``uploaded_files(task_id)``, ``task_output(task_id)``, ``uploads``, ``tagged(tag)``,
``subtask_hook`` (called as ``hook(task_id, method, arglist, opts)`` after a new subtask is
made, outside the lock, so a test can run or finish it).

Thread-safe: one re-entrant lock guards all state (the log relay uploads from a thread).
"""

import copy
import datetime
import hashlib
import json
import optparse
import os
import posixpath
import threading
import time
import xmlrpc.client

import koji
import koji.util
import koji.xmlrpcplus

TASK = koji.TASK_STATES
BUILD = koji.BUILD_STATES

# Archive types the default hub knows, by extension (longest match wins), as in
# kojihub's archivetypes table; the type name is what listArchives reports.
ARCHIVE_TYPES = [
    ('tar', ['tar.gz', 'tar.bz2', 'tar.xz', 'tar', 'tgz']),
    ('zip', ['zip']),
    ('json', ['json']),
    ('qcow2', ['qcow2']),
    ('raw-xz', ['raw.xz']),
    ('iso', ['iso']),
    ('xml', ['xml']),
    ('yaml', ['yaml', 'yml']),
    ('txt', ['txt']),
    ('pom', ['pom']),
    ('jar', ['jar']),
]
LEGACY_BTYPES = ('maven', 'win', 'image')
CHECKSUM_TYPES = ('md5', 'sha256')


def _fault1(exc):
    """What a client sees when the hub fails with a non-koji exception (faultCode 1)."""
    return xmlrpc.client.Fault(1, "%s: %s" % (type(exc), exc))


def _iso(ts):
    """A timestamp as the hub sends it over XML-RPC (an ISO string), None stays None."""
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(' ')


def _archive_type(filename):
    best = None
    for type_name, exts in ARCHIVE_TYPES:
        for ext in exts:
            if filename.endswith('.' + ext) and (best is None or len(ext) > len(best[1])):
                best = (type_name, ext)
    return best[0] if best else None


def _is_xmlrpc(value):
    return isinstance(value, str) and value.lstrip().startswith('<?xml')


def _policy_allows(result):
    parts = (result or '').split(None, 1)
    parts.extend(['', ''])
    return parts[0].lower() in ('yes', 'true', 'allow', 'allowed'), parts[1]


class _Namespace(object):
    """``session.<prefix>``: calls ``_<prefix>_<name>`` through the double's lock and log
    (``session.repo.request`` -> ``_repo_request``)."""

    def __init__(self, hub, prefix):
        self._hub = hub
        self._prefix = prefix

    def __getattr__(self, name):
        impl = getattr(self._hub, '_%s_%s' % (self._prefix, name), None)
        if impl is None:
            raise AttributeError(name)

        def call(*args, **kwargs):
            return self._hub._call('%s.%s' % (self._prefix, name), impl, args, kwargs)
        return call


class _Host(object):
    """``session.host``: host-only calls, routed through the double's lock and log."""

    def __init__(self, hub):
        self._hub = hub

    def __getattr__(self, name):
        impl = getattr(self._hub, '_host_' + name, None)
        if impl is None:
            raise AttributeError(name)

        def call(*args, **kwargs):
            return self._hub._call('host.' + name, impl, args, kwargs)
        return call


class HubSessionDouble(object):
    """In-memory Koji hub as seen by one builder host's exclusive session.

    Parameters:
        host_name: the builder host (its user has the same name, usertype HOST).
        host_arches: arches of this host (getHost).
        topdir: if given, uploads are stored as real files under ``<topdir>/work/``
            (as on a hub) instead of in memory — use it for large volumes (benchmarks);
            CGImport then also stores the imported files in Koji's layout under it
            (``packages/<n>/<v>/<r>/images/...``), as a hub's topdir behind ``topurl``.
    """

    def __init__(self, host_name='builder-01.example.com', host_arches='x86_64', topdir=None):
        self._lock = threading.RLock()
        self._pending_hook = None
        self.calls = []
        self._failures = {}            # method -> [exc, remaining]
        self.subtask_hook = None
        self.opts = {'use_fast_upload': True, 'upload_blocksize': 1048576}
        self.logged_in = True
        self.multicall = False
        self.topdir = topdir
        self._event = 1000
        self._next_id = {'user': 1, 'tag': 1, 'target': 1, 'package': 1, 'build': 1,
                         'task': 12340, 'channel': 1, 'archive': 1, 'cg': 1, 'repo': 1}
        self._users = {}
        self._channels = {}
        self._tags = {}
        self._targets = {}
        self._packages = {}            # name -> id
        self._pkglist = {}             # (tag_id, pkg_id) -> entry
        self._builds = {}
        self._tasks = {}
        self._uploads = {}             # (path, name) -> bytearray (memory mode)
        self._upload_owners = {}       # path -> user id (non-task upload dirs)
        self._policies = {}
        self._cg_access = {}           # cg name -> set of user ids
        self._cgs = {}                 # cg name -> id
        self._reservations = {}        # build id -> {'token', 'cg'}
        self._archives = {}
        self._repos = {}               # repo id -> record (getRepo)
        self._tagged = {}              # tag id -> [build ids]
        self._build_dirs = set()       # build ids whose directory exists (imported)
        self.btypes = set(['rpm', 'maven', 'win', 'image'])
        self.host = _Host(self)
        self.repo = _Namespace(self, 'repo')
        self._repo_requests = {}       # request id -> record (repo.request)
        # the scheduler (host.getTasks): off unless a test runs tasks through kojid
        self.schedule = False
        self.host_channels = None      # None: this host is in every channel
        self.host_data = None          # updateHost's data (kojid's handler methods)
        self._refused = {}             # task id -> refuseTask details
        self.add_channel('default')
        self.add_channel('container')
        user = self.add_user(host_name, usertype=koji.USERTYPES['HOST'])
        self.user_id = user['id']
        self._host_info = {
            'id': 1, 'user_id': user['id'], 'name': host_name, 'update_ts': time.time(),
            'ready': True, 'task_load': 0.0, 'arches': host_arches, 'capacity': 2.0,
            'description': None, 'comment': None, 'enabled': True,
        }
        self.host_id = 1
        self.add_user('kojiadmin', admin=True)

    # ------------------------------------------------------------------ plumbing

    def _call(self, name, impl, args, kwargs):
        with self._lock:
            if name == 'rawUpload' and args:
                logged = ('<%d bytes>' % len(args[0]),) + tuple(args[1:])
            else:
                logged = copy.deepcopy(args)
            self.calls.append((name, logged, dict(kwargs)))
            fail = self._failures.get(name)
            if fail and fail[1] > 0:
                fail[1] -= 1
                exc = fail[0]
                raise (exc() if isinstance(exc, type) else exc)
            result = impl(*args, **kwargs)
            hook_args = getattr(self, '_pending_hook', None)
            self._pending_hook = None
        if hook_args and self.subtask_hook:
            self.subtask_hook(*hook_args)
        return result

    def __getattr__(self, name):
        # public API methods are the _api_<name> implementations, routed through _call
        if name.startswith('_'):
            raise AttributeError(name)
        impl = getattr(type(self), '_api_' + name, None)
        if impl is None:
            raise AttributeError(name)
        bound = impl.__get__(self, type(self))

        def call(*args, **kwargs):
            return self._call(name, bound, args, kwargs)
        call.__name__ = name
        return call

    def fail_next(self, method, exc, count=1):
        """Make the next ``count`` calls of ``method`` raise ``exc`` (class or instance).

        ``method`` is the name as called: 'rawUpload', 'getBuild', 'host.subtask'...
        """
        with self._lock:
            self._failures[method] = [exc, count]

    def calls_of(self, method):
        """The logged (args, kwargs) of every call of ``method``."""
        with self._lock:
            return [(a, k) for (m, a, k) in self.calls if m == method]

    def _bump_event(self):
        self._event += 1
        return self._event

    def _new_id(self, kind):
        value = self._next_id[kind]
        self._next_id[kind] += 1
        return value

    # ------------------------------------------------------------------ seeding

    def add_user(self, name, usertype=None, status=0, admin=False, perms=()):
        """Create a user; returns its getUser() dict."""
        with self._lock:
            uid = self._new_id('user')
            self._users[uid] = {
                'id': uid, 'name': name, 'status': status,
                'usertype': koji.USERTYPES['NORMAL'] if usertype is None else usertype,
                'krb_principals': [], '_admin': admin, '_perms': set(perms),
            }
            return self._user_view(self._users[uid])

    def add_channel(self, name, enabled=True):
        with self._lock:
            cid = self._new_id('channel')
            self._channels[cid] = {'id': cid, 'name': name, 'description': None,
                                   'enabled': enabled, 'comment': None}
            return dict(self._channels[cid])

    def add_tag(self, name, arches='x86_64 aarch64', locked=False, perm=None, extra=None,
                parents=(), maven_support=False, maven_include_all=False):
        """Create a tag. ``parents``: tag names inherited from, in priority order
        (getBuildConfig/getPackageConfig follow them; arches/extra are inherited)."""
        with self._lock:
            tid = self._new_id('tag')
            self._tags[tid] = {
                'id': tid, 'name': name, 'perm_id': None, 'perm': perm,
                'arches': arches, 'locked': locked, 'maven_support': maven_support,
                'maven_include_all': maven_include_all, 'extra': dict(extra or {}),
                '_parents': [self._tag_strict(p)['id'] for p in parents],
            }
            self._bump_event()
            return self._tag_view(self._tags[tid])

    def add_target(self, name, build_tag, dest_tag):
        with self._lock:
            btag = self._tag_strict(build_tag)
            dtag = self._tag_strict(dest_tag)
            tid = self._new_id('target')
            self._targets[tid] = {'id': tid, 'name': name, 'build_tag': btag['id'],
                                  'build_tag_name': btag['name'], 'dest_tag': dtag['id'],
                                  'dest_tag_name': dtag['name']}
            self._bump_event()
            return dict(self._targets[tid])

    def add_package(self, tag, pkg, blocked=False, owner=None, extra_arches=None):
        """List ``pkg`` in ``tag`` (blocked or not)."""
        with self._lock:
            tinfo = self._tag_strict(tag)
            pkg_id = self._package_id(pkg, create=True)
            owner_info = self._users[self._ensure_user(owner) if owner else self.user_id]
            self._pkglist[(tinfo['id'], pkg_id)] = {
                'package_id': pkg_id, 'package_name': pkg, 'tag_id': tinfo['id'],
                'tag_name': tinfo['name'], 'extra_arches': extra_arches, 'blocked': blocked,
                'owner_id': owner_info['id'], 'owner_name': owner_info['name'],
            }
            self._bump_event()

    def add_build(self, nvr, state=BUILD['COMPLETE'], extra=None, task_id=None, owner=None,
                  epoch=None, draft=False, source=None, cg=None, tags=()):
        """Create a build from an NVR string or a dict (name, version, release...).

        Returns the getBuild() dict. ``tags``: tag names to tag it into.
        """
        with self._lock:
            if isinstance(nvr, dict):
                data = dict(nvr)
            else:
                data = koji.parse_NVR(nvr)
                data.pop('epoch', None)
            data.setdefault('epoch', epoch)
            data.setdefault('extra', extra)
            data.setdefault('task_id', task_id)
            data.setdefault('draft', draft)
            data.setdefault('source', source)
            data.setdefault('state', state)
            owner_name = owner or data.pop('owner', None) or self._users[self.user_id]['name']
            binfo = self._create_build(data, self._ensure_user(owner_name), cg=cg)
            for tag in tags:
                self._tagged.setdefault(self._tag_strict(tag)['id'], []).append(binfo['id'])
            return self._build_view(binfo)

    def add_task(self, method='buildContainer', arglist=(), owner='kojiadmin',
                 state=TASK['OPEN'], host=True, parent=None, label=None, channel='container',
                 arch='noarch', priority=None, request=None, weight=1.0):
        """Create a task (default: OPEN on this host). Returns its id.

        ``arglist`` is the task's params list; ``host=False`` leaves it unassigned.
        """
        with self._lock:
            owner_id = self._ensure_user(owner) if not isinstance(owner, int) else owner
            chan = self._channel_lookup(channel)
            if chan is None:
                raise koji.GenericError('No such channel: %s' % channel)
            return self._insert_task(method, list(arglist), owner_id, state,
                                     self.host_id if host else None, parent, label,
                                     chan['id'], arch,
                                     koji.PRIO_DEFAULT if priority is None else priority,
                                     weight)

    def grant_cg_access(self, user, cg):
        """As ``koji grant-cg-access --new <user> <cg>``."""
        with self._lock:
            if cg not in self._cgs:
                self._cgs[cg] = self._new_id('cg')
            uid = self._ensure_user(user)
            self._cg_access.setdefault(cg, set()).add(uid)

    def add_container_target(self, target, build_tag, arches='x86_64', packages=()):
        """The usual container-build setup: build tag ``build_tag`` with ``arches``, a
        destination tag named like ``target`` (no arches of its own), the target, and
        ``packages`` listed in the destination tag. Returns the getBuildTarget() dict."""
        with self._lock:
            self.add_tag(build_tag, arches=arches)
            self.add_tag(target, arches='')
            self.add_target(target, build_tag, target)
            for pkg in packages:
                self.add_package(target, pkg)
            return self._api_getBuildTarget(target)

    def add_repo(self, tag, repo_id=None, state=koji.REPO_STATES['READY'], dist=False,
                 task_id=None):
        """A repo of ``tag`` made now (as kojira's newRepo would); returns its getRepo()
        dict. A later repo of the same tag is the newer one."""
        with self._lock:
            tinfo = self._tag_strict(tag)
            rid = repo_id if repo_id is not None else self._new_id('repo')
            now = time.time()
            self._repos[rid] = {
                'id': rid, 'tag_id': tinfo['id'], 'tag_name': tinfo['name'],
                'creation_time': _iso(now), 'creation_ts': now,
                'state_time': _iso(now), 'state_ts': now,
                'create_event': self._bump_event(), 'create_ts': now,
                'begin_event': None, 'begin_ts': None, 'end_event': None, 'end_ts': None,
                'state': state, 'dist': bool(dist), 'opts': {}, 'custom_opts': {},
                'task_id': task_id,
                'task_state': self._tasks[task_id]['state'] if task_id in self._tasks else None,
            }
            return self._repo_view(self._repos[rid])

    def add_btype(self, name):
        with self._lock:
            self.btypes.add(name)

    def set_policy(self, name, result):
        """Set policy ``name``: 'allow', 'deny [reason]', True/False, or a callable
        ``f(data) -> str|bool`` (a string result is parsed like the hub's rule result)."""
        with self._lock:
            self._policies[name] = result

    def claim_upload_dir(self, path, user):
        """Pretend another user uploaded to non-task directory ``path`` first."""
        with self._lock:
            self._upload_owners[posixpath.normpath(path)] = self._ensure_user(user)

    def cancel_task(self, task_id):
        """Cancel a task as its owner/an admin would (no permission check)."""
        with self._lock:
            return self._cancel(int(task_id), recurse=True)

    def finish_task(self, task_id, result=None, fault=None):
        """Close (result) or fail (fault: a koji exception instance) a task, as the
        builder running it would."""
        with self._lock:
            task = self._task_strict(task_id)
            if task['state'] not in (TASK['OPEN'], TASK['FREE'], TASK['ASSIGNED']):
                raise koji.GenericError('task %s is not active' % task_id)
            task['state'] = TASK['FAILED'] if fault is not None else TASK['CLOSED']
            task['_result'] = result
            task['_fault'] = fault
            task['completion_time'] = time.time()

    def free_task(self, task_id):
        """As a kojid restart: the OPEN task becomes FREE (no host) and can be re-opened
        with ``open_task`` — the same id runs again from scratch."""
        with self._lock:
            task = self._task_strict(task_id)
            task['state'] = TASK['FREE']
            task['host_id'] = None

    def assign_task(self, task_id, if_free=False):
        """As the hub's scheduler: the task becomes ASSIGNED to this host (kojid's
        getNextTask takes it). if_free: only a FREE task (the scheduler may have handed
        it out already); returns whether it was assigned."""
        with self._lock:
            task = self._task_strict(task_id)
            if if_free and task['state'] != TASK['FREE']:
                return False
            task['state'] = TASK['ASSIGNED']
            task['host_id'] = self.host_id
            return True

    def open_task(self, task_id):
        with self._lock:
            task = self._task_strict(task_id)
            task['state'] = TASK['OPEN']
            task['host_id'] = self.host_id
            task['start_time'] = time.time()

    # ------------------------------------------------------------------ inspectors

    @property
    def uploads(self):
        """Snapshot: {(path, name): bytes} of every uploaded file."""
        with self._lock:
            if self.topdir is None:
                return dict((k, bytes(v)) for k, v in self._uploads.items())
            result = {}
            work = os.path.join(self.topdir, 'work')
            for root, _dirs, files in os.walk(work):
                for fname in files:
                    if fname == '.user':
                        continue
                    rel = os.path.relpath(root, work)
                    with open(os.path.join(root, fname), 'rb') as fo:
                        result[(rel, fname)] = fo.read()
            return result

    def task_output(self, task_id):
        """Sorted relative names of the files under ``tasks/<id%10000>/<id>/``."""
        return sorted(self.uploaded_files(task_id))

    def uploaded_files(self, task_id):
        """{relative name: bytes} of the task's output directory."""
        prefix = koji.pathinfo.taskrelpath(int(task_id))
        result = {}
        for (path, name), data in self.uploads.items():
            path = posixpath.normpath(path)
            if path == prefix:
                result[name] = data
            elif path.startswith(prefix + '/'):
                result[posixpath.join(path[len(prefix) + 1:], name)] = data
        return result

    def upload_size(self, path, name):
        """Current size of one uploaded file (cheap; None if missing)."""
        with self._lock:
            return self._store_size(posixpath.normpath(path), name)

    def tagged(self, tag):
        """Build ids tagged into ``tag`` (in tagging order)."""
        with self._lock:
            return list(self._tagged.get(self._tag_strict(tag)['id'], []))

    def children(self, task_id):
        with self._lock:
            return sorted(t['id'] for t in self._tasks.values() if t['parent'] == task_id)

    def task(self, task_id):
        """The raw task record (including _result/_fault/request)."""
        with self._lock:
            return copy.deepcopy(self._task_strict(task_id))

    def build_record(self, build_id):
        with self._lock:
            return copy.deepcopy(self._builds[build_id])

    # ------------------------------------------------------------------ lookups

    def _ensure_user(self, name):
        info = self._user_lookup(name)
        if info is None:
            return self.add_user(name)['id']
        return info['id']

    def _user_lookup(self, info):
        if isinstance(info, int):
            return self._users.get(info)
        for user in self._users.values():
            if user['name'] == info:
                return user
        return None

    def _user_view(self, user, krb_princs=True):
        view = dict((k, v) for k, v in user.items() if not k.startswith('_'))
        if not krb_princs:
            view.pop('krb_principals')
        return view

    def _channel_lookup(self, info):
        if isinstance(info, int):
            return self._channels.get(info)
        for chan in self._channels.values():
            if chan['name'] == info:
                return chan
        return None

    def _tag_lookup(self, info):
        if isinstance(info, dict):
            info = info.get('id', info.get('name'))
        if isinstance(info, int):
            return self._tags.get(info)
        for tag in self._tags.values():
            if tag['name'] == info:
                return tag
        return None

    def _tag_strict(self, info):
        tag = self._tag_lookup(info)
        if tag is None:
            raise koji.GenericError('No such tagInfo: %r' % (info,))
        return tag

    def _tag_view(self, tag):
        return dict((k, copy.deepcopy(v)) for k, v in tag.items() if not k.startswith('_'))

    def _inheritance(self, tag):
        """The tag then its ancestors, depth first in priority order, no repeats."""
        order, seen, stack = [], set(), [tag['id']]
        while stack:
            tid = stack.pop(0)
            if tid in seen:
                continue
            seen.add(tid)
            order.append(self._tags[tid])
            stack = list(self._tags[tid]['_parents']) + stack
        return order

    def _package_id(self, name, create=False):
        if name not in self._packages:
            if not create:
                return None
            self._packages[name] = self._new_id('package')
        return self._packages[name]

    def _task_strict(self, task_id):
        task = self._tasks.get(int(task_id))
        if task is None:
            raise koji.GenericError('No such task: %i' % int(task_id))
        return task

    def _assert_host(self, task_id):
        task = self._task_strict(task_id)
        if not (task['state'] == TASK['OPEN'] and task['host_id'] == self.host_id):
            raise koji.ActionNotAllowed('host %d does not own task %d'
                                        % (self.host_id, int(task_id)))
        return task

    def _build_lookup(self, info):
        if isinstance(info, dict):
            if 'id' in info:
                info = info['id']
            else:
                info = '%(name)s-%(version)s-%(release)s' % info
        if isinstance(info, int):
            return self._builds.get(info)
        if isinstance(info, str):
            try:
                nvr = koji.parse_NVR(info)
            except koji.GenericError:
                raise koji.GenericError('No such build: %s' % info)
            for build in self._builds.values():
                if (build['name'], build['version'], build['release']) == \
                        (nvr['name'], nvr['version'], nvr['release']):
                    return build
            return None
        raise koji.GenericError('Invalid type for build info: %r' % (info,))

    def _repo_view(self, repo):
        return copy.deepcopy(repo)

    def _build_btypes(self, build):
        """The build's types: recorded at CGImport, else read from a seeded build's extra
        (legacy keys and typeinfo)."""
        if '_btypes' in build:
            return list(build['_btypes'])
        extra = build.get('extra') or {}
        types = [k for k in LEGACY_BTYPES if k in extra]
        types += [k for k in (extra.get('typeinfo') or {}) if k not in types]
        return types

    def _build_view(self, build):
        view = dict((k, copy.deepcopy(v)) for k, v in build.items() if not k.startswith('_'))
        for key in ('creation', 'start', 'completion', 'promotion'):
            view['%s_time' % key] = _iso(build['%s_ts' % key])
        return view

    def _create_build(self, data, owner_id, cg=None, build_id=None):
        name = data['name']
        pkg_id = self._package_id(name, create=True)
        owner = self._users[owner_id]
        now = time.time()
        bid = build_id or self._new_id('build')
        state = data.get('state', BUILD['BUILDING'])
        build = {
            'id': bid, 'build_id': bid, 'name': name, 'package_id': pkg_id,
            'package_name': name, 'version': data['version'], 'release': data['release'],
            'epoch': data.get('epoch'), 'nvr': '%s-%s-%s' % (name, data['version'],
                                                             data['release']),
            'draft': bool(data.get('draft')), 'state': state,
            'task_id': data.get('task_id'), 'owner_id': owner_id, 'owner_name': owner['name'],
            'volume_id': 0, 'volume_name': 'DEFAULT',
            'creation_event_id': self._bump_event(), 'creation_time': now, 'creation_ts': now,
            'start_time': None, 'start_ts': data.get('start_time', now),
            'completion_time': None if state == BUILD['BUILDING'] else now,
            'completion_ts': None if state == BUILD['BUILDING'] else now,
            'promotion_time': None, 'promotion_ts': None, 'promoter_id': None,
            'promoter_name': None, 'source': data.get('source'),
            'extra': copy.deepcopy(data.get('extra')),
            'cg_id': self._cgs.get(cg) if cg else None, 'cg_name': cg,
        }
        self._builds[bid] = build
        return build

    # ------------------------------------------------------------------ user API

    def _api_getLastEvent(self, before=None, strict=True):
        return {'id': self._event, 'ts': time.time()}

    def _api_getUser(self, userInfo=None, strict=False, krb_princs=True, groups=False):
        if userInfo is None:
            userInfo = self.user_id
        user = self._user_lookup(userInfo)
        if user is None:
            if strict:
                raise koji.GenericError('No such user: %r' % (userInfo,))
            return None
        return self._user_view(user, krb_princs)

    def _api_getChannel(self, channelInfo, strict=False):
        chan = self._channel_lookup(channelInfo)
        if chan is None:
            if strict:
                raise koji.GenericError('No such channel: %s' % (channelInfo,))
            return None
        return dict(chan)

    def _api_getTag(self, tagInfo, strict=False, event=None, blocked=False):
        tag = self._tag_lookup(tagInfo)
        if tag is None:
            if strict:
                raise koji.GenericError('No such tagInfo: %r' % (tagInfo,))
            return None
        return self._tag_view(tag)

    def _api_getBuildConfig(self, tag, event=None):
        tinfo = self._tag_lookup(tag)
        if tinfo is None:
            raise koji.GenericError('No such tag: %s' % (tag,))
        view = self._tag_view(tinfo)
        chain = self._inheritance(tinfo)
        view['config_inheritance'] = {'extra': {}, 'arches': None}
        if not view['arches']:
            for anc in chain[1:]:
                if anc['arches']:
                    view['arches'] = anc['arches']
                    view['config_inheritance']['arches'] = {'id': anc['id'],
                                                            'name': anc['name']}
                    break
        extra = {}
        for anc in reversed(chain):
            for key, value in anc['extra'].items():
                extra[key] = copy.deepcopy(value)
                if anc is not tinfo:
                    view['config_inheritance']['extra'][key] = {'id': anc['id'],
                                                                'name': anc['name']}
                else:
                    view['config_inheritance']['extra'].pop(key, None)
        view['extra'] = extra
        return view

    def _api_getPackageConfig(self, tag, pkg, event=None):
        tinfo = self._tag_lookup(tag)
        if tinfo is None:
            raise koji.GenericError('No such tagInfo: %r' % (tag,))
        pkg_id = self._package_id(pkg) if not isinstance(pkg, int) else pkg
        if pkg_id is None:
            return None
        for anc in self._inheritance(tinfo):
            entry = self._pkglist.get((anc['id'], pkg_id))
            if entry is not None:
                return dict(entry)
        return None

    def _api_getBuildTarget(self, info, event=None, strict=False):
        for target in self._targets.values():
            if target['id'] == info or target['name'] == info:
                return dict(target)
        if strict:
            raise koji.GenericError('No such build target: %s' % (info,))
        return None

    def _api_getBuild(self, buildInfo, strict=False):
        build = self._build_lookup(buildInfo)
        if build is None:
            if strict:
                raise koji.GenericError('No such build: %s' % (buildInfo,))
            return None
        return self._build_view(build)

    def _api_getBuildType(self, buildInfo, strict=False):
        """{btype: info}: typeinfo for new-style types, and for the legacy image type
        ``{'build_id': id}`` (kojihub's image_builds row)."""
        build = self._build_lookup(buildInfo)
        if build is None:
            if strict:
                raise koji.GenericError('No such build: %s' % (buildInfo,))
            return None
        typeinfo = (build.get('extra') or {}).get('typeinfo') or {}
        result = {}
        for btype in self._build_btypes(build):
            if btype == 'image':
                result[btype] = {'build_id': build['id']}
            else:
                result[btype] = copy.deepcopy(typeinfo.get(btype))
        return result

    def _api_getRepo(self, tag, state=None, event=None, dist=False, min_event=None):
        """The newest repo of ``tag`` (kojihub old_get_repo): READY unless ``state`` is
        given; with ``event``, the newest made at or before it whatever its state. None
        when there is none; an unknown tag is a GenericError."""
        tinfo = self._tag_strict(tag)
        if event is None and state is None:
            state = koji.REPO_STATES['READY']
        found = [r for r in self._repos.values()
                 if r['tag_id'] == tinfo['id'] and r['dist'] == bool(dist)
                 and (event is None or r['create_event'] <= event)
                 and (event is not None or r['state'] == state)
                 and (min_event is None or r['create_event'] >= min_event)]
        if not found:
            return None
        return self._repo_view(max(found, key=lambda r: r['create_event']))

    # Koji 1.35+ repos: made on request (kojira or a createrepo host serves requests).

    def _repo_request(self, tag, min_event=None, at_event=None, opts=None, priority=None,
                      force=False):
        """``repo.request``: {'repo': the newest READY repo (at least ``min_event``) or
        None, 'request': None or an active request for one}."""
        tinfo = self._tag_strict(tag)
        repo = self._api_getRepo(tinfo['id'], min_event=min_event)
        if repo and not force:
            return {'repo': repo, 'request': None}
        for req in self._repo_requests.values():
            if req['tag_id'] == tinfo['id'] and req['active']:
                return {'repo': None, 'request': copy.deepcopy(req)}
        rid = len(self._repo_requests) + 1
        self._repo_requests[rid] = {
            'id': rid, 'tag_id': tinfo['id'], 'tag_name': tinfo['name'],
            'min_event': min_event if min_event is not None else self._event,
            'at_event': at_event, 'opts': opts, 'task_id': None, 'task_state': None,
            'repo_id': None, 'active': True, 'tries': 0, 'priority': priority}
        self._bump_event()
        return {'repo': None, 'request': copy.deepcopy(self._repo_requests[rid])}

    def _repo_checkRequest(self, req_id):
        req = self._repo_requests.get(int(req_id))
        if req is None:
            raise koji.GenericError('No such repo request: %s' % req_id)
        repo = self._api_getRepo(req['tag_id'], min_event=req['min_event'])
        if repo:
            req['active'] = False
            req['repo_id'] = repo['id']
        return {'repo': repo, 'request': copy.deepcopy(req)}

    def _repo_get(self, tag, min_event=None, at_event=None, opts=None):
        return self._api_getRepo(tag, min_event=min_event)

    def repo_requests(self, tag=None):
        """The repo requests made so far (of ``tag``)."""
        with self._lock:
            return [copy.deepcopy(r) for r in self._repo_requests.values()
                    if tag is None or r['tag_name'] == tag]

    def _api_tagLastChangeEvent(self, tag):
        self._tag_strict(tag)
        return self._event

    def _api_getNextRelease(self, build_info, incr=1):
        """Bump the release of the newest COMPLETE/DELETED/BUILDING non-draft build of
        name+version: N, N.dist or a.b.N; no build gives '1'."""
        for key in ('name', 'version'):
            if key not in build_info:
                raise koji.GenericError('%s not specified' % key)
        states = (BUILD['COMPLETE'], BUILD['DELETED'], BUILD['BUILDING'])
        cands = [b for b in self._builds.values()
                 if b['name'] == build_info['name'] and b['version'] == build_info['version']
                 and b['state'] in states and not b['draft']]
        if not cands:
            return str(incr)
        release = max(cands, key=lambda b: b['id'])['release']
        if release.isdigit():
            return str(int(release) + incr)
        parts = release.split('.')
        if len(parts) == 2 and parts[0].isdigit():
            return '%d.%s' % (int(parts[0]) + incr, parts[1])
        if len(parts) >= 3 and parts[-1].isdigit():
            parts[-1] = str(int(parts[-1]) + incr)
            return '.'.join(parts)
        raise koji.BuildError('Unable to increment release value: %s' % release)

    def _api_getTaskInfo(self, task_id, request=False, strict=False):
        if isinstance(task_id, (list, tuple)):
            return [self._api_getTaskInfo(t, request=request, strict=strict) for t in task_id]
        task = self._tasks.get(int(task_id))
        if task is None:
            if strict:
                raise koji.GenericError('No such task: %i' % int(task_id))
            return None
        view = dict((k, copy.deepcopy(v)) for k, v in task.items() if not k.startswith('_'))
        for key in ('create', 'start', 'completion'):
            view['%s_ts' % key] = task['%s_time' % key]
            view['%s_time' % key] = _iso(task['%s_time' % key])
        if request:
            view['request'] = copy.deepcopy(task['_request'])
        return view

    def _api_getTaskChildren(self, task_id, request=False, strict=False):
        return [self._api_getTaskInfo(t, request=request)
                for t in sorted(t['id'] for t in self._tasks.values()
                                if t['parent'] == int(task_id))]

    def _api_getTaskResult(self, task_id, raise_fault=True):
        task = self._task_strict(task_id)
        if task['state'] == TASK['CANCELED']:
            raise koji.GenericError('Task %i is canceled' % task['id'])
        if task['state'] not in (TASK['CLOSED'], TASK['FAILED']):
            raise koji.GenericError('Task %i is not finished' % task['id'])
        if task['_fault'] is not None:
            if raise_fault:
                raise task['_fault']
            return {'faultCode': getattr(task['_fault'], 'faultCode', 1),
                    'faultString': str(task['_fault'])}
        return copy.deepcopy(task['_result'])

    def _api_cancelTask(self, task_id, recurse=True):
        """Allowed for the task owner, the host running it, or an admin; the session is
        this builder host, so the running host may cancel its own task."""
        task = self._task_strict(task_id)
        if task['host_id'] != self.host_id and task['owner'] != self.user_id:
            raise koji.ActionNotAllowed('Cannot cancel task, not owner')
        return self._cancel(task['id'], recurse)

    def _api_cancelTaskChildren(self, task_id):
        """Cancel every child (recursively); same permission rule as cancelTask for this
        host session: the task's owner or the host running it."""
        task = self._task_strict(task_id)
        if task['host_id'] != self.host_id and task['owner'] != self.user_id:
            raise koji.ActionNotAllowed('Cannot cancel task, not owner')
        for child in [t for t in self._tasks.values() if t['parent'] == task['id']]:
            self._cancel(child['id'], True)

    def _cancel(self, task_id, recurse):
        task = self._task_strict(task_id)
        if task['state'] == TASK['CANCELED']:
            return True
        if task['state'] in (TASK['CLOSED'], TASK['FAILED']):
            return False
        task['state'] = TASK['CANCELED']
        task['completion_time'] = time.time()
        for build in self._builds.values():
            if build['task_id'] == task_id and build['state'] == BUILD['BUILDING']:
                build['state'] = BUILD['CANCELED']
                build['completion_ts'] = time.time()
        if recurse:
            for child in [t for t in self._tasks.values() if t['parent'] == task_id]:
                self._cancel(child['id'], True)
        return True

    def _api_evalPolicy(self, name, data):
        if name not in self._policies:
            raise koji.GenericError('no such policy: %s' % name)
        return self._policy_result(name, data)

    def _policy_result(self, name, data):
        rule = self._policies[name]
        if callable(rule):
            rule = rule(copy.deepcopy(data))
        if rule is True:
            return 'allow'
        if rule is False or rule is None:
            return 'deny'
        return str(rule)

    def _check_policy(self, name, data, default='deny', strict=False):
        if name not in self._policies:
            # MissingPolicyOk (default True): a missing policy allows
            return [True, 'missing policy']
        allowed, reason = _policy_allows(self._policy_result(name, data))
        if allowed or not strict:
            return [allowed, reason]
        msg = 'policy violation (%s)' % name
        if reason:
            msg += ': %s' % reason
        raise koji.ActionNotAllowed(msg)

    def _api_listArchives(self, buildID=None, buildrootID=None, componentBuildrootID=None,
                          hostID=None, type=None, filename=None, size=None, checksum=None,
                          checksum_type=None, typeInfo=None, queryOpts=None, imageID=None,
                          archiveID=None, strict=False):
        result = []
        for arch in sorted(self._archives.values(), key=lambda a: a['id']):
            if buildID is not None and arch['build_id'] != buildID:
                continue
            if type is not None and arch['btype'] != type:
                continue
            if filename is not None and arch['filename'] != filename:
                continue
            if archiveID is not None and arch['id'] != archiveID:
                continue
            view = dict((k, copy.deepcopy(v)) for k, v in arch.items()
                        if not k.startswith('_'))
            if type == 'image':
                view['arch'] = arch['_image_arch']
            result.append(view)
        return result

    def _api_listTaskOutput(self, taskID, stat=False, all_volumes=False, strict=False):
        prefix = koji.pathinfo.taskrelpath(int(taskID))
        files = {}
        for (path, name) in self._store_keys():
            if path == prefix:
                rel = name
            elif path.startswith(prefix + '/'):
                rel = posixpath.join(path[len(prefix) + 1:], name)
            else:
                continue
            files[rel] = self._store_size(path, name)
        if not files and strict:
            raise koji.GenericError("Task doesn't exist")
        if stat:
            now = time.time()
            result = {}
            for rel, size in files.items():
                info = {'st_size': str(size), 'st_atime': now, 'st_mtime': now,
                        'st_ctime': now}
                result[rel] = {'DEFAULT': info} if all_volumes else info
            return result
        if all_volumes:
            return dict((rel, ['DEFAULT']) for rel in files)
        return list(files)

    def _api_downloadTaskOutput(self, taskID, fileName, offset=0, size=-1, volume=None):
        """Returns bytes, as ClientSession.downloadTaskOutput does after base64 decoding."""
        if not isinstance(size, int):
            raise koji.ParameterError("Invalid type for value '%s': %s" % (size, type(size)))
        if '..' in fileName:
            raise koji.GenericError('Invalid file name: %s' % fileName)
        prefix = koji.pathinfo.taskrelpath(int(taskID))
        full = posixpath.normpath(posixpath.join(prefix, fileName))
        path, name = posixpath.split(full)
        data = self._store_read(path, name)
        if data is None:
            raise koji.GenericError('no file "%s" output by task %i' % (fileName, int(taskID)))
        offset = int(offset)
        if offset > 0:
            data = data[offset:]
        elif offset < 0:
            data = data[offset:]
        if size >= 0:
            data = data[:size]
        return bytes(data)

    # ------------------------------------------------------------------ uploads

    def _store_keys(self):
        if self.topdir is None:
            return list(self._uploads)
        keys = []
        work = os.path.join(self.topdir, 'work')
        for root, _dirs, files in os.walk(work):
            for fname in files:
                if fname != '.user':
                    keys.append((os.path.relpath(root, work), fname))
        return keys

    def _disk_path(self, path, name):
        return os.path.join(self.topdir, 'work', path, name)

    def _store_size(self, path, name):
        if self.topdir is None:
            data = self._uploads.get((path, name))
            return None if data is None else len(data)
        try:
            return os.path.getsize(self._disk_path(path, name))
        except OSError:
            return None

    def _store_read(self, path, name):
        if self.topdir is None:
            data = self._uploads.get((path, name))
            return None if data is None else bytes(data)
        try:
            with open(self._disk_path(path, name), 'rb') as fo:
                return fo.read()
        except OSError:
            return None

    def _store_write(self, path, name, offset, chunk):
        """Truncate to offset (or append when offset == -1), then write; returns offset."""
        if self.topdir is None:
            buf = self._uploads.setdefault((path, name), bytearray())
            if offset == -1:
                offset = len(buf)
            else:
                if len(buf) > offset:
                    del buf[offset:]
                else:
                    buf.extend(b'\0' * (offset - len(buf)))
            buf.extend(chunk)
            return offset
        fn = self._disk_path(path, name)
        os.makedirs(os.path.dirname(fn), exist_ok=True)
        fd = os.open(fn, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if offset == -1:
                offset = os.lseek(fd, 0, os.SEEK_END)
            else:
                os.ftruncate(fd, offset)
                os.lseek(fd, offset, os.SEEK_SET)
            os.write(fd, chunk)
        finally:
            os.close(fd)
        return offset

    def _upload_target(self, path, name):
        """The hub's get_upload_path checks (create=True)."""
        orig_path, orig_name = path, name
        head, name = posixpath.split(name)
        if head or name.startswith('.') or not name:
            raise koji.GenericError('Invalid upload filename: %s' % orig_name)
        path = posixpath.normpath(path)
        if not path or path.startswith('..') or path.startswith('/') or path == '.':
            raise koji.GenericError('Invalid upload directory: %s' % orig_path)
        parts = path.split('/')
        if parts[0] == 'tasks':
            if len(parts) < 3:
                raise koji.GenericError('Invalid task upload directory: %s' % orig_path)
            try:
                task_id = int(parts[2])
            except ValueError:
                raise koji.GenericError('Invalid task upload directory: %s' % orig_path)
            # only the host running this (OPEN) task may write here
            self._assert_host(task_id)
        else:
            owner = self._upload_owners.setdefault(path, self.user_id)
            if owner != self.user_id:
                raise koji.GenericError('Invalid upload directory, not owner: %s' % orig_path)
        return path, name

    def _api_rawUpload(self, chunk, offset, path, name, verify='adler32', overwrite=False,
                       volume=None):
        if not self.logged_in:
            raise koji.ActionNotAllowed('you must be logged-in to upload a file')
        if isinstance(chunk, str):
            chunk = chunk.encode('utf-8')
        offset = int(offset)
        path, name = self._upload_target(path, name)
        current = self._store_size(path, name)
        if current is not None and offset == 0 and not overwrite:
            raise koji.GenericError('upload path exists: %s/%s' % (path, name))
        if verify == 'md5':
            chksum = hashlib.md5(chunk)
        elif verify == 'adler32':
            chksum = koji.util.adler32_constructor(chunk)
        elif verify == 'sha256':
            chksum = hashlib.sha256(chunk)
        elif verify:
            raise koji.GenericError('Unsupported verify type: %s' % verify)
        else:
            chksum = None
        offset = self._store_write(path, name, offset, bytes(chunk))
        ret = {'size': len(chunk), 'fileverify': verify, 'offset': offset}
        if chksum is not None:
            ret['hexdigest'] = chksum.hexdigest()
        return ret

    def _api_checkUpload(self, path, name, verify=None, tail=None, volume=None):
        path = posixpath.normpath(path)
        data = self._store_read(path, name)
        if data is None:
            return None
        ret = {'size': len(data), 'mtime': time.time()}
        if verify == 'adler32':
            ret['hexdigest'] = koji.util.adler32_constructor(data).hexdigest()
        elif verify == 'md5':
            ret['hexdigest'] = hashlib.md5(data).hexdigest()
        elif verify == 'sha256':
            ret['hexdigest'] = hashlib.sha256(data).hexdigest()
        elif verify:
            raise koji.GenericError('Unsupported verify type: %s' % verify)
        return ret

    def _api_uploadWrapper(self, localfile, path, name=None, callback=None, blocksize=None,
                           overwrite=True, volume=None):
        """ClientSession.uploadWrapper with use_fast_upload: rawUpload chunks (offset 0
        first, so an existing file needs overwrite), then checkUpload for the size."""
        if blocksize is None:
            blocksize = self.opts.get('upload_blocksize', 1048576)
        if name is None:
            name = os.path.basename(localfile)
        size = os.path.getsize(localfile)
        ofs = 0
        with open(localfile, 'rb') as fo:
            first = True
            while True:
                chunk = fo.read(blocksize)
                if not chunk and not first:
                    break
                first = False
                result = self._call('rawUpload', self._api_rawUpload,
                                    (chunk, ofs, path, name), {'overwrite': overwrite})
                if result['hexdigest'] != koji.util.adler32_constructor(chunk).hexdigest():
                    raise koji.GenericError('upload checksum failed')
                ofs += len(chunk)
                if callback:
                    callback(ofs, size, len(chunk), 0.0001, 0.0001)
        check = self._api_checkUpload(path, name)
        if check is None:
            raise koji.GenericError('File upload failed: %s/%s' % (path, name))
        if int(check['size']) != ofs:
            raise koji.GenericError('Uploaded file is wrong length: %s/%s, %s != %s'
                                    % (path, name, check['size'], ofs))

    # ------------------------------------------------------------------ content generators

    def _assert_cg_access(self, cg):
        if cg not in self._cgs or self.user_id not in self._cg_access.get(cg, set()):
            raise koji.AuthError('Content generator access required (%s)' % cg)

    def _check_nvr_free(self, data, for_reservation):
        """The duplicate-NVR table of container-image-metadata.md §4; returns a build id
        to reuse (FAILED/CANCELED and unused) or None."""
        old = self._build_lookup({'name': data['name'], 'version': data['version'],
                                  'release': data['release']})
        if old is None:
            return None
        state = old['state']
        if state == BUILD['BUILDING']:
            if for_reservation:
                if old['id'] in self._reservations:
                    raise koji.GenericError('Build is already reserved')
                raise koji.GenericError('Build already in progress (task %s)' % old['task_id'])
            raise koji.GenericError('Build already exists (id=%d, state=%s): %r'
                                    % (old['id'], BUILD[state], old['nvr']))
        if state not in (BUILD['FAILED'], BUILD['CANCELED']):
            raise koji.GenericError('Build already exists (id=%d, state=%s): %r'
                                    % (old['id'], BUILD[state], old['nvr']))
        if any(old['id'] in ids for ids in self._tagged.values()):
            raise koji.GenericError('Build already exists. Unable to recycle, has tag history')
        if any(a['build_id'] == old['id'] for a in self._archives.values()):
            raise koji.GenericError('Build already exists. Unable to recycle, has archive data')
        return old['id']

    def _api_CGInitBuild(self, cg, data):
        self._assert_cg_access(cg)
        if not isinstance(data, dict):
            raise koji.ParameterError('Invalid type for value %r' % (data,))
        for key in ('name', 'version', 'release'):
            if key not in data:
                raise _fault1(KeyError(key))
        koji.check_NVR(data, strict=True)
        reuse = self._check_nvr_free(data, for_reservation=True)
        build = self._create_build({'name': data['name'], 'version': data['version'],
                                    'release': data['release'], 'epoch': data.get('epoch'),
                                    'draft': data.get('draft', False),
                                    # kojihub new_build keeps data's extra
                                    'extra': data.get('extra'),
                                    'state': BUILD['BUILDING']},
                                   self.user_id, cg=cg, build_id=reuse)
        token = hashlib.sha256(os.urandom(32)).hexdigest()
        self._reservations[build['id']] = {'token': token, 'cg': cg}
        return {'build_id': build['id'], 'token': token}

    def _api_CGRefundBuild(self, cg, build_id, token, state=BUILD['FAILED']):
        self._assert_cg_access(cg)
        if state not in (BUILD['FAILED'], BUILD['CANCELED']):
            raise koji.GenericError('Only FAILED/CANCELLED build states are allowed')
        build = self._builds.get(build_id)
        if build is None:
            raise koji.GenericError('No such build: %s' % build_id)
        resv = self._reservations.get(build_id)
        if resv is None or resv['token'] != token:
            raise koji.GenericError('Token is not correct')
        if resv['cg'] != cg:
            raise koji.GenericError('Build is not reserved by content generator %s' % cg)
        if build['state'] != BUILD['BUILDING']:
            raise koji.GenericError('Build is not in BUILDING state')
        build['state'] = state
        build['completion_ts'] = time.time()
        del self._reservations[build_id]

    def _api_cancelBuild(self, buildID, strict=False):
        """kojihub cancelBuild: the build's owner or an admin; a BUILDING build becomes
        CANCELED (its reservation is cleared), anything else gives False."""
        build = self._build_lookup(buildID)
        if build is None:
            return False
        user = self._users[self.user_id]
        if build['owner_id'] != self.user_id and not user['_admin']:
            raise koji.ActionNotAllowed('Cannot cancel build, not owner')
        if build['state'] != BUILD['BUILDING']:
            return False
        build['state'] = BUILD['CANCELED']
        build['completion_ts'] = time.time()
        self._reservations.pop(build['id'], None)
        return True

    def _load_metadata(self, metadata, directory):
        if isinstance(metadata, dict):
            return copy.deepcopy(metadata)
        if not isinstance(metadata, str):
            raise koji.GenericError('Invalid metadata type: %r' % type(metadata))
        if metadata.endswith('.json'):
            data = self._store_read(posixpath.normpath(directory), metadata)
            if data is None:
                raise _fault1(IOError('No such file: %s/%s' % (directory, metadata)))
            metadata = data.decode('utf-8', 'replace')
        try:
            return json.loads(metadata)
        except ValueError as exc:
            raise _fault1(exc)

    def _api_CGImport(self, metadata, directory, token=None):
        try:
            return self._cg_import(metadata, directory, token)
        except KeyError as exc:
            # a missing metadata key is a raw KeyError in the hub: faultCode 1
            raise _fault1(exc)
        except (TypeError, AttributeError) as exc:
            raise _fault1(exc)

    def _cg_import(self, metadata, directory, token):
        meta = self._load_metadata(metadata, directory)
        if meta['metadata_version'] != 0:
            raise koji.GenericError('No such metadata version: %r' % meta['metadata_version'])
        build = meta['build']
        for key in ('name', 'version', 'release', 'source', 'start_time', 'end_time', 'extra'):
            build[key]
        koji.check_NVR(build, strict=True)
        if not isinstance(build['extra'], dict):
            raise koji.GenericError('Invalid build extra: %r' % (build['extra'],))
        # build types: legacy keys and typeinfo, not both ways for one btype
        extra = build['extra']
        btypes = {}
        typeinfo = extra.get('typeinfo', {})
        for key in LEGACY_BTYPES:
            if key in extra:
                if key in typeinfo:
                    raise koji.GenericError('Duplicate typeinfo for %r' % key)
                btypes[key] = extra[key]
        btypes.update(typeinfo)
        for btype in btypes:
            if btype not in self.btypes:
                raise koji.GenericError('Unsupported build type: %s' % btype)
        # buildroots: one CG per import, ids unique
        cgs = set()
        br_ids = []
        for br in meta['buildroots']:
            br['id']
            br['host']['os'], br['host']['arch']
            cgs.add(br['content_generator']['name'])
            br['content_generator']['version']
            br['container']['type'], br['container']['arch']
            for tool in br['tools']:
                tool['name'], tool['version']
            for comp in br['components']:
                self._check_component(comp)
            if br['id'] in br_ids:
                raise koji.GenericError('Duplicate buildroot id: %r' % (br['id'],))
            br_ids.append(br['id'])
        if len(cgs) != 1:
            raise koji.GenericError('Metadata must name exactly one content generator, '
                                    'found: %s' % ', '.join(sorted(str(c) for c in cgs)))
        cg = cgs.pop()
        self._assert_cg_access(cg)
        # outputs
        used = set()
        log_names = set()
        outputs = []
        payloads = []                  # (output, bytes), for _store_build_files
        for out in meta['output']:
            for key in ('buildroot_id', 'filename', 'filesize', 'checksum', 'checksum_type',
                        'type'):
                out[key]
            if out['buildroot_id'] not in br_ids:
                raise koji.GenericError('No such buildroot: %r' % (out['buildroot_id'],))
            used.add(out['buildroot_id'])
            if out['checksum_type'] not in CHECKSUM_TYPES:
                raise koji.GenericError('Unsupported checksum type: %s' % out['checksum_type'])
            relpath = out.get('relpath') or ''
            fdir = posixpath.normpath(posixpath.join(directory, relpath))
            data = self._store_read(fdir, out['filename'])
            if data is None:
                raise koji.GenericError('No such file: %s/%s' % (fdir, out['filename']))
            if len(data) != int(out['filesize']):
                raise koji.GenericError("File size %s for %s (expected %s) doesn't match. "
                                        "Corrupted upload?" % (len(data), out['filename'],
                                                               out['filesize']))
            digest = hashlib.new(out['checksum_type'], data).hexdigest()
            if digest != out['checksum']:
                raise koji.GenericError('File checksum mismatch for %s: %s != %s'
                                        % (out['filename'], digest, out['checksum']))
            payloads.append((out, data))
            if out['type'] == 'log':
                if out['filename'] in log_names:
                    raise koji.GenericError('Duplicate log name: %s' % out['filename'])
                log_names.add(out['filename'])
                outputs.append((out, None, None))
                continue
            if out['type'] == 'rpm':
                outputs.append((out, 'rpm', None))
                continue
            oextra = out.get('extra') or {}
            otypes = [k for k in LEGACY_BTYPES if k in oextra]
            otypes += list(oextra.get('typeinfo', {}))
            if len(otypes) != 1:
                raise koji.GenericError('Output file %s must have exactly one btype, found %r'
                                        % (out['filename'], otypes))
            btype = otypes[0]
            if btype not in btypes:
                raise koji.GenericError('Output type %s not listed in build types' % btype)
            if _archive_type(out['filename']) is None:
                raise koji.GenericError('Unsupported file type: %s' % out['filename'])
            image_arch = None
            if btype == 'image':
                info = oextra['image'] if 'image' in oextra else oextra['typeinfo']['image']
                image_arch = info['arch']
                if not isinstance(image_arch, str) or len(image_arch) > 16:
                    raise koji.GenericError('Invalid image arch: %r' % (image_arch,))
            for comp in out.get('components') or []:
                self._check_component(comp)
            outputs.append((out, btype, image_arch))
        for br_id in br_ids:
            if br_id not in used:
                raise koji.GenericError('Buildroot %r is not used by any output' % (br_id,))
        # owner and task id
        owner_id = self.user_id
        if build.get('owner') is not None:
            owner = self._user_lookup(build['owner'])
            if owner is None:
                raise koji.GenericError('No such user: %s' % build['owner'])
            owner_id = owner['id']
        task_id = build.get('task_id')
        legacy_task = extra.get('container_koji_task_id')
        if task_id is not None and legacy_task is not None and int(task_id) != int(legacy_task):
            raise koji.GenericError('Build task_id (%s) does not match '
                                    'extra.container_koji_task_id (%s)' % (task_id, legacy_task))
        if task_id is None:
            task_id = legacy_task
        # policy
        self._check_policy('cg_import', {'package': build['name'], 'version': build['version'],
                                         'release': build['release'],
                                         'btypes': sorted(btypes), 'source': build['source'],
                                         'draft': bool(build.get('draft')),
                                         'metadata_only': False, 'cg_list': [cg]},
                           strict=True)
        # reservation
        if token is not None or build.get('build_id') is not None:
            if build.get('build_id') is None:
                raise koji.GenericError('Reservation token given without build_id')
            if token is None:
                raise koji.GenericError('Reserved build id %s needs its token'
                                        % build['build_id'])
            binfo = self._builds.get(int(build['build_id']))
            resv = self._reservations.get(int(build['build_id']))
            if binfo is None:
                raise koji.GenericError('No such build: %s' % build['build_id'])
            if resv is None or resv['token'] != token:
                raise koji.GenericError('Token is not correct')
            if resv['cg'] != cg:
                raise koji.GenericError('Build is not reserved by content generator %s' % cg)
            if binfo['state'] != BUILD['BUILDING']:
                raise koji.GenericError('Build ID %s is not in BUILDING state' % binfo['id'])
            for key in ('name', 'version', 'release'):
                if binfo[key] != build[key]:
                    raise koji.GenericError('Build %s does not match reservation (%s: %r != %r)'
                                            % (binfo['id'], key, build[key], binfo[key]))
            if (build.get('epoch') or None) != (binfo['epoch'] or None) or \
                    bool(build.get('draft')) != binfo['draft']:
                raise koji.GenericError('Build %s does not match reservation (epoch/draft)'
                                        % binfo['id'])
            del self._reservations[binfo['id']]
        else:
            reuse = self._check_nvr_free(build, for_reservation=False)
            binfo = self._create_build({'name': build['name'], 'version': build['version'],
                                        'release': build['release'],
                                        'epoch': build.get('epoch'),
                                        'draft': build.get('draft', False),
                                        'state': BUILD['BUILDING'],
                                        'start_time': build['start_time']},
                                       owner_id, cg=cg, build_id=reuse)
        if binfo['id'] in self._build_dirs:
            raise koji.GenericError('Destination directory exists for build %s' % binfo['nvr'])
        # import: the hub copies legacy btype info into typeinfo
        stored_extra = copy.deepcopy(extra)
        stored_extra.setdefault('typeinfo', {})
        for key in LEGACY_BTYPES:
            if key in extra:
                stored_extra['typeinfo'][key] = copy.deepcopy(extra[key])
        now = time.time()
        binfo.update({'extra': stored_extra, 'owner_id': owner_id,
                      'owner_name': self._users[owner_id]['name'], 'source': build['source'],
                      'task_id': int(task_id) if task_id is not None else None,
                      'state': BUILD['COMPLETE'], 'completion_ts': now, 'cg_id': self._cgs[cg], 'cg_name': cg,
                      '_btypes': sorted(btypes)})
        for out, btype, image_arch in outputs:
            if btype is None or btype == 'rpm':
                continue
            aid = self._new_id('archive')
            type_name = _archive_type(out['filename'])
            self._archives[aid] = {
                'id': aid, 'type_id': [t for t, _e in ARCHIVE_TYPES].index(type_name) + 1,
                'type_name': type_name, 'build_id': binfo['id'],
                'buildroot_id': None, 'filename': out['filename'],
                'size': int(out['filesize']), 'checksum': out['checksum'],
                'checksum_type': CHECKSUM_TYPES.index(out['checksum_type']) * 2,
                'btype': btype, 'btype_id': sorted(self.btypes).index(btype) + 1,
                # the hub stores the output's whole extra (btype key included)
                'extra': copy.deepcopy(out.get('extra')),
                'metadata_only': bool(out.get('metadata_only')), '_image_arch': image_arch,
                '_output': copy.deepcopy(out),
            }
        self._build_dirs.add(binfo['id'])
        self._store_build_files(binfo, outputs, payloads)
        self._bump_event()
        return self._build_view(binfo)

    def _store_build_files(self, binfo, outputs, payloads):
        """With a topdir, the imported files where the hub puts them (Koji's PathInfo
        layout: typed archives under typedir(build, btype), e.g. ``packages/<n>/<v>/<r>/
        images/`` for ``image``; logs under ``data/logs/``), so a test can serve topdir
        as kojid's ``topurl``."""
        if self.topdir is None:
            return
        pathinfo = koji.PathInfo(topdir=self.topdir)
        btype_of = dict((id(out), btype) for out, btype, _arch in outputs)
        for out, data in payloads:
            btype = btype_of.get(id(out))
            if out['type'] == 'log':
                destdir = pathinfo.build_logs(binfo)
            elif btype is None or btype == 'rpm':
                continue
            else:
                destdir = pathinfo.typedir(binfo, btype)
            name = out['filename']
            if '/' in name or name in ('', '.', '..'):
                raise koji.GenericError('Invalid file name: %s' % name)
            os.makedirs(destdir, exist_ok=True)
            with open(os.path.join(destdir, name), 'wb') as fo:
                fo.write(data)

    def _check_component(self, comp):
        ctype = comp['type']
        if ctype == 'rpm':
            for key in ('name', 'version', 'release', 'epoch', 'arch', 'sigmd5', 'signature'):
                comp[key]
            if 'id' in comp or 'location' in comp:
                raise koji.GenericError('Invalid rpm component: %r' % (comp,))
        elif ctype == 'file':
            for key in ('filename', 'filesize', 'checksum', 'checksum_type'):
                comp[key]
        elif ctype == 'kojifile':
            for key in ('filename', 'filesize', 'checksum', 'checksum_type', 'nvr',
                        'archive_id'):
                comp[key]
            if comp['archive_id'] not in self._archives:
                raise koji.GenericError('No such archive: %s' % comp['archive_id'])
        else:
            raise koji.GenericError('Unknown component type: %s' % ctype)

    # ------------------------------------------------------------------ host API

    def _insert_task(self, method, arglist, owner_id, state, host_id, parent, label,
                     channel_id, arch, priority, weight):
        tid = self._new_id('task')
        now = time.time()
        self._tasks[tid] = {
            'id': tid, 'state': state, 'create_time': now,
            'start_time': now if state == TASK['OPEN'] else None, 'completion_time': None,
            'channel_id': channel_id, 'host_id': host_id, 'parent': parent, 'label': label,
            'waiting': None, 'awaited': None, 'owner': owner_id, 'method': method,
            'arch': arch, 'priority': priority, 'weight': weight,
            '_request': copy.deepcopy(arglist), '_result': None, '_fault': None,
        }
        self._bump_event()
        return tid

    def _host_getID(self):
        return self.host_id

    def _host_getHost(self):
        return dict(self._host_info)

    def _host_subtask(self, method, arglist, parent, **opts):
        self._assert_host(parent)
        ptask = self._tasks[int(parent)]
        if 'owner' in opts:
            raise koji.ActionNotAllowed('owner option is not allowed for subtasks')
        label = opts.get('label')
        if 'label' in opts:
            for task in self._tasks.values():
                if task['parent'] == ptask['id'] and task['label'] == label:
                    return task['id']
        if 'kwargs' in opts:
            arglist = koji.encode_args(*arglist, **opts.pop('kwargs'))
        # make_task silently ignores unknown options
        arch = opts.get('arch', ptask['arch'])
        arch = koji.parse_arches(arch, strict=True, allow_none=True) if arch is not None \
            else ''
        channel_id = ptask['channel_id']
        if 'channel' in opts:
            chan = self._channel_lookup(opts['channel'])
            if chan is None:
                raise koji.GenericError('No such channel: %s' % opts['channel'])
            if not chan['enabled']:
                raise koji.GenericError('Channel %s is disabled.' % opts['channel'])
            channel_id = chan['id']
        priority = opts.get('priority', ptask['priority'] - 1)
        state = TASK['FREE']
        host_id = None
        if opts.get('assign'):
            state, host_id = TASK['ASSIGNED'], opts['assign']
        tid = self._insert_task(method, list(arglist), ptask['owner'], state, host_id,
                                ptask['id'], label, channel_id, arch, int(priority), 1.0)
        self._pending_hook = (tid, method, copy.deepcopy(list(arglist)), dict(opts))
        return tid

    def _host_taskSetWait(self, parent, tasks):
        self._task_strict(parent)['waiting'] = True
        for task in self._tasks.values():
            if task['parent'] == int(parent):
                if tasks is None or task['id'] in tasks:
                    task['awaited'] = True
                else:
                    task['awaited'] = False

    def _host_taskWait(self, parent):
        finished, unfinished = [], []
        for task in sorted(self._tasks.values(), key=lambda t: t['id']):
            if task['parent'] != int(parent) or not task['awaited']:
                continue
            if task['state'] in (TASK['CANCELED'], TASK['CLOSED'], TASK['FAILED']):
                finished.append(task['id'])
            else:
                unfinished.append(task['id'])
        for tid in finished:
            self._tasks[tid]['awaited'] = False
        return [finished, unfinished]

    def _host_taskWaitResults(self, parent, tasks, canfail=None):
        canfail = canfail or []
        ptask = self._task_strict(parent)
        ptask['waiting'] = False
        for task in self._tasks.values():
            if task['parent'] == ptask['id']:
                task['awaited'] = False
        if tasks is None:
            tasks = sorted(t['id'] for t in self._tasks.values()
                           if t['parent'] == ptask['id'] and
                           t['state'] in (TASK['CLOSED'], TASK['FAILED'], TASK['CANCELED']))
        results = []
        for tid in tasks:
            task = self._task_strict(tid)
            try:
                results.append([tid, self._api_getTaskResult(tid,
                                                             raise_fault=tid not in canfail)])
            except koji.GenericError as exc:
                if tid in canfail and task['state'] == TASK['CANCELED']:
                    results.append([tid, {'faultCode': exc.faultCode,
                                          'faultString': str(exc)}])
                    continue
                raise
        return results

    def _host_closeTask(self, task_id, response):
        task = self._assert_host(task_id)
        if _is_xmlrpc(response):
            # kojid's runTask sends the result XML-RPC encoded; the hub stores it so
            (response,), _method = koji.xmlrpcplus.loads(response)
        task['state'] = TASK['CLOSED']
        task['_result'] = copy.deepcopy(response)
        task['completion_time'] = time.time()

    def _host_failTask(self, task_id, response):
        task = self._assert_host(task_id)
        if _is_xmlrpc(response):
            try:
                koji.xmlrpcplus.loads(response)
                response = koji.GenericError('failTask without a fault')
            except xmlrpc.client.Fault as fault:
                # what getTaskResult raises on the client: the koji class of the code
                response = koji.convertFault(fault)
        task['state'] = TASK['FAILED']
        task['_fault'] = response if isinstance(response, Exception) else \
            koji.GenericError(str(response))
        task['completion_time'] = time.time()

    # kojid's TaskManager calls (koji.daemon): the scheduler side of the hub.

    def _host_updateHost(self, task_load, ready, data=None):
        self._host_info['task_load'] = float(task_load)
        self._host_info['ready'] = bool(ready)
        self._host_info['update_ts'] = time.time()
        if data is not None:
            self.host_data = copy.deepcopy(data)

    def _schedule(self):
        """With ``schedule`` on, FREE tasks this host can run (a method it reported in
        updateHost, a channel in ``host_channels``) are ASSIGNED to it, as the hub's
        scheduler would; a task this host refused is left for other hosts."""
        methods = set((self.host_data or {}).get('methods') or ())
        for task in sorted(self._tasks.values(), key=lambda t: (t['priority'], t['id'])):
            if task['state'] != TASK['FREE'] or task['method'] not in methods:
                continue
            if task['id'] in self._refused:
                continue
            if self.host_channels is not None:
                chan = self._channels.get(task['channel_id'])
                if chan is None or chan['name'] not in self.host_channels:
                    continue
            task['state'] = TASK['ASSIGNED']
            task['host_id'] = self.host_id

    def _host_getTasks(self):
        """Tasks ASSIGNED to this host (kojid's getNextTask takes them in order)."""
        if self.schedule:
            self._schedule()
        return [self._api_getTaskInfo(t['id'])
                for t in sorted(self._tasks.values(), key=lambda t: (t['priority'], t['id']))
                if t['state'] == TASK['ASSIGNED'] and t['host_id'] == self.host_id]

    def _host_getHostTasks(self):
        """OPEN tasks of this host: id, waiting, weight; a waiting task with a finished
        awaited child gets ``alert`` (kojid then sends it SIGUSR2)."""
        result = []
        for task in sorted(self._tasks.values(), key=lambda t: t['id']):
            if task['state'] != TASK['OPEN'] or task['host_id'] != self.host_id:
                continue
            entry = {'id': task['id'], 'waiting': task['waiting'], 'weight': task['weight']}
            if task['waiting']:
                finished = [c for c in self._tasks.values()
                            if c['parent'] == task['id'] and c['awaited']
                            and c['state'] in (TASK['CLOSED'], TASK['FAILED'],
                                               TASK['CANCELED'])]
                if finished:
                    entry['alert'] = True
            result.append(entry)
        return result

    def _host_openTask(self, task_id):
        task = self._task_strict(task_id)
        if task['state'] == TASK['ASSIGNED'] and task['host_id'] != self.host_id:
            return None
        if task['state'] not in (TASK['FREE'], TASK['ASSIGNED']):
            return None
        task['state'] = TASK['OPEN']
        task['host_id'] = self.host_id
        task['start_time'] = time.time()
        return self._api_getTaskInfo(task['id'], request=True)

    def _host_setTaskWeight(self, task_id, weight):
        task = self._assert_host(task_id)
        task['weight'] = float(weight)

    def _host_refuseTask(self, task_id, soft=True, msg=''):
        """The host gives the task back (koji.tasks.RefuseTask): FREE for another host;
        the scheduler does not offer it to this host again."""
        task = self._task_strict(task_id)
        if task['host_id'] != self.host_id or \
                task['state'] not in (TASK['OPEN'], TASK['ASSIGNED']):
            raise koji.ActionNotAllowed('host %d does not own task %d'
                                        % (self.host_id, int(task_id)))
        task['state'] = TASK['FREE']
        task['host_id'] = None
        self._refused[task['id']] = {'soft': bool(soft), 'msg': msg}

    def _host_freeTasks(self, tasks):
        for task_id in tasks:
            task = self._task_strict(task_id)
            if task['host_id'] != self.host_id:
                raise koji.ActionNotAllowed('host %d does not own task %d'
                                            % (self.host_id, int(task_id)))
            if task['state'] in (TASK['CLOSED'], TASK['CANCELED'], TASK['FAILED']):
                raise koji.GenericError('Cannot free task %i, state is %s'
                                        % (task['id'], TASK[task['state']]))
            task['state'] = TASK['FREE']
            task['host_id'] = None

    def refusals(self):
        """{task_id: {'soft', 'msg'}} of the tasks this host refused."""
        with self._lock:
            return copy.deepcopy(self._refused)

    def _host_tagBuild(self, task_id, tag, build, force=False, fromtag=None):
        task = self._assert_host(task_id)
        tinfo = self._tag_lookup(tag)
        if tinfo is None:
            raise koji.GenericError('No such tagInfo: %r' % (tag,))
        binfo = self._build_lookup(build)
        if binfo is None:
            raise koji.GenericError('No such build: %s' % (build,))
        if binfo['state'] != BUILD['COMPLETE']:
            raise koji.TagError('build %s not complete: state %s'
                                % (binfo['nvr'], BUILD[binfo['state']]))
        if tinfo['locked'] and not force:
            raise koji.TagError('tag %s is locked' % tinfo['name'])
        pkg = self._api_getPackageConfig(tinfo['id'], binfo['name'])
        if pkg is None or pkg['blocked']:
            raise koji.TagError('package %s not in list for tag %s'
                                % (binfo['name'], tinfo['name']))
        if binfo['id'] in self._tagged.get(tinfo['id'], []):
            raise koji.TagError('build %s already tagged (%s)' % (binfo['nvr'], tinfo['name']))
        owner = self._users[task['owner']]
        if tinfo['perm'] and not (owner['_admin'] or tinfo['perm'] in owner['_perms']):
            raise koji.ActionNotAllowed('%s permission required' % tinfo['perm'])
        self._check_policy('tag', {'tag': tinfo['id'], 'build': binfo['id'],
                                   'fromtag': fromtag, 'user_id': owner['id'],
                                   'operation': 'tag'}, strict=True)
        self._tagged.setdefault(tinfo['id'], []).append(binfo['id'])
        self._bump_event()

    def _host_checkPolicy(self, name, data, default='deny', strict=False):
        return self._check_policy(name, data, default=default, strict=strict)

    def _host_assertPolicy(self, name, data, default='deny'):
        self._check_policy(name, data, default=default, strict=True)

    def _host_evalPolicy(self, name, data):
        return self._api_evalPolicy(name, data)


def make_task_handler_options(tmpdir, **overrides):
    """A kojid-like options object (optparse.Values, as kojid's) with kojid defaults."""
    defaults = {
        'workdir': os.path.join(str(tmpdir), 'workdir'),
        'topdir': os.path.join(str(tmpdir), 'topdir'),
        'topurl': 'http://hub.example.com/kojifiles',
        'server': 'http://hub.example.com/kojihub',
        'sleeptime': 15,
        'maxjobs': 10,
        'use_fast_upload': True,
        'allowed_scms': '',
        'allowed_scms_use_config': True,
        'allowed_scms_use_policy': False,
        'allow_password_in_scm_url': False,
        'scm_credentials_dir': None,
        'literal_task_arches': '',
        'offline_retry': True,
        'offline_retry_interval': 120,
        'retry_interval': 60,
        'max_retries': 120,
        'timeout': None,
        'log_timestamps': False,
        'plugin': [],
        'pluginpath': '/usr/lib/koji-builder-plugins',
        'mockdir': '/var/lib/mock',
        'mockuser': 'kojibuilder',
        'failed_buildroot_lifetime': 3600 * 4,
        'task_avail_delay': 300,
    }
    defaults.update(overrides)
    for key in ('workdir', 'topdir'):
        os.makedirs(defaults[key], exist_ok=True)
    return optparse.Values(defaults)
