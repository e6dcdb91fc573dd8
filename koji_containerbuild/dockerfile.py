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

Lines and words are split the way buildah's parser does (checked against buildah
build in tests/security/test_inputs_dockerfile.py), so what the checks read is what
builds: lines end at \n only (one \r before it is dropped); blank and comment lines are
recognized after trimming Go's unicode.IsSpace characters (GO_SPACE); the keyword, FROM
words and the legacy `ENV key value` split on [\t\v\f\r ]; ENV/LABEL/ARG words split on
GO_SPACE outside quotes. A form feed in a comment stays in the comment.
"""

import collections
import re

from koji_containerbuild.errors import SourceError

MAX_DOCKERFILE = 1024 * 1024          # bytes read from the file
MAX_VALUE = 256 * 1024                 # one expanded word
MAX_EXPANSION = 4 * 1024 * 1024        # characters produced by expansion, whole file
MAX_KEYS = 4096                        # ENV, ARG or LABEL names of one stage
MAX_NESTING = 32                       # ${a:-${b:-...}} depth
MAX_LINE_REPORT = 60                   # characters of a bad word quoted in messages
MAX_FROM = 64                          # FROM instructions (stages), both backends

# Go's unicode.IsSpace: what buildah trims around lines and splits LABEL/ENV/ARG words on.
GO_SPACE = ('\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006'
            '\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000')
_GO_SPACE_SET = frozenset(GO_SPACE)
# buildah's token separator: keyword from arguments, FROM words, legacy ENV/LABEL.
_TOKEN_WS = re.compile('[\t\v\f\r ]+')

_DIRECTIVE_RE = re.compile(r'#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=(.*)')
_NAME_RE = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
_HEREDOC_RE = re.compile(r'<<(-?)\s*(["\']?)([A-Za-z0-9_.-]+)\2')
_HEREDOC_INSTRUCTIONS = ('RUN', 'COPY', 'ADD')
# A word of an ADD that buildah fetches from the network: scheme:// or git@ (each try
# starts at a word boundary, so the search stays linear).
_REMOTE_SOURCE = re.compile(r'(?:^|[\s"\'\[,])(?:[A-Za-z][A-Za-z0-9+.-]*://|git@)')
_READ_INSTRUCTIONS = ('FROM', 'ARG', 'ENV', 'LABEL')   # what the checks read
_GO_SPACE_RE = re.compile('[%s]+' % GO_SPACE)
_QUOTING = dict((esc, re.compile('["\'%s]' % re.escape(esc))) for esc in ('\\', '`'))
# What expand() acts on, per escape character.
_SPECIAL = dict((esc, re.compile('[$"\'%s]' % re.escape(esc))) for esc in ('\\', '`'))


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


def _short(text):
    text = text.encode('unicode_escape').decode('ascii')
    return text if len(text) <= MAX_LINE_REPORT else text[:MAX_LINE_REPORT - 3] + '...'


class _Budget(object):
    """Total characters expansion may produce, so $a$a$a chains cannot explode."""

    def __init__(self, limit):
        self.left = limit

    def spend(self, count, lineno):
        self.left -= count
        if self.left < 0:
            raise SourceError('Dockerfile line %d: variable expansion produces more than %d '
                              'characters in total' % (lineno, MAX_EXPANSION))


class _Lexer(object):
    """Shell-like word processing of one instruction's arguments (Docker's rules)."""

    def __init__(self, text, escape, env, lineno, budget):
        self.text = text
        self.escape = escape
        self.env = env
        self.lineno = lineno
        self.budget = budget

    def error(self, message):
        raise SourceError('Dockerfile line %d: %s' % (self.lineno, message))

    def expand(self, word, depth=0, quotes=True):
        """Expand variables in `word` and (with quotes) remove quoting, like ProcessWord."""
        if depth > MAX_NESTING:
            self.error('variable substitutions nested too deeply')
        special = _SPECIAL[self.escape]
        if not special.search(word):
            # nothing to expand or unquote (most words): the word itself
            if word:
                self.budget.spend(len(word), self.lineno)
                if len(word) > MAX_VALUE:
                    self.error('a value is longer than %d characters after expansion'
                               % MAX_VALUE)
            return word
        out = []
        size = 0
        i = 0
        n = len(word)
        quote = None
        esc = self.escape
        while i < n:
            ch = word[i]
            piece = None
            if quote == "'":
                end = word.find("'", i)
                if end < 0:
                    break
                piece = word[i:end]
                quote = None
                i = end + 1
            elif ch == esc:
                if i + 1 < n:
                    nxt = word[i + 1]
                    keep = quote == '"' and nxt not in ('"', '$', esc)
                    piece = ch + nxt if keep else nxt
                    i += 2
                else:
                    piece = ch
                    i += 1
            elif quotes and ch in ('"', "'") and (quote is None or ch == quote):
                quote = None if quote else ch
                i += 1
            elif ch == '$':
                piece, i = self._variable(word, i + 1, depth)
            else:
                match = special.search(word, i + 1)
                end = match.start() if match else n
                if not quotes:
                    # quotes are literal here: copy up to the next '$' or escape
                    while match and word[end] in '"\'':
                        match = special.search(word, end + 1)
                        end = match.start() if match else n
                piece = word[i:end]
                i = end
            if piece:
                out.append(piece)
                size += len(piece)
                self.budget.spend(len(piece), self.lineno)
                if size > MAX_VALUE:
                    self.error('a value is longer than %d characters after expansion'
                               % MAX_VALUE)
        if quote:
            self.error('unterminated %s quote in %r' % (quote, _short(word)))
        return ''.join(out)

    def _variable(self, word, i, depth):
        """Expand the variable reference starting after '$' at word[i]; return (text, end)."""
        n = len(word)
        if i >= n:
            return '$', i
        if word[i] == '{':
            end = self._matching_brace(word, i + 1)
            body = word[i + 1:end]
            return self._braced(body, depth), end + 1
        match = _NAME_RE.match(word, i)
        if not match:
            return '$', i
        return self.env.get(match.group(0), ''), match.end()

    def _matching_brace(self, word, i):
        nesting = 0
        n = len(word)
        while i < n:
            ch = word[i]
            if ch == self.escape:
                i += 2
                continue
            if ch == '$' and i + 1 < n and word[i + 1] == '{':
                nesting += 1
                i += 2
                continue
            if ch == '}':
                if nesting == 0:
                    return i
                nesting -= 1
            i += 1
        self.error('missing "}" in variable substitution in %r' % _short(word))

    def _braced(self, body, depth):
        match = _NAME_RE.match(body)
        if not match:
            self.error('bad variable substitution ${%s}' % _short(body))
        name = match.group(0)
        rest = body[match.end():]
        value = self.env.get(name)
        if not rest:
            return value or ''
        colon = rest.startswith(':')
        op_text = rest[1:] if colon else rest
        if not op_text or op_text[0] not in '-+?':
            self.error('unsupported variable modifier in ${%s}' % _short(body))
        op, word = op_text[0], op_text[1:]
        is_set = value is not None and (value != '' or not colon)
        if op == '-':
            return value if is_set else self.expand(word, depth + 1, quotes=False)
        if op == '+':
            return self.expand(word, depth + 1, quotes=False) if is_set else ''
        if not is_set:
            message = self.expand(word, depth + 1, quotes=False) or 'is not set'
            self.error('variable %s: %s' % (name, _short(message)))
        return value

    def words(self):
        """Split into raw words on unquoted, unescaped whitespace (quotes kept)."""
        if not _QUOTING[self.escape].search(self.text):
            return [w for w in _GO_SPACE_RE.split(self.text) if w]
        words = []
        current = []
        quote = None
        text = self.text
        i = 0
        n = len(text)
        in_word = False
        while i < n:
            ch = text[i]
            if quote is None and ch in _GO_SPACE_SET:
                if in_word:
                    words.append(''.join(current))
                    current = []
                    in_word = False
                i += 1
                continue
            in_word = True
            if ch == self.escape and quote != "'" and i + 1 < n:
                current.append(text[i:i + 2])
                i += 2
                continue
            if ch in ('"', "'"):
                if quote is None:
                    quote = ch
                elif quote == ch:
                    quote = None
            current.append(ch)
            i += 1
        if quote:
            self.error('unterminated %s quote' % quote)
        if in_word:
            words.append(''.join(current))
        return words


def _decode(data):
    if len(data) > MAX_DOCKERFILE:
        raise SourceError('Dockerfile is larger than %d bytes' % MAX_DOCKERFILE)
    # Invalid UTF-8 is tolerated in comments and RUN lines; a label or variable
    # holding it is refused where it is used (see _check_text).
    return data.decode('utf-8', 'surrogateescape')


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


class _Lines(object):
    """The lines of `text` one at a time, split like buildah: at \n only, one \r before
    it dropped, a byte order mark at the start ignored. No list of all lines is built
    (millions of short lines would cost far more memory than the file)."""

    def __init__(self, text):
        self.text = text
        self.pos = 0
        self.number = 0          # 1-based number of the last line read
        self.pushed = None

    def next(self):
        """(offset, line) of the next line, or None at the end."""
        if self.pushed is not None:
            item, self.pushed = self.pushed, None
            self.number += 1
            return item
        text = self.text
        if self.pos > len(text):
            return None
        end = text.find('\n', self.pos)
        if end < 0:
            end = len(text)
        offset = self.pos
        line = text[offset:end]
        self.pos = end + 1
        if self.number == 0 and line.startswith('\ufeff'):
            line = line[1:]
            offset += 1
        if line.endswith('\r'):
            line = line[:-1]
        self.number += 1
        return offset, line

    def push_back(self, item):
        self.pushed = item
        self.number -= 1


def _skipped(line):
    """Blank and comment lines (after Go's whitespace trim) are not instructions."""
    stripped = line.lstrip(GO_SPACE)
    return not stripped or stripped.startswith('#')


def _continues(line, escape):
    """Index of the line-continuation escape ending `line` (then only spaces/tabs), or -1."""
    body = line.rstrip(' \t')
    return len(body) - 1 if body.endswith(escape) else -1


def _logical_lines(text):
    """Yield (lineno, last lineno, line, escape, start, end) for each instruction, joined
    across continuations (1-based line numbers; start/end: its character range in
    `text`); comments and blanks skipped."""
    lines = _Lines(text)
    escape = '\\'
    # Parser directives: only at the very top, before any other line.
    while True:
        item = lines.next()
        if item is None:
            return
        match = _DIRECTIVE_RE.fullmatch(item[1].strip(' \t'))
        if not match:
            lines.push_back(item)
            break
        if match.group(1).lower() == 'escape':
            value = match.group(2).strip(' \t')
            if value not in ('\\', '`'):
                raise SourceError('Dockerfile line %d: invalid escape directive %r (use \\ '
                                  'or `)' % (lines.number, _short(value)))
            escape = value
    heredocs = collections.deque()
    while True:
        item = lines.next()
        if item is None:
            return
        offset, raw = item
        if heredocs:
            strip_tabs, word = heredocs[0]
            body = raw.lstrip('\t') if strip_tabs else raw
            if body == word:
                heredocs.popleft()
            elif _TOKEN_WS.split(raw.strip(GO_SPACE), 1)[0].upper() in _READ_INSTRUCTIONS:
                # buildah without heredoc support (1.28 here) runs this line as an
                # instruction, a newer one keeps it as text: no single reading is right
                raise SourceError('Dockerfile line %d: a heredoc (<<%s) body line starts with '
                                  '%s: builders without heredoc support would apply it as an '
                                  'instruction; start the line with something else'
                                  % (lines.number, _short(word),
                                     _short(_TOKEN_WS.split(raw.strip(GO_SPACE), 1)[0])))
            continue
        if _skipped(raw):
            continue
        start = lines.number
        parts = []
        line = raw
        end = offset + len(raw)
        while True:
            cut = _continues(line, escape)
            if cut < 0:
                parts.append(line)
                break
            parts.append(line[:cut])
            # Skip comment and empty lines inside a continuation, as buildah does.
            item = lines.next()
            while item is not None and _skipped(item[1]):
                item = lines.next()
            if item is None:
                break
            line_offset, line = item
            end = line_offset + len(line)
        joined = ''.join(parts).strip(GO_SPACE)
        if not joined:
            continue
        keyword = _TOKEN_WS.split(joined, 1)[0].upper()
        if keyword in _HEREDOC_INSTRUCTIONS:
            for match in _HEREDOC_RE.finditer(joined):
                heredocs.append((match.group(1) == '-', match.group(3)))
        yield start, lines.number, joined, escape, offset, end


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
