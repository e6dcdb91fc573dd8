"""A small, strict Dockerfile reader: FROM, LABEL, ENV and ARG with variable substitution.

Only what the pre-build checks and the build need: the labels and environment of the
final stage, and every FROM line (with where it is, so a build can pin it).
The Dockerfile comes from a user's repository, so it is hostile input: every problem
becomes a SourceError naming the line, and sizes are bounded (file, values, total
expansion work) so a crafted file cannot exhaust memory or time.

Rules follow the Dockerfile reference: parser directives (`# escape=`), line
continuations, comments inside continuations, `key=value` pairs with quotes, the legacy
`ENV key value` form, `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR:+word}` (and the `-`, `+`,
`?`, `:?` forms), values of one ENV/LABEL instruction expanded with the environment as it
was before that instruction, ENV overriding ARG, global ARGs usable in FROM only,
and a stage started `FROM <earlier stage>` inheriting that stage's labels and ENV.
Labels of a parent image from a registry are not known here (documented in
docs/source-checks.md).

Lines and words are split the way buildah's parser does (dockerfile_lexer.py: lines,
continuations, directives, heredocs, word splitting and variable expansion); this module
applies the FROM/ARG/ENV/LABEL instructions to the stages.
"""

import re

from koji_containerbuild import dockerfile_lexer
from koji_containerbuild.dockerfile_lexer import (GO_SPACE, MAX_EXPANSION, _TOKEN_WS, _Budget,
                                                  _Lexer, _decode, _logical_lines, _short)
from koji_containerbuild.errors import SourceError

# The lexer's limits, still read from here (source.py, native_build, tests).
MAX_DOCKERFILE = dockerfile_lexer.MAX_DOCKERFILE     # bytes read from the file
MAX_VALUE = dockerfile_lexer.MAX_VALUE               # one expanded word
MAX_NESTING = dockerfile_lexer.MAX_NESTING           # ${a:-${b:-...}} depth
MAX_LINE_REPORT = dockerfile_lexer.MAX_LINE_REPORT   # characters of a bad word in messages
MAX_KEYS = 4096                        # ENV, ARG or LABEL names of one stage
MAX_FROM = 64                          # FROM instructions (stages), both backends

# A word of an ADD that buildah fetches from the network: scheme:// or git@ (each try
# starts at a word boundary, so the search stays linear).
_REMOTE_SOURCE = re.compile(r'(?:^|[\s"\'\[,])(?:[A-Za-z][A-Za-z0-9+.-]*://|git@)')

class Dockerfile(object):
    """What the checks need from a Dockerfile: final-stage labels and env, base image.

    froms: one dict per FROM instruction, in order: `image` (global ARGs expanded),
    `alias` (lower case, or None), `flags` (the `--...` words as written), `stage_ref`
    (True when `image` names an earlier stage), `first`/`last` (0-based indexes of the
    instruction's first and last line in the text split at \n), `start`/`end` (the
    character range of the instruction in the decoded text, without the line ending:
    what a pinned Dockerfile replaces, keeping every other byte).
    """

    def __init__(self, labels, env, base_image, stages, froms=(), remote_adds=(),
                 copy_froms=(), run_networks=()):
        self.labels = labels
        self.env = env
        self.base_image = base_image
        self.stages = stages
        self.froms = list(froms)
        # line numbers of ADD instructions naming a URL (fetched by buildah itself)
        self.remote_adds = list(remote_adds)
        # [(line, image or stage)] of COPY/ADD --from= and RUN --mount=...from=
        self.copy_froms = list(copy_froms)
        # line numbers of RUN instructions with a --network flag
        self.run_networks = list(run_networks)

    def from_images(self):
        """The images the FROM lines pull, in order (references to stages left out)."""
        return [entry['image'] for entry in self.froms if not entry['stage_ref']]


def _check_text(text, lineno, what, key=None):
    """Refuse invalid UTF-8 and NUL; `what` (+ the short `key`) names the value."""
    if text.isascii() and '\x00' not in text:
        return
    if key is not None:
        what = '%s %s' % (what, _short(key))
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        raise SourceError('Dockerfile line %d: %s is not valid UTF-8' % (lineno, what))
    if '\x00' in text:
        raise SourceError('Dockerfile line %d: %s contains a NUL character' % (lineno, what))


def _pairs(lexer, keyword):
    """key=value pairs of an ENV/LABEL/ARG instruction, expanded with the lexer's env."""
    words = lexer.words()
    if not words:
        lexer.error('%s needs at least one argument' % keyword)
    if keyword == 'LABEL' and words[0].startswith('['):
        lexer.error('LABEL takes key=value pairs, not a JSON array')
    if keyword != 'ARG' and '=' not in words[0]:
        # Legacy form: `ENV key value with spaces` - one pair, the rest of the line.
        if len(words) < 2:
            lexer.error('%s %s needs a value (use %s key=value)'
                        % (keyword, _short(words[0]), keyword))
        # buildah splits this form on [\t\v\f\r ] only (not on every word separator)
        legacy = _TOKEN_WS.split(lexer.text.strip(GO_SPACE), 1)
        if len(legacy) < 2:
            lexer.error('%s %s needs a value (use %s key=value)'
                        % (keyword, _short(legacy[0]), keyword))
        return [(lexer.expand(legacy[0]), lexer.expand(legacy[1]))]
    pairs = []
    for word in words:
        if '=' not in word:
            if keyword == 'ARG':
                pairs.append((lexer.expand(word), None))
                continue
            lexer.error('%s: can\'t find "=" in %r; use key=value' % (keyword, _short(word)))
        key, value = word.split('=', 1)
        pairs.append((lexer.expand(key), lexer.expand(value)))
    return pairs


def _leading_flags(rest):
    """The `--name[=value]` words at the start of an instruction's arguments."""
    flags = []
    for word in _TOKEN_WS.split(rest.lstrip()):
        if not word.startswith('--'):
            break
        flags.append(word)
    return flags


def parse(data, build_args=None):
    """Parse Dockerfile bytes; return a Dockerfile. Raises SourceError only.

    Linear in the size of the file: no per-instruction copies of the environment, the
    number of stages bounded while parsing (MAX_FROM).
    """
    if isinstance(data, str):
        data = data.encode('utf-8', 'surrogateescape')
    text = _decode(data)
    build_args = dict(build_args or {})
    budget = _Budget(MAX_EXPANSION)
    global_args = {}      # ARGs before the first FROM: usable in FROM lines
    stages = []           # [{'name', 'labels', 'env', 'args', 'base'}]
    named = {}            # stage name -> the last stage of that name
    stage = None
    scope = global_args
    froms = []
    remote_adds = []
    copy_froms = []
    run_networks = []
    for lineno, last, line, escape, start, end in _logical_lines(text):
        parts = _TOKEN_WS.split(line, 1)
        keyword = parts[0].upper()
        rest = parts[1] if len(parts) > 1 else ''
        if keyword == 'ADD' and _REMOTE_SOURCE.search(rest):
            remote_adds.append(lineno)
        if keyword in ('ADD', 'COPY', 'RUN'):
            for flag in _leading_flags(rest):
                name, _eq, value = flag[2:].partition('=')
                name = name.lower()
                if name == 'network' and keyword == 'RUN':
                    run_networks.append(lineno)
                elif name == 'from' and keyword != 'RUN':
                    copy_froms.append((lineno, value))
                elif name == 'mount' and keyword == 'RUN':
                    copy_froms += [(lineno, option[5:]) for option in value.split(',')
                                   if option.lower().startswith('from=')]
        if keyword == 'FROM':
            if len(froms) >= MAX_FROM:
                raise SourceError('Dockerfile line %d: more than %d FROM instructions'
                                  % (lineno, MAX_FROM))
            stage, entry = _from(rest, lineno, escape, global_args, named, budget)
            entry.update(first=lineno - 1, last=last - 1, start=start, end=end)
            stages.append(stage)
            if stage['name'] is not None:
                named[stage['name']] = stage
            froms.append(entry)
            scope = _Scope(stage)
            continue
        if keyword not in ('ARG', 'ENV', 'LABEL'):
            continue
        if stage is None and keyword != 'ARG':
            raise SourceError('Dockerfile line %d: %s before the first FROM' % (lineno, keyword))
        lexer = _Lexer(rest, escape, scope, lineno, budget)
        for key, value in _pairs(lexer, keyword):
            _check_key(key, lineno, keyword)
            if value is not None:
                _check_text(value, lineno, keyword, key)
            if keyword == 'ARG':
                _arg(stage, global_args, build_args, key, value)
                target = global_args if stage is None else stage['args']
            else:
                target = stage['env'] if keyword == 'ENV' else stage['labels']
                target[key] = value
            if len(target) > MAX_KEYS:
                # bounds what a stage inherits (copied at each FROM <stage>)
                raise SourceError('Dockerfile line %d: more than %d %s names in one stage'
                                  % (lineno, MAX_KEYS, keyword))
        # ENV/LABEL values of one instruction all see the environment from before it:
        # _pairs expanded every word before any assignment above.
    if stage is None:
        raise SourceError('Dockerfile has no FROM instruction')
    return Dockerfile(labels=dict(stage['labels']), env=dict(stage['env']),
                      base_image=stage['base'], stages=[s['name'] for s in stages],
                      froms=froms, remote_adds=remote_adds, copy_froms=copy_froms,
                      run_networks=run_networks)


class _Scope(object):
    """The variables of a stage: ENV over ARG, looked up without copying either."""

    def __init__(self, stage):
        self.env = stage['env']
        self.args = stage['args']

    def get(self, name, default=None):
        if name in self.env:
            return self.env[name]
        return self.args.get(name, default)


def _check_key(key, lineno, keyword):
    if not key:
        raise SourceError('Dockerfile line %d: %s names can not be blank' % (lineno, keyword))
    _check_text(key, lineno, '%s name' % keyword, key)


def _arg(stage, global_args, build_args, key, default):
    if stage is None:
        target = global_args
        known_default = default
    else:
        target = stage['args']
        # `ARG name` in a stage brings a global ARG's default into scope.
        known_default = default if default is not None else global_args.get(key)
    if key in build_args:
        target[key] = str(build_args[key])
    elif known_default is not None:
        target[key] = known_default
    else:
        target.setdefault(key, '')


def _from(rest, lineno, escape, global_args, named, budget):
    """(stage, FROM entry) of a FROM instruction; only global ARGs expand in it.

    Words split like buildah's FROM: on [\\t\\v\\f\\r ], quotes not grouping words.
    """
    lexer = _Lexer(rest, escape, global_args, lineno, budget)
    words = [w for w in _TOKEN_WS.split(rest.strip(GO_SPACE)) if w]
    flags = [w for w in words if w.startswith('--')]
    words = [w for w in words if not w.startswith('--')]
    if not words:
        raise SourceError('Dockerfile line %d: FROM needs an image' % lineno)
    image = lexer.expand(words[0])
    name = None
    if len(words) == 3 and words[1].lower() == 'as':
        name = lexer.expand(words[2]).lower()
    elif len(words) != 1:
        raise SourceError('Dockerfile line %d: FROM takes "image [AS name]"' % lineno)
    _check_text(image, lineno, 'FROM image')
    if not image:
        raise SourceError('Dockerfile line %d: FROM image is empty after ARG expansion'
                          % lineno)
    stage = {'name': name, 'labels': {}, 'env': {}, 'args': {}, 'base': image}
    earlier = named.get(image.lower())
    if earlier is not None:
        stage['labels'] = dict(earlier['labels'])
        stage['env'] = dict(earlier['env'])
        stage['base'] = earlier['base']
    return stage, {'image': image, 'alias': name, 'flags': flags,
                   'stage_ref': earlier is not None}
