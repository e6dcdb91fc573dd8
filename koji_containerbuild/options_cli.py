"""The CLI flags of build options, derived from the options table.

cli_options(kind) gives the optparse flags of the koji CLI plugin (cli_support.py);
opts_from_cli(kind, values) turns what the user typed back into an opts dict, which
still goes through options.validate. Kept apart from options.py (the table and validate),
which the hub and builder load without any CLI; both names stay importable from options.
"""

import json
import re

from koji_containerbuild.errors import OptionError
from koji_containerbuild.options import (FLATPAK, MAX_DEPTH, MAX_USERDATA, arch_list,
                                         options_for)
from koji_containerbuild.wirevalue import short_repr


def cli_options(kind):
    """[(flag, optparse kwargs)] for the options of `kind` that have a CLI flag."""
    result = []
    for opt in options_for(kind):
        if not opt.cli:
            continue
        kwargs = {'dest': opt.name, 'help': opt.help}
        if opt.vtype == 'bool':
            kwargs.update(action='store_true', default=False)
        elif opt.vtype in ('list_text', 'list_int'):
            kwargs.update(action='append', metavar=opt.metavar, default=None)
        else:
            kwargs.update(action='store', metavar=opt.metavar, default=None)
        result.append((opt.cli, kwargs))
    return result


_CLI_INT = re.compile(r'[0-9]{1,19}')


def _from_cli_text(opt, text):
    """A CLI text as the option's value; OptionError for what does not convert.

    Integers are ASCII digits only (Python's int() also takes '1_0' and other scripts'
    digits); JSON is bounded before parsing (json.loads recurses on nesting).
    """
    if opt.vtype in ('int', 'list_int'):
        if not _CLI_INT.fullmatch(text):
            raise OptionError('Invalid value for %s: %s is not an integer (ASCII digits '
                              'only, at most 19)' % (opt.cli, short_repr(text)))
        return int(text)
    if opt.vtype == 'object':
        if len(text) > MAX_USERDATA:
            raise OptionError('Invalid value for %s: longer than %d characters'
                              % (opt.cli, MAX_USERDATA))
        try:
            value = json.loads(text)
        except RecursionError:
            raise OptionError('Invalid value for %s: nested deeper than %d levels'
                              % (opt.cli, MAX_DEPTH))
        except ValueError as exc:
            raise OptionError('Invalid value for %s: not valid JSON (%s)'
                              % (opt.cli, short_repr(str(exc), 120)))
        if not isinstance(value, dict):
            raise OptionError('Invalid value for %s: must be a JSON object' % opt.cli)
        return value
    return text


def opts_from_cli(kind, values):
    """Turn parsed CLI values (an optparse Values or dict) into an opts dict.

    Only options the user set are included. Raises OptionError for text that does
    not convert; the result still has to go through validate().
    """
    if not isinstance(values, dict):
        values = vars(values)
    opts = {}
    for opt in options_for(kind):
        if not opt.cli:
            continue
        raw = values.get(opt.name)
        if raw is None or raw is False:
            continue
        if opt.vtype in ('list_text', 'list_int'):
            opts[opt.name] = [_from_cli_text(opt, item) for item in raw]
        elif opt.vtype == 'bool':
            opts[opt.name] = bool(raw)
        elif opt.name == 'arch_override':
            opts[opt.name] = ' '.join(arch_list(raw))
        else:
            opts[opt.name] = _from_cli_text(opt, raw)
    if kind == FLATPAK:
        opts['flatpak'] = True
    return opts
