"""A `kojihub` double for hub plugin tests (koji-plugin-facts.md section 1).

Installed as sys.modules['kojihub'] by `install()`; the plugin then calls the
module-level functions below, which act on the current `FakeHub`. The session
lives on the real koji.context.context (thread-local), as on a real hub.

Modelled behaviour:
- make_task(method, arglist, **opts): recognised opts parent, label, owner,
  channel, arch, priority, assign (others ignored); top-level defaults priority
  koji.PRIO_DEFAULT, arch 'noarch', owner = logged-in user (else "task must have an
  owner"); parent must be OPEN, child priority = parent - 1; a requested channel
  must exist and be enabled; channel policy (default: has req_channel :: req /
  is_child_task :: parent / all :: use default) and priority policy (stay / set N /
  adjust N); the arglist is stored XML-RPC encoded (koji.xmlrpcplus.dumps), as UTF-8
  text without NUL like the database needs; returns the int task id.
- One call = one transaction: FakeHub.call() rolls back every task made during a
  call that raises, like the hub's database transaction.
- Faults: FakeHub.fault_of() maps an exception the way the hub does (GenericError
  subclass -> its faultCode, anything else -> faultCode 1).
"""

import copy
import sys
import xmlrpc.client

import koji
import koji.tasks
import koji.xmlrpcplus
from koji.context import context


class StorageError(Exception):
    """What the database driver raises for text it cannot store (not a Koji fault)."""


class FakeSession(object):
    """koji.context.context.session: permissions as kojihub/auth.py checks them."""

    def __init__(self, user_id=None, name=None, perms=(), usertype=0):
        self.logged_in = user_id is not None
        self.user_id = user_id
        self.user_data = {'name': name, 'status': 0, 'usertype': usertype} \
            if self.logged_in else {}
        self.perms = list(perms) if self.logged_in else []
        self.groups = {}
        self.exclusive = False
        self.host_id = None

    def hasPerm(self, name):
        # exact permission only: admin does NOT count
        return name in self.perms

    def assertPerm(self, name):
        if not self.hasPerm(name) and not self.hasPerm('admin'):
            raise koji.ActionNotAllowed('%s permission required' % name)

    def assertLogin(self):
        if not self.logged_in:
            raise koji.ActionNotAllowed('you must be logged in for this operation')

    def getPerms(self):
        return list(self.perms)


def convert_value(value, cast=None, message=None, exc_type=koji.ParameterError,
                  none_allowed=False, check_only=False):
    if value is None:
        if not none_allowed:
            raise exc_type(message or 'Invalid type, expected type %s' % cast)
        return value
    if check_only:
        if not isinstance(value, cast):
            raise exc_type(message or "Invalid type for value '%s': %s, expected type %s"
                           % (value, type(value), cast))
        return value
    try:
        return cast(value)
    except (ValueError, TypeError):
        raise exc_type(message or "Invalid type for value '%s': %s, expected type %s"
                       % (value, type(value), cast))


def _check_name_or_id(info):
    if isinstance(info, bool) or not isinstance(info, (int, str)):
        raise koji.ParameterError('Invalid name or id value: %r' % (info,))


class FakeHub(object):
    """State of one fake hub: users, channels, tags, targets, tasks, policies."""

    def __init__(self):
        self.users = {}
        self.channels = {}
        self.tags = {}
        self.targets = {}
        self.tasks = {}
        self._next_task = 1
        # policies: callables policy_data -> result string or None (see module doc)
        self.channel_policy = self.default_channel_policy
        self.priority_policy = lambda data: 'stay'
        self.add_channel('default')

    # ------------------------------------------------------------ seeding
    def add_user(self, name, perms=()):
        uid = len(self.users) + 1
        self.users[uid] = {'id': uid, 'name': name, 'status': 0, 'usertype': 0,
                           'krb_principals': [], 'perms': list(perms)}
        return uid

    def login(self, name, perms=()):
        """Make `name` the caller of the next calls (context.session)."""
        uid = self.add_user(name, perms)
        context.session = FakeSession(uid, name, perms)
        return uid

    def logout(self):
        context.session = FakeSession()

    def add_channel(self, name, enabled=True):
        cid = len(self.channels) + 1
        self.channels[cid] = {'id': cid, 'name': name, 'description': None,
                              'enabled': enabled, 'comment': None}
        return cid

    def add_tag(self, name, locked=False, arches='x86_64 aarch64', perm=None):
        tid = len(self.tags) + 1
        self.tags[tid] = {'id': tid, 'name': name, 'perm_id': None, 'perm': perm,
                          'arches': arches, 'locked': locked, 'maven_support': False,
                          'maven_include_all': False, 'extra': {}}
        return tid

    def add_target(self, name, build_tag, dest_tag):
        bt = self.get_tag(build_tag, strict=True)
        dt = self.get_tag(dest_tag, strict=True)
        tid = len(self.targets) + 1
        self.targets[tid] = {'id': tid, 'name': name, 'build_tag': bt['id'],
                             'build_tag_name': bt['name'], 'dest_tag': dt['id'],
                             'dest_tag_name': dt['name']}
        return tid

    # ------------------------------------------------------------ lookups
    @staticmethod
    def _find(table, info):
        for row in table.values():
            if (isinstance(info, int) and row['id'] == info) or row['name'] == info:
                return row
        return None

    def get_build_target(self, info, event=None, strict=False):
        _check_name_or_id(info)
        row = self._find(self.targets, info)
        if row is None:
            if strict:
                raise koji.GenericError('No such build target: %s' % info)
            return None
        return dict(row)

    def get_tag(self, tagInfo, strict=False, event=None, blocked=False):
        _check_name_or_id(tagInfo)
        row = self._find(self.tags, tagInfo)
        if row is None:
            if strict:
                raise koji.GenericError('No such tagInfo: %r' % (tagInfo,))
            return None
        return copy.deepcopy(row)

    def get_channel(self, channelInfo, strict=False):
        _check_name_or_id(channelInfo)
        row = self._find(self.channels, channelInfo)
        if row is None:
            if strict:
                raise koji.GenericError('No such channel: %s' % channelInfo)
            return None
        return dict(row)

    def get_user(self, userInfo=None, strict=False):
        for row in self.users.values():
            if row['id'] == userInfo or row['name'] == userInfo:
                return dict(row)
        if strict:
            raise koji.GenericError('No such user: %r' % (userInfo,))
        return None

    # ------------------------------------------------------------ tasks
    @staticmethod
    def default_channel_policy(data):
        if 'req_channel' in data:
            return 'req'
        if data.get('parent'):
            return 'parent'
        return 'use default'

    def policy_data_from_task_args(self, method, arglist):
        """Fields the hub derives from the task args via LEGACY_SIGNATURES."""
        try:
            params = koji.tasks.parse_task_params(method, arglist)
        except (TypeError, koji.ParameterError):
            return {}  # no (matching) signature: policies see nothing
        data = {}
        for name in ('src', 'spec_url', 'url'):
            if name in params:
                data['source'] = params[name]
        for name in ('target', 'build_target', 'target_info'):
            if name in params:
                target = params[name]
                if isinstance(target, dict):
                    target = target.get('name')
                info = self.get_build_target(target, strict=False) if target is not None \
                    else None
                if info:
                    data['target'] = info['name']
                    data['build_tag'] = info['build_tag']
        opts = params.get('opts')
        if isinstance(opts, dict) and 'scratch' in opts:
            data['scratch'] = opts['scratch']
        return data

    def make_task(self, method, arglist, **opts):
        convert_value(method, cast=str, check_only=True)
        if 'parent' in opts:
            opts['parent'] = convert_value(opts['parent'], cast=int)
        if 'label' in opts:
            convert_value(opts['label'], cast=str, check_only=True)
        if 'owner' in opts and not isinstance(opts['owner'], int):
            opts['owner'] = self.get_user(opts['owner'], strict=True)['id']
        if 'arch' in opts:
            opts['arch'] = koji.parse_arches(opts['arch'], strict=True, allow_none=True)
        if 'priority' in opts:
            opts['priority'] = convert_value(opts['priority'], cast=int)
        parent = None
        if 'parent' in opts:
            parent = self.tasks.get(opts['parent'])
            if not parent:
                raise koji.GenericError('Invalid parent task: %(parent)s' % opts)
            if parent['state'] != koji.TASK_STATES['OPEN']:
                raise koji.GenericError('Parent task (id %(parent)s) is not open' % opts)
            opts.setdefault('priority', parent['priority'] - 1)
            for field in ('owner', 'arch'):
                opts.setdefault(field, parent[field])
            opts.setdefault('label', None)
        else:
            opts.setdefault('priority', koji.PRIO_DEFAULT)
            opts.setdefault('arch', 'noarch')
            session = getattr(context, 'session', None)
            if session is None or not session.logged_in:
                raise koji.GenericError('task must have an owner')
            opts['owner'] = session.user_id
            opts['label'] = None
            opts['parent'] = None
        policy_data = {'method': method}
        for key in ('arch', 'parent', 'label', 'owner'):
            policy_data[key] = opts[key]
        policy_data['user_id'] = opts['owner']
        req_channel_id = None
        if 'channel' in opts:
            policy_data['req_channel'] = opts['channel']
            info = self.get_channel(opts['channel'])
            if not info:
                raise koji.GenericError('No such channel: %s' % opts['channel'])
            if not info['enabled']:
                raise koji.GenericError('Channel %s is disabled.' % opts['channel'])
            req_channel_id = info['id']
        policy_data.update(self.policy_data_from_task_args(method, arglist))
        opts['channel_id'] = self._apply_channel_policy(policy_data, opts, parent,
                                                        req_channel_id)
        self._apply_priority_policy(policy_data, opts)
        request = koji.xmlrpcplus.dumps(tuple(arglist), methodname=method)
        # the task table stores the request as text: UTF-8, no NUL
        request.encode('utf-8')
        if '\x00' in request:
            raise StorageError('A string literal cannot contain NUL (0x00) characters.')
        task_id = self._next_task
        self._next_task += 1
        self.tasks[task_id] = {
            'id': task_id, 'method': method, 'request': request,
            'arglist': copy.deepcopy(arglist), 'state': koji.TASK_STATES['FREE'],
            'owner': opts['owner'], 'priority': opts['priority'], 'parent': opts['parent'],
            'label': opts['label'], 'channel_id': opts['channel_id'],
            'channel': self.channels[opts['channel_id']]['name'], 'arch': opts['arch'],
            'host_id': opts.get('assign'), 'policy_data': policy_data,
        }
        if opts.get('assign'):
            self.tasks[task_id]['state'] = koji.TASK_STATES['ASSIGNED']
        return task_id

    def _apply_channel_policy(self, policy_data, opts, parent, req_channel_id):
        result = self.channel_policy(policy_data)
        if result is None:
            return self.get_channel('default', strict=True)['id']
        parts = result.split()
        if not parts:
            raise koji.GenericError('invalid channel policy')
        if parts[0] == 'use' and len(parts) > 1:
            info = self.get_channel(parts[1], strict=True)
            if not info['enabled']:
                raise koji.GenericError('Channel %s is disabled.' % parts[1])
            return info['id']
        if parts[0] == 'parent' and parent:
            return parent['channel_id']
        if parts[0] == 'req' and req_channel_id is not None:
            return req_channel_id
        raise koji.GenericError('invalid channel policy')

    def _apply_priority_policy(self, policy_data, opts):
        result = self.priority_policy(policy_data)
        if result is None:
            return
        parts = result.split()
        try:
            if parts[0] == 'stay':
                return
            if parts[0] == 'set':
                opts['priority'] = int(parts[1])
                return
            if parts[0] == 'adjust':
                opts['priority'] += int(parts[1])
                return
        except (IndexError, ValueError):
            pass
        raise koji.GenericError('invalid priority policy')

    def decoded_request(self, task_id):
        """The stored request as kojid reads it back: (params, method)."""
        return koji.xmlrpcplus.loads(self.tasks[task_id]['request'].encode('utf-8'))

    # ------------------------------------------------------------ requests
    def call(self, func, *args, **kwargs):
        """Run one API call as a transaction: on any exception its tasks are rolled back."""
        before = set(self.tasks)
        next_task = self._next_task
        try:
            return func(*args, **kwargs)
        except BaseException:
            for task_id in set(self.tasks) - before:
                del self.tasks[task_id]
            self._next_task = next_task
            raise

    @staticmethod
    def fault_of(exc):
        """The XML-RPC fault the hub would send for `exc`."""
        if isinstance(exc, koji.GenericError):
            return xmlrpc.client.Fault(exc.faultCode, str(exc))
        return xmlrpc.client.Fault(1, '%s: %s' % (exc.__class__, exc))


_hub = None


def _current():
    if _hub is None:
        raise RuntimeError('kojihub double not installed (call tests.doubles.kojihub.install)')
    return _hub


def install():
    """Make a fresh FakeHub current, install this module as `kojihub`, log out."""
    global _hub
    _hub = FakeHub()
    sys.modules['kojihub'] = sys.modules[__name__]
    context._threadclear()
    context.session = FakeSession()
    return _hub


def uninstall():
    global _hub
    _hub = None
    if sys.modules.get('kojihub') is sys.modules[__name__]:
        del sys.modules['kojihub']
    context._threadclear()


# The kojihub functions plugins call.
def make_task(method, arglist, **opts):
    return _current().make_task(method, arglist, **opts)


def get_build_target(info, event=None, strict=False):
    return _current().get_build_target(info, event=event, strict=strict)


def get_tag(tagInfo, strict=False, event=None, blocked=False):
    return _current().get_tag(tagInfo, strict=strict, event=event, blocked=blocked)


def get_channel(channelInfo, strict=False):
    return _current().get_channel(channelInfo, strict=strict)


def get_user(userInfo=None, strict=False):
    return _current().get_user(userInfo, strict=strict)
