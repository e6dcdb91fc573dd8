#!/usr/bin/env python3
"""Write docs/options.md from the options table in koji_containerbuild/options.py.

    python scripts/gen_options_doc.py          # rewrite docs/options.md
    python scripts/gen_options_doc.py --check  # exit 1 if docs/options.md is stale

tests/options/test_options_doc.py runs the check, so the reference cannot drift.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import jsonschema  # noqa: E402

from koji_containerbuild import options  # noqa: E402

DOC = os.path.join(ROOT, 'docs', 'options.md')

KIND_TITLES = {
    options.BINARY: ('Binary image builds', '`buildContainer`', '`koji container-build`'),
    options.FLATPAK: ('Flatpak builds', '`buildContainer` with `flatpak: true`',
                      '`koji flatpak-build`'),
    options.SOURCE: ('Source container builds', '`buildSourceContainer`',
                     '`koji source-container-build`'),
}


def cell(text):
    return str(text).replace('|', '\\|').replace('\n', ' ')


def type_text(opt):
    limit = ' (≤ %d characters)' % options.MAX_TEXT
    what = ': ' + opt.pattern_doc if opt.pattern_doc else ''
    minimum = ' ≥ %d' % opt.minimum if opt.minimum is not None else ''
    if opt.maximum is not None:
        minimum = ' from %d to %d' % (opt.minimum or 0, opt.maximum)
    items = ', at most %d items' % opt.max_items
    return {
        'bool': 'boolean',
        'int': 'integer%s' % minimum,
        'text': 'string%s%s' % (what, limit),
        'list_text': 'list of strings%s%s%s' % (what, limit, items),
        'list_int': 'list of integers%s%s' % (minimum, items),
        'object': 'JSON object (string keys; ≤ %d characters as JSON, nested ≤ %d deep)'
                  % (options.MAX_USERDATA, options.MAX_DEPTH),
    }[opt.vtype]


def null_text(kind, opt, schema):
    """Read from the JSON schema, so the doc says what the builder enforces."""
    if kind in opt.required:
        return 'no (required)'
    prop = jsonschema.Draft7Validator(schema['properties'][opt.name])
    return 'yes (unset)' if prop.is_valid(None) else 'no'


def cli_text(opt):
    if not opt.cli:
        return '— (set by the CLI)' if opt.name == 'flatpak' else '—'
    flag = '`%s %s`' % (opt.cli, opt.metavar) if opt.metavar else '`%s`' % opt.cli
    if opt.vtype in ('list_text', 'list_int'):
        flag += ' (repeatable)'
    return flag


def help_text(kind, opt):
    text = opt.help
    if opt.deprecated:
        text += ' (false: accepted with a warning)'
    return text


def rule_lines(kind):
    lines = []
    for opt in options.options_for(kind):
        if kind in opt.required:
            lines.append("- option '%s' is required" % opt.name)
    for rule in options.rules_for(kind):
        lines.append('- ' + rule.message)
    return lines


def notes_lines():
    """Decisions worth knowing that a row of the table cannot say."""
    arch_rule = [r for r in options.RULES if r.names == ('arch_override',)][0]
    isolated_rule = [r for r in options.RULES if r.names == ('isolated',)][0]
    return [
        '## Notes',
        '',
        '- **rpkg/fedpkg requests.** The opts dict rpkg sends is accepted as it is: every',
        '  key present, `None` meaning unset, `skip_build: false` tolerated with a',
        '  deprecation warning (`true` is refused), `flatpak: true` making it a Flatpak build.',
        '- **`arch_override` needs `scratch` or `isolated`.** The foundation issue\'s literal',
        '  rpkg example sends `arch_override: \'x86_64 aarch64\'` with `scratch` and',
        '  `isolated` both false; the rule wins: such a request is refused at every door',
        '  (CLI, hub before any task is created, builder JSON schema) with the message',
        '  "%s".' % arch_rule.message,
        '  Add `--scratch` (or `--isolated --release`), or drop `--arch-override` to build',
        '  for all arches of the build tag.',
        '- **Isolated builds need `release`** (as osbs-client does):',
        '  "%s".' % isolated_rule.message,
        '- **No credentials in URL options** (`yum_repourls`,',
        '  `operator_csv_modifications_url`): task options are stored in the task request,',
        '  which anyone can read on Koji web or with `getTaskInfo(request=True)`, so a',
        '  `user@` or `user:password@` part is refused, and the message masks it. Use',
        '  repositories the builders can read without credentials.',
        '- **`userdata` is strict JSON that XML-RPC can carry:** NaN and Infinity, whole',
        '  numbers outside 64 bits, control characters other than tab and newlines, lone',
        '  surrogates, nesting deeper than %d levels and more than %d characters as JSON'
        % (options.MAX_DEPTH, options.MAX_USERDATA),
        '  are refused (the size by the options model only: a JSON schema cannot say it).',
        '- **Bounded requests:** at most %d keys in opts, %d items per list option;'
        % (options.MAX_OPTS_KEYS, options.MAX_ITEMS),
        '  a fault for unknown keys names at most %d of them. See docs/security-inputs.md.'
        % options.MAX_UNKNOWN_SHOWN,
        '',
    ]


def render():
    out = [
        '# Build options',
        '',
        '<!-- Generated by scripts/gen_options_doc.py from koji_containerbuild/options.py.',
        '     Do not edit: change the table, then run `python scripts/gen_options_doc.py`. -->',
        '',
        'One table defines every option; the hub validation, the JSON schema the builder',
        'checks task parameters with, and the CLI flags are all derived from it.',
        '',
        '- `null` (None) always means "unset"; so do `false`, `""`, `[]` and `{}`.',
        '  rpkg/fedpkg send every key, most of them null: that is accepted.',
        '- Unknown keys, and keys of another build kind, are rejected.',
        '- A rejected request gets a `ParameterError` fault (code 1019) naming the option and',
        '  the problem; the hub creates no task.',
        '- Integer options also take integral floats (`12.0`), as JSON schema does; the',
        '  build gets an int.',
        '- Patterned strings must match completely: no leading or trailing whitespace or',
        '  newline (arch lists excepted), at most %d characters.' % options.MAX_TEXT,
        '- `arch_override` on the command line may use commas or spaces; the CLI sends it',
        '  space-separated.',
        '',
    ]
    for kind in options.KINDS:
        title, call, command = KIND_TITLES[kind]
        schema = options.json_schema(kind)
        out += ['## %s' % title, '', 'Hub call %s; CLI %s.' % (call, command), '',
                '| option | type | null allowed | CLI flag | help |',
                '|---|---|---|---|---|']
        for opt in options.options_for(kind):
            out.append('| `%s` | %s | %s | %s | %s |' % (
                opt.name, cell(type_text(opt)), null_text(kind, opt, schema),
                cell(cli_text(opt)), cell(help_text(kind, opt))))
        out += ['', 'Rules:', ''] + rule_lines(kind) + ['']
    out += notes_lines()
    return '\n'.join(out)


def main(argv):
    text = render()
    if '--check' in argv:
        current = None
        if os.path.exists(DOC):
            with open(DOC) as f:
                current = f.read()
        if current != text:
            sys.stderr.write('docs/options.md is missing or stale: '
                             'run python scripts/gen_options_doc.py\n')
            return 1
        return 0
    with open(DOC, 'w') as f:
        f.write(text)
    print('wrote %s' % os.path.relpath(DOC, ROOT))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
