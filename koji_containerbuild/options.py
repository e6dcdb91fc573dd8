"""The one definition of every container build option.

`OPTIONS` is a declarative table; `RULES` are the constraints between options.
Everything else is derived from these two:

* `validate(kind, opts)`  - hub and builder validation (fail fast, clear faults)
* `json_schema(kind)`     - the JSON schema the builder checks task params with
                            (options_schema.py)
* `cli_options(kind)` / `opts_from_cli(kind, values)` - the CLI parser (options_cli.py)

The schema and CLI derivations live in their own modules (they import this one); their
names stay importable from here.

A value of None always means "unset" (rpkg/fedpkg send every key, most as None).
Kinds: 'binary' and 'flatpak' (buildContainer), 'source' (buildSourceContainer).
"""

import re

from koji_containerbuild import scmurl, wirevalue
from koji_containerbuild.errors import OptionError
from koji_containerbuild.wirevalue import short_repr  # (also used as options.short_repr)

BINARY = 'binary'
FLATPAK = 'flatpak'
SOURCE = 'source'
KINDS = (BINARY, FLATPAK, SOURCE)
IMAGE_KINDS = frozenset((BINARY, FLATPAK))
ALL_KINDS = frozenset(KINDS)

# Value patterns shared by validation and the JSON schema (one place each).
# Python's '$' also matches before a final newline: '(?!\n)' after it refuses that
# (and is valid in the JSON schema's ECMA 262 regexes too).
ARCH_RE = r'[A-Za-z0-9_]+'
ARCH_LIST_PATTERN = r'^\s*(%s(\s+%s)*)?\s*$(?!\n)' % (ARCH_RE, ARCH_RE)
# osbs-client's release rule: a digit first, alphanumeric groups joined by '.' or '_'.
RELEASE_PATTERN = r'^[0-9][0-9A-Za-z]*([._][0-9A-Za-z]+)*$(?!\n)'
DEP_REPLACEMENT_PATTERN = r'^[^:\s]+:[^:\s]+:[^:\s]+(:[^:\s]+)?$(?!\n)'
# No userinfo ('user@' or 'user:token@') in the authority: opts are stored in the task
# request, which anyone can read on Koji web or through getTaskInfo(request=True).
URL_PATTERN = scmurl.HTTP_URL_PATTERN
URL_DOC = 'an http(s) URL with a valid host and port, no credentials (no user@)'
# Any scheme-like prefix followed by an authority that holds '@': credentials.
URL_USERINFO_PATTERN = r'^[A-Za-z][A-Za-z0-9+.-]*:/*[^/?#]*@'
# Koji NVR: name-version-release, no whitespace.
NVR_PATTERN = r'^\S+-[^\s-]+-[^\s-]+$(?!\n)'
TEXT_PATTERN = r'^\S(.*\S)?$(?!\n)'
MAX_TEXT = 1024
# Request size limits (docs/security-inputs.md): a request is stored, queued and shown
# by the hub, so every part of it is bounded.
MAX_ITEMS = 64                     # items of a list option
MAX_OPTS_KEYS = 64                 # keys in opts (known options are far fewer)
MAX_USERDATA = 64 * 1024           # characters of userdata as compact JSON
MAX_DEPTH = 16                     # nesting of lists/objects in userdata
MAX_ID = 2 ** 31 - 1               # Koji and ODCS ids are 32-bit database integers
MAX_UNKNOWN_SHOWN = 5              # unknown option names quoted in a fault
# Control characters, surrogates and U+FFFE/U+FFFF: never valid in an option, and XML-RPC
# (the task request) cannot carry most of them.
BAD_CHARS_PATTERN = '[\\u0000-\\u001f\\u007f\\ud800-\\udfff\\ufffe\\uffff]'
# Largest finite float: JSON has no NaN or Infinity, so userdata numbers stay within it.
MAX_FLOAT = 1.7976931348623157e308
# Still importable from here (the JSON schema, options_schema.py, uses it).
XML_BAD_CHARS_PATTERN = wirevalue.XML_BAD_CHARS_PATTERN


class Option(object):
    """One build option.

    vtype: 'bool', 'int', 'text', 'list_text', 'list_int', 'object'.
    pattern: regex a text value (or each list item) must match.
    cli: (flag, extra optparse kwargs) or None when the CLI sets it itself.
    """

    def __init__(self, name, vtype, kinds, help, pattern=None, pattern_doc=None,
                 cli=None, metavar=None, required=frozenset(), deprecated=False,
                 minimum=None, maximum=None, max_items=MAX_ITEMS):
        self.name = name
        self.vtype = vtype
        self.kinds = frozenset(kinds)
        self.help = help
        self.pattern = pattern
        self.pattern_doc = pattern_doc
        self.cli = cli
        self.metavar = metavar
        self.required = frozenset(required)
        self.deprecated = deprecated
        self.minimum = minimum
        self.maximum = maximum
        self.max_items = max_items


OPTIONS = (
    Option('scratch', 'bool', ALL_KINDS, cli='--scratch',
           help='Build a scratch image: not imported into Koji, pushed under a unique tag only'),
    Option('isolated', 'bool', IMAGE_KINDS, cli='--isolated',
           help='Build an isolated image (a fix on top of a released one); needs --release'),
    Option('arch_override', 'text', IMAGE_KINDS, cli='--arch-override',
           pattern=ARCH_LIST_PATTERN, pattern_doc='space-separated architectures',
           metavar='ARCHES',
           help='Build only these arches (space- or comma-separated); scratch or isolated only'),
    Option('git_branch', 'text', IMAGE_KINDS, cli='--git-branch', required=IMAGE_KINDS,
           pattern=scmurl.BRANCH_PATTERN,
           pattern_doc='a git branch name (git check-ref-format rules, no leading "-", '
                       'not refs/... or a commit id)', metavar='BRANCH',
           help='Git branch the commit is on (required)'),
    Option('release', 'text', IMAGE_KINDS, cli='--release', pattern=RELEASE_PATTERN,
           pattern_doc='a release such as 1, 3.el9 or 1.2_3 (starts with a digit, no "-")',
           metavar='RELEASE', help='Release of the image, overriding the Dockerfile label'),
    Option('koji_parent_build', 'text', IMAGE_KINDS, cli='--koji-parent-build',
           pattern=NVR_PATTERN, pattern_doc='a Koji build NVR (name-version-release)',
           metavar='NVR', help='Koji build (NVR) to use as the parent image instead of FROM'),
    Option('yum_repourls', 'list_text', IMAGE_KINDS, cli='--repo-url', pattern=URL_PATTERN,
           pattern_doc=URL_DOC, metavar='URL',
           help='URL of a .repo file to add to the build (repeatable)'),
    Option('compose_ids', 'list_int', IMAGE_KINDS, cli='--compose-id', metavar='ID', minimum=1,
           maximum=MAX_ID,
           help='ODCS compose id to use for yum repositories (repeatable)'),
    Option('signing_intent', 'text', (BINARY, FLATPAK, SOURCE), cli='--signing-intent',
           pattern=TEXT_PATTERN, pattern_doc='a signing intent name', metavar='INTENT',
           help='Signing intent for the build (its composes or sources); '
                'image builds: not with compose ids'),
    Option('dependency_replacements', 'list_text', IMAGE_KINDS, cli='--replace-dependency',
           pattern=DEP_REPLACEMENT_PATTERN, pattern_doc='pkg_manager:name:version[:new_name]',
           metavar='PKG_MANAGER:NAME:VERSION[:NEW_NAME]',
           help='Replace a remote-source dependency (repeatable)'),
    Option('userdata', 'object', ALL_KINDS, cli='--userdata', metavar='JSON',
           help='JSON object of custom user metadata stored with the build'),
    Option('operator_csv_modifications_url', 'text', IMAGE_KINDS,
           cli='--operator-csv-modifications-url', pattern=URL_PATTERN,
           pattern_doc=URL_DOC, metavar='URL',
           help='URL of operator CSV modifications JSON; isolated builds only'),
    Option('flatpak', 'bool', IMAGE_KINDS,
           help='Build a Flatpak (set by flatpak-build)'),
    Option('skip_build', 'bool', IMAGE_KINDS, deprecated=True,
           help='Deprecated and ignored; true is refused'),
    Option('koji_build_id', 'int', (SOURCE,), cli='--koji-build-id', metavar='ID', minimum=1,
           maximum=MAX_ID,
           help='Koji build id of the image to build a source container for'),
    Option('koji_build_nvr', 'text', (SOURCE,), cli='--koji-build-nvr', pattern=NVR_PATTERN,
           pattern_doc='a Koji build NVR (name-version-release)', metavar='NVR',
           help='Koji build NVR of the image to build a source container for'),
)

BY_NAME = dict((o.name, o) for o in OPTIONS)


class Rule(object):
    """A constraint between options.

    kind 'exclusive': not all of `names` may be set together.
    kind 'requires': `names[0]` set needs one of `others` set.
    kind 'one_of': at least one of `names` must be set.
    """

    def __init__(self, kind, names, others=(), kinds=ALL_KINDS, message=''):
        self.kind = kind
        self.names = tuple(names)
        self.others = tuple(others)
        self.kinds = frozenset(kinds)
        self.message = message

    def violated(self, opts):
        present = [n for n in self.names if is_set(opts.get(n))]
        if self.kind == 'exclusive':
            return len(present) == len(self.names)
        if self.kind == 'requires':
            return bool(present) and not any(is_set(opts.get(n)) for n in self.others)
        if self.kind == 'one_of':
            return not present
        raise ValueError(self.kind)


RULES = (
    Rule('exclusive', ('scratch', 'isolated'), kinds=IMAGE_KINDS,
         message="options 'scratch' and 'isolated' cannot be used together"),
    Rule('requires', ('arch_override',), ('scratch', 'isolated'), kinds=IMAGE_KINDS,
         message="option 'arch_override' is only allowed for scratch or isolated builds"),
    Rule('exclusive', ('signing_intent', 'compose_ids'), kinds=IMAGE_KINDS,
         message="options 'signing_intent' and 'compose_ids' cannot be used together"),
    Rule('requires', ('isolated',), ('release',), kinds=IMAGE_KINDS,
         message="option 'isolated' needs 'release' (the release of the image being fixed)"),
    Rule('requires', ('operator_csv_modifications_url',), ('isolated',), kinds=IMAGE_KINDS,
         message="option 'operator_csv_modifications_url' is only allowed for isolated builds"),
    Rule('one_of', ('koji_build_id', 'koji_build_nvr'), kinds=(SOURCE,),
         message="one of the options 'koji_build_id' or 'koji_build_nvr' is required"),
)


def is_set(value):
    """None, False and empty values mean "unset" (rpkg sends them for every unused key)."""
    return value is not None and value is not False and value != '' and value != [] \
        and value != {}


def options_for(kind):
    _check_kind(kind)
    return [o for o in OPTIONS if kind in o.kinds]


def rules_for(kind):
    _check_kind(kind)
    return [r for r in RULES if kind in r.kinds]


def _check_kind(kind):
    if kind not in KINDS:
        raise ValueError('unknown build kind %r' % (kind,))


def _is_int(value):
    # JSON schema's "integer" includes integral floats (12.0): accept them as ints.
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def _as_set_value(opt, value):
    """The value builds get: integral floats become ints."""
    if opt.vtype == 'int':
        return int(value)
    if opt.vtype == 'list_int':
        return [int(item) for item in value]
    return value


def _is_url(opt):
    return opt.pattern == URL_PATTERN


# Runs of characters that may be a URL's userinfo, each tried once (the lookbehind
# anchors a match at the start of a run: linear, not quadratic, on long runs).
_USERINFO_RUN = re.compile(r'(?<![^\s/?#@])[^\s/?#@]*@')


def mask_userinfo(text):
    """`text` with every `...@` run masked, so a message never quotes a token back."""
    return _USERINFO_RUN.sub('***@', text)


def _check_text(opt, value, what):
    if not isinstance(value, str):
        raise OptionError('Invalid option %r: %s must be a string, got %s'
                          % (opt.name, what, short_repr(value)))
    if len(value) > MAX_TEXT:
        raise OptionError('Invalid option %r: %s is longer than %d characters'
                          % (opt.name, what, MAX_TEXT))
    if re.search(BAD_CHARS_PATTERN, value):
        raise OptionError('Invalid option %r: %s contains control or non-character code '
                          'points' % (opt.name, what))
    if _is_url(opt) and re.match(URL_USERINFO_PATTERN, value):
        raise OptionError('Invalid option %r: %s must not contain credentials '
                          '("user@" or "user:password@" before the host; task options are '
                          'public), got %s' % (opt.name, what, short_repr(mask_userinfo(value))))
    if opt.pattern and not re.match(opt.pattern, value):
        shown = mask_userinfo(value) if _is_url(opt) else value
        raise OptionError('Invalid option %r: %s must be %s, got %s'
                          % (opt.name, what, opt.pattern_doc, short_repr(shown)))


def _int_ok(opt, value):
    return _is_int(value) and (opt.minimum is None or value >= opt.minimum) \
        and (opt.maximum is None or value <= opt.maximum)


def _int_doc(opt):
    if opt.maximum is not None:
        return 'an integer from %d to %d' % (opt.minimum or 0, opt.maximum)
    return 'a positive integer'


def _check_value(opt, value):
    """Raise OptionError unless `value` (not None) fits `opt`."""
    vtype = opt.vtype
    if vtype == 'bool':
        if not isinstance(value, bool):
            raise OptionError('Invalid option %r: must be true or false, got %s'
                              % (opt.name, short_repr(value)))
    elif vtype == 'int':
        if not _int_ok(opt, value):
            raise OptionError('Invalid option %r: must be %s, got %s'
                              % (opt.name, _int_doc(opt), short_repr(value)))
    elif vtype == 'text':
        _check_text(opt, value, 'the value')
    elif vtype in ('list_text', 'list_int'):
        if not isinstance(value, list):
            raise OptionError('Invalid option %r: must be a list, got %s'
                              % (opt.name, short_repr(value)))
        if len(value) > opt.max_items:
            raise OptionError('Invalid option %r: at most %d items are allowed, got %d'
                              % (opt.name, opt.max_items, len(value)))
        for item in value:
            if vtype == 'list_int':
                if not _int_ok(opt, item):
                    raise OptionError('Invalid option %r: every item must be %s, got %s'
                                      % (opt.name, _int_doc(opt), short_repr(item)))
            else:
                _check_text(opt, item, 'every item')
    elif vtype == 'object':
        if not isinstance(value, dict):
            raise OptionError('Invalid option %r: must be a JSON object, got %s'
                              % (opt.name, short_repr(value)))
        wirevalue.check_json_value(value, 'option %r' % opt.name, MAX_DEPTH, MAX_USERDATA)
    else:  # pragma: no cover - a table error, not user input
        raise ValueError('bad option type %r' % vtype)


def validate(kind, opts):
    """Check `opts` for a build of `kind`; return (clean_opts, warnings).

    clean_opts keeps every set option and drops unset ones (None, False, empty) so
    builders of any version see the same meaning. Raises OptionError naming the
    option and the problem. Linear in the size of `opts`, and bounded: every limit is
    checked before the values it bounds are looked at.
    """
    _check_kind(kind)
    if opts is None:
        opts = {}
    if not isinstance(opts, dict):
        raise OptionError('Invalid opts: must be a dict of build options, got %s'
                          % short_repr(opts))
    allowed = dict((o.name, o) for o in options_for(kind))
    if len(opts) > MAX_OPTS_KEYS:
        raise OptionError('Invalid opts: %d keys; a %s build has %d options'
                          % (len(opts), kind, len(allowed)))
    unknown = sorted(short_repr(k if isinstance(k, str) else short_repr(k))
                     for k in opts if k not in allowed)
    if unknown:
        shown = ', '.join(unknown[:MAX_UNKNOWN_SHOWN])
        if len(unknown) > MAX_UNKNOWN_SHOWN:
            shown += ' (and %d more)' % (len(unknown) - MAX_UNKNOWN_SHOWN)
        raise OptionError('Unknown option%s for a %s build: %s' % (
            's' if len(unknown) > 1 else '', kind, shown))
    warnings = []
    clean = {}
    for name, opt in allowed.items():
        value = opts.get(name)
        if value is None:
            continue
        _check_value(opt, value)
        if opt.deprecated:
            if value:
                raise OptionError('Option %r is no longer supported: %s' % (name, opt.help))
            warnings.append('Option %r is deprecated and ignored' % name)
            continue
        if is_set(value):
            clean[name] = _as_set_value(opt, value)
    for opt in allowed.values():
        if kind in opt.required and not is_set(opts.get(opt.name)):
            raise OptionError('Missing option %r: it is required for a %s build'
                              % (opt.name, kind))
    for rule in rules_for(kind):
        if rule.violated(opts):
            raise OptionError('Invalid options: ' + rule.message)
    if kind == FLATPAK:
        clean['flatpak'] = True
    return clean, warnings


def schema_subject(opts):
    """What the builder checks with json_schema() after validate() passed: `opts` with
    userdata emptied. validate() checked userdata with the schema's own rule (and its
    size); jsonschema walks JSON values ~1000 times slower (seconds at the size limit)."""
    if isinstance(opts, dict) and isinstance(opts.get('userdata'), dict) and opts['userdata']:
        return dict(opts, userdata={'checked': True})
    return opts


def kind_of(opts):
    """The kind of a buildContainer request: flatpak if opts say so, else binary."""
    if isinstance(opts, dict) and opts.get('flatpak') is True:
        return FLATPAK
    return BINARY


def arch_list(arch_override):
    """Split an arch_override value (spaces or commas) into a list."""
    if not arch_override:
        return []
    return [a for a in re.split(r'[\s,]+', arch_override) if a]


# ---------------------------------------------------------------- derived elsewhere

# name -> module: the derivations import this module, so they are looked up on first use.
_DERIVED = {'json_schema': 'options_schema', 'cli_options': 'options_cli',
            'opts_from_cli': 'options_cli'}


def __getattr__(name):
    if name in _DERIVED:
        import importlib
        return getattr(importlib.import_module('koji_containerbuild.' + _DERIVED[name]), name)
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
