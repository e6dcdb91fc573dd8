"""The hub's decisions for container build requests, free of Koji process state.

The hub plugin (hub/hub_containerbuild.py) passes in the caller's permission check,
the target/tag lookups and the plugin config; this module decides whether the
request is acceptable and what task to create. Every refusal is an OptionError
(ParameterError, 1019), PermissionDenied (ActionNotAllowed, 1004) or ConfigError
(ConfigurationError, 1021) whose message names the problem.
"""

import configparser
import os
import re
import threading

import koji

from koji_containerbuild import options, scmurl, wirevalue
from koji_containerbuild.wirevalue import short_repr
from koji_containerbuild.errors import ConfigError, OptionError, PermissionDenied

CONFIG_FILE = '/etc/koji-hub/plugins/hub_containerbuild.conf'
CONFIG_SECTION = 'hub_containerbuild'

BINARY_METHOD = 'buildContainer'
SOURCE_METHOD = 'buildSourceContainer'
DEFAULT_BINARY_CHANNEL = 'container-binary'
DEFAULT_SOURCE_CHANNEL = 'container-source'

# Argument names the channel/priority policies read (src -> source, target, opts.scratch).
TASK_SIGNATURES = {
    BINARY_METHOD: [['src', 'target', 'opts'], None, None, (None,)],
    SOURCE_METHOD: [['target', 'opts'], None, None, (None,)],
    # the per-arch subtasks the native builder creates (host.subtask): the hub's
    # policies and `koji taskinfo` then see their arguments
    'createContainer': [['src', 'target', 'arch', 'params'], None, None, None],
}

# Like Koji's own build calls, `priority` is an offset from koji.PRIO_DEFAULT; the
# bound keeps the stored value a small integer.
MAX_PRIORITY_OFFSET = 1000
# Koji's default RegexNameInternal for channel names.
CHANNEL_RE = re.compile(r'^[A-Za-z0-9/_.+-]{1,128}\Z')
MAX_TARGET = 256
PERMISSION_RE = re.compile(r'^[A-Za-z0-9/_.+-]{1,128}\Z')
INT64_MIN, INT64_MAX = wirevalue.INT64_MIN, wirevalue.INT64_MAX
# Nesting deeper than this is refused before anything recursive (json, XML-RPC) sees it.
MAX_DEPTH = options.MAX_DEPTH
_BAD_XML_CHARS = re.compile(wirevalue.XML_BAD_CHARS_PATTERN)


def register_signatures(signatures):
    """Add the task signatures to `signatures` (koji.tasks.LEGACY_SIGNATURES).

    Existing entries are kept; ours is appended once, so re-importing the plugin
    (or another plugin that registered first) loses nothing.
    """
    for method, sig in TASK_SIGNATURES.items():
        entries = signatures.setdefault(method, [])
        if sig not in entries:
            entries.append(list(sig))


# ---------------------------------------------------------------- config

class HubConfig(object):
    """Settings from the [hub_containerbuild] section; None means "not required"."""

    KEYS = ('build_permission', 'channel_override_permission')

    def __init__(self, build_permission=None, channel_override_permission=None):
        self.build_permission = build_permission
        self.channel_override_permission = channel_override_permission

    def __eq__(self, other):
        return isinstance(other, HubConfig) and vars(self) == vars(other)

    def __repr__(self):
        return 'HubConfig(%s)' % ', '.join('%s=%r' % kv for kv in sorted(vars(self).items()))


def load_config(path=CONFIG_FILE):
    """Read the plugin config; a missing file gives the defaults.

    Raises ConfigError for anything else that is wrong: unreadable file, bad syntax,
    unknown section or key, or a value that is not a permission name.
    """
    if not os.path.exists(path):
        return HubConfig()
    try:
        parser = koji.read_config_files([(path, True)], raw=True)
    except koji.ConfigurationError as exc:
        raise ConfigError('hub_containerbuild config %s: %s' % (path, exc))
    except (configparser.Error, OSError, UnicodeError) as exc:
        raise ConfigError('hub_containerbuild config %s is not valid: %s'
                          % (path, _one_line(exc)))
    unknown = [s for s in parser.sections() if s != CONFIG_SECTION]
    if unknown:
        raise ConfigError('hub_containerbuild config %s: unknown section [%s] (expected [%s])'
                          % (path, unknown[0], CONFIG_SECTION))
    values = {}
    if parser.has_section(CONFIG_SECTION):
        for key, value in parser.items(CONFIG_SECTION):
            if key not in HubConfig.KEYS:
                raise ConfigError('hub_containerbuild config %s: unknown key %r in [%s] '
                                  '(known: %s)' % (path, key, CONFIG_SECTION,
                                                   ', '.join(HubConfig.KEYS)))
            value = value.strip()
            if not value:
                continue  # an empty value means "no permission required"
            if not PERMISSION_RE.match(value):
                raise ConfigError('hub_containerbuild config %s: %s = %r is not a permission '
                                  'name' % (path, key, value))
            values[key] = value
    return HubConfig(**values)


def _one_line(exc):
    return ' '.join(str(exc).split())


class LazyConfig(object):
    """Loads the config on first use and keeps it for the life of the hub process.

    A failed load is not kept: the call fails with ConfigError and the next call
    tries again, so fixing the file does not need a hub restart, and a broken file
    never breaks the plugin import (which would take the whole hub offline).
    """

    def __init__(self, path=CONFIG_FILE, loader=load_config):
        self.path = path
        self._loader = loader
        self._config = None
        self._lock = threading.Lock()

    def get(self):
        with self._lock:
            if self._config is None:
                self._config = self._loader(self.path)
            return self._config


# ---------------------------------------------------------------- the caller

class Caller(object):
    """What the decisions need to know about the caller.

    has_perm: exact permission check (Koji's session.hasPerm: admin does not count).
    """

    def __init__(self, has_perm):
        self._has_perm = has_perm

    @property
    def is_admin(self):
        return bool(self._has_perm('admin'))

    def may(self, perm):
        """Koji's assertPerm rule: the permission itself or admin."""
        return self.is_admin or bool(self._has_perm(perm))


def check_build_permission(config, caller):
    if config.build_permission and not caller.may(config.build_permission):
        raise PermissionDenied('Container builds need the %r permission'
                               % config.build_permission)


# ---------------------------------------------------------------- single values

def check_priority(priority, caller):
    """Return the task priority for make_task, or None to keep Koji's default.

    `priority` is an offset from koji.PRIO_DEFAULT (lower runs first), as in Koji's
    own build call; a negative offset (a boost) is for admins only.
    """
    if priority is None:
        return None
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise OptionError('Invalid priority: must be an integer, got %s' % short_repr(priority))
    if abs(priority) > MAX_PRIORITY_OFFSET:
        raise OptionError('Invalid priority %d: must be between -%d and %d'
                          % (priority, MAX_PRIORITY_OFFSET, MAX_PRIORITY_OFFSET))
    if priority < 0 and not caller.is_admin:
        raise PermissionDenied('Only admins may create high-priority (negative priority) '
                               'container tasks')
    return koji.PRIO_DEFAULT + priority


def check_channel(channel, default, config, caller):
    """Return the channel name to request; another than `default` needs a permission."""
    if channel is None or channel == default:
        return default
    if not isinstance(channel, str) or not CHANNEL_RE.match(channel):
        raise OptionError('Invalid channel: must be a channel name, got %s' % short_repr(channel))
    perm = config.channel_override_permission
    if caller.is_admin or (perm and caller.may(perm)):
        return channel
    if perm:
        need = 'the %r permission or admin' % perm
    else:
        need = 'admin'
    raise PermissionDenied('Using channel %r instead of %r needs %s' % (channel, default, need))


def check_target_name(target):
    """Type/shape check before any lookup: a target name or a positive id."""
    if isinstance(target, bool) or not isinstance(target, (str, int)):
        raise OptionError('Invalid target: must be a build target name, got %s'
                          % short_repr(target))
    if isinstance(target, int):
        if not 0 < target <= 2 ** 31 - 1:
            raise OptionError('Invalid target id %d' % target)
    elif not target or len(target) > MAX_TARGET or target != target.strip() \
            or _BAD_XML_CHARS.search(target):
        raise OptionError('Invalid target: must be a build target name, got %s'
                          % short_repr(target))
    return target


def check_target(target, scratch, lookup_target, lookup_tag):
    """Look the target up; for non-scratch builds its destination tag must be unlocked."""
    info = lookup_target(target)
    if not info:
        raise OptionError('Unknown build target: %s' % short_repr(target))
    if not scratch:
        tag = lookup_tag(info['dest_tag'])
        if not tag:
            raise OptionError('Build target %r has no destination tag (%r not found)'
                              % (info['name'], info.get('dest_tag_name')))
        if tag.get('locked'):
            raise PermissionDenied('Destination tag %r of target %r is locked: only scratch '
                                   'builds are allowed' % (tag['name'], info['name']))
    return info


def check_depth(value, where):
    """Refuse values nested deeper than MAX_DEPTH lists/dicts (checked without recursion)."""
    wirevalue.check_depth(value, where, MAX_DEPTH)


def check_wire_safe(value, where):
    """Refuse values the task request cannot store: XML-RPC limits, XML and UTF-8."""
    wirevalue.check_json_value(value, where, MAX_DEPTH)


# ---------------------------------------------------------------- requests

class TaskRequest(object):
    """An accepted request: make_task(method, arglist, **task_opts)."""

    def __init__(self, method, arglist, task_opts, warnings):
        self.method = method
        self.arglist = arglist
        self.task_opts = task_opts
        self.warnings = warnings


class Lookups(object):
    """The hub lookups the decisions need (kojihub.get_build_target / get_tag)."""

    def __init__(self, get_build_target, get_tag):
        self.get_build_target = get_build_target
        self.get_tag = get_tag


def _common(kind, opts, target, priority, channel, default_channel, config, caller, lookups):
    clean, warnings = options.validate(kind, opts)
    for name, value in clean.items():
        check_wire_safe(value, 'option %r' % name)
    check_target_name(target)
    task_opts = {'channel': check_channel(channel, default_channel, config, caller)}
    prio = check_priority(priority, caller)
    if prio is not None:
        task_opts['priority'] = prio
    check_target(target, bool(clean.get('scratch')), lookups.get_build_target, lookups.get_tag)
    return clean, warnings, task_opts


def _check_args_depth(opts, **args):
    # first: every later step may repr() or recurse into the values
    for name, value in sorted(args.items()):
        check_depth(value, name)
    if isinstance(opts, dict):
        for key, value in opts.items():
            check_depth(key, 'option name')
            check_depth(value, 'option %s' % short_repr(key))
    else:
        check_depth(opts, 'opts')


def container_request(src, target, opts, priority, channel, config, caller, lookups):
    """Decide a buildContainer call; return the TaskRequest or raise a Koji fault."""
    check_build_permission(config, caller)
    _check_args_depth(opts, source=src, target=target, priority=priority, channel=channel)
    kind = options.kind_of(opts)
    scmurl.check_source_url(src)
    check_wire_safe(src, 'source')
    clean, warnings, task_opts = _common(kind, opts, target, priority, channel,
                                         DEFAULT_BINARY_CHANNEL, config, caller, lookups)
    return TaskRequest(BINARY_METHOD, [src, target, clean], task_opts, warnings)


def source_container_request(target, opts, priority, channel, config, caller, lookups):
    """Decide a buildSourceContainer call; return the TaskRequest or raise a Koji fault."""
    check_build_permission(config, caller)
    _check_args_depth(opts, target=target, priority=priority, channel=channel)
    clean, warnings, task_opts = _common(options.SOURCE, opts, target, priority, channel,
                                         DEFAULT_SOURCE_CHANNEL, config, caller, lookups)
    return TaskRequest(SOURCE_METHOD, [target, clean], task_opts, warnings)
