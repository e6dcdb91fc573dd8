"""The koji CLI commands behind cli/cli_containerbuild.py.

Parse and check everything locally (options model, SCM URL, target, destination
tag) before anything is submitted, then submit, watch like `koji build` and print
the task result. Bad input gives one `koji <command>: error: ...` line on stderr
and exit code 2; a refused submission or a failed task gives exit code 1.
"""

import optparse
import sys

import koji
from koji_cli.lib import _running_in_bg, activate_session, get_usage_str, watch_tasks

from koji_containerbuild import hub_policy, options
from koji_containerbuild.errors import OptionError
from koji_containerbuild.scmurl import check_source_url

EXIT_OK = 0
EXIT_FAILED = 1   # the hub refused the request, or the task failed or was canceled
EXIT_USAGE = 2    # bad input; nothing was submitted

# Priority relative to koji.PRIO_DEFAULT for --background, as `koji build` does.
BACKGROUND_PRIORITY = 5


class Command(object):
    def __init__(self, name, kind, method, args, usage):
        self.name = name
        self.kind = kind
        self.method = method      # hub call
        self.args = args          # positional argument names
        self.usage = usage


COMMANDS = dict((c.name, c) for c in (
    Command('container-build', options.BINARY, 'buildContainer', ('TARGET', 'SCM_URL#REF'),
            'Build a container image from the Dockerfile at SCM_URL#REF, for the\n'
            'Koji build target TARGET.'),
    Command('flatpak-build', options.FLATPAK, 'buildContainer', ('TARGET', 'SCM_URL#REF'),
            'Build a Flatpak from the container.yaml at SCM_URL#REF, for the\n'
            'Koji build target TARGET.'),
    Command('source-container-build', options.SOURCE, 'buildSourceContainer', ('TARGET',),
            'Build a source container image holding the sources of an existing image\n'
            'build (--koji-build-id or --koji-build-nvr), for the Koji build target TARGET.'),
))


class _Parser(optparse.OptionParser):
    """optparse with one-line errors (no usage dump), so scripts see a clear message."""

    def __init__(self, command, **kwargs):
        optparse.OptionParser.__init__(self, **kwargs)
        self.command = command

    def error(self, msg):
        self.exit(EXIT_USAGE, '%s %s: error: %s\n' % (self.get_prog_name(), self.command,
                                                       _printable(msg)))


def make_parser(command, goptions=None):
    cmd = COMMANDS[command]
    usage = 'usage: %%prog %s [options] %s\n\n%s' % (cmd.name, ' '.join(cmd.args), cmd.usage)
    parser = _Parser(cmd.name, usage=get_usage_str(usage))
    for flag, kwargs in options.cli_options(cmd.kind):
        parser.add_option(flag, **kwargs)
    parser.add_option('--wait', action='store_true', default=False,
                      help='Wait for the task, even when running in the background')
    parser.add_option('--nowait', action='store_true', default=False,
                      help="Don't wait for the task")
    parser.add_option('--quiet', action='store_true',
                      default=bool(getattr(goptions, 'quiet', False)),
                      help='Do not print the task information')
    parser.add_option('--background', action='store_true', default=False,
                      help='Run the build at a lower priority')
    parser.add_option('--channel-override', metavar='CHANNEL', default=None,
                      help='Use this channel instead of the default one (admins or '
                           'permission holders only)')
    return parser


def _printable(text):
    """Server and user text may carry terminal control characters; show them escaped."""
    text = str(text)
    return ''.join(c if c.isprintable() or c == '\n' else repr(c)[1:-1] for c in text)


def _with_flags(message, kind):
    """Name CLI flags instead of option keys in an options-model message."""
    for opt in options.options_for(kind):
        if opt.cli:
            message = message.replace("'%s'" % opt.name, opt.cli)
    return message


def parse(command, goptions, args):
    """Parse and check the command line offline.

    Returns (cmd, parser, values, positional, opts); calls parser.error (exit 2) on
    bad input.
    """
    cmd = COMMANDS[command]
    parser = make_parser(command, goptions)
    values, positional = parser.parse_args(args)
    if len(positional) < len(cmd.args):
        missing = cmd.args[len(positional):]
        parser.error('missing %s (usage: %s [options] %s)'
                     % (' and '.join(missing), cmd.name, ' '.join(cmd.args)))
    if len(positional) > len(cmd.args):
        parser.error('too many arguments: %s' % ' '.join(positional[len(cmd.args):]))
    if values.wait and values.nowait:
        parser.error('--wait and --nowait cannot be used together')
    if values.channel_override is not None and not values.channel_override.strip():
        parser.error('--channel-override needs a channel name')
    try:
        # The hub's own checks, so nothing it would refuse (or XML-RPC could not carry:
        # lone surrogates from undecodable arguments, huge integers) leaves this host.
        hub_policy.check_target_name(positional[0])
        if len(cmd.args) > 1:
            check_source_url(positional[1])
        if values.channel_override is not None and \
                not hub_policy.CHANNEL_RE.match(values.channel_override.strip()):
            raise OptionError('Invalid channel %s: a channel name is letters, digits and '
                              '"/_.+-"' % options.short_repr(values.channel_override))
        opts, warnings = options.validate(cmd.kind, options.opts_from_cli(cmd.kind, values))
    except OptionError as exc:
        parser.error(_with_flags(str(exc), cmd.kind))
    for warning in warnings:
        sys.stderr.write('Warning: %s\n' % warning)
    return cmd, parser, values, positional, opts


def check_target(parser, session, target, scratch):
    """The target must exist and, unless scratch, its destination tag be unlocked."""
    build_target = session.getBuildTarget(target)
    if not build_target:
        parser.error('No such build target: %s' % target)
    dest_tag = session.getTag(build_target['dest_tag'])
    if not dest_tag:
        parser.error('No such destination tag: %s' % build_target['dest_tag_name'])
    if dest_tag['locked'] and not scratch:
        parser.error('Destination tag %s is locked' % dest_tag['name'])


def run(command, goptions, session, args):
    cmd, parser, values, positional, opts = parse(command, goptions, args)
    target = positional[0]
    activate_session(session, goptions)
    check_target(parser, session, target, opts.get('scratch'))

    kwargs = {'priority': BACKGROUND_PRIORITY if values.background else None}
    if values.channel_override:
        kwargs['channel'] = values.channel_override.strip()
    call_args = [target, opts] if cmd.kind == options.SOURCE else [positional[1], target, opts]
    try:
        task_id = getattr(session, cmd.method)(*call_args, **kwargs)
    except (koji.GenericError, koji.xmlrpcplus.Fault) as exc:
        return _fail(cmd, 'the hub refused the build: %s' % _fault_text(exc))
    if not values.quiet:
        print('Created task: %d' % task_id)
        print('Task info: %s/taskinfo?taskID=%d' % (goptions.weburl, task_id))
    if values.nowait or (not values.wait and _running_in_bg()):
        return EXIT_OK
    session.logout()
    watch_tasks(session, [task_id], quiet=values.quiet,
                poll_interval=goptions.poll_interval, topurl=goptions.topurl)
    try:
        result = session.getTaskResult(task_id)
    except (koji.GenericError, koji.xmlrpcplus.Fault) as exc:
        return _fail(cmd, 'task %d failed: %s' % (task_id, _fault_text(exc)))
    if not values.quiet:
        # like `koji build --quiet`: nothing on success, the fault on failure
        print_result(goptions.weburl, result)
    return EXIT_OK


def _fault_text(exc):
    if isinstance(exc, koji.xmlrpcplus.Fault):
        return _printable(exc.faultString)
    return '%s: %s' % (exc.__class__.__name__, _printable(exc))


def _fail(cmd, message):
    sys.stderr.write('koji %s: error: %s\n' % (cmd.name, message))
    return EXIT_FAILED


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, (list, tuple)) else [value]


def print_result(weburl, result):
    """Print the build links, repositories and user warnings of a task result."""
    if not isinstance(result, dict):
        print('Task result: %s' % _printable(result))
        return
    for build_id in _as_list(result.get('koji_builds')):
        try:
            print('Build: %s/buildinfo?buildID=%d' % (weburl, int(build_id)))
        except (TypeError, ValueError):
            print('Build: %s (not a build id)' % _printable(build_id))
    repositories = _as_list(result.get('repositories'))
    if repositories:
        print('Repositories:')
        for repo in repositories:
            print('    %s' % _printable(repo))
    warnings = _as_list(result.get('user_warnings'))
    if warnings:
        print('User warnings:')
        for warning in warnings:
            print('    %s' % _printable(warning))
