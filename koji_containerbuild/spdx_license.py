"""RPM `License:` header values as SPDX 2.3 license expressions.

A value is kept as written when it is a well-formed SPDX expression (upper-case
AND/OR/WITH, parentheses) whose identifiers are all in KNOWN_LICENSES / KNOWN_EXCEPTIONS,
a conservative subset of the SPDX license list that covers most distribution RPMs.
Anything else (older Fedora/RHEL short names such as `GPLv2+`, free text) becomes one
`LicenseRef-` identifier whose extracted text is the header value, so a document never
claims an SPDX identifier the packager did not write, and always validates.
"""

import hashlib
import re

KNOWN_LICENSES = frozenset('''
0BSD AFL-2.1 AFL-3.0 AGPL-3.0-only AGPL-3.0-or-later Apache-1.1 Apache-2.0 Artistic-1.0
Artistic-1.0-Perl Artistic-2.0 Beerware BSD-1-Clause BSD-2-Clause BSD-3-Clause BSD-4-Clause
BSL-1.0 bzip2-1.0.6 CC-BY-3.0 CC-BY-4.0 CC-BY-SA-3.0 CC-BY-SA-4.0 CC0-1.0 CDDL-1.0 curl
EPL-1.0 EPL-2.0 FSFAP FSFUL FSFULLR FTL GFDL-1.1-or-later GFDL-1.2-or-later
GFDL-1.3-or-later GPL-1.0-only GPL-1.0-or-later GPL-2.0-only GPL-2.0-or-later GPL-3.0-only
GPL-3.0-or-later HPND IJG ISC LGPL-2.0-only LGPL-2.0-or-later LGPL-2.1-only
LGPL-2.1-or-later LGPL-3.0-only LGPL-3.0-or-later Libpng libpng-2.0 MIT MIT-0 MPL-1.1
MPL-2.0 NCSA OFL-1.1 OpenSSL PHP-3.01 PSF-2.0 Python-2.0 Ruby Sleepycat Unicode-DFS-2016
Unlicense Vim W3C WTFPL X11 Zlib ZPL-2.1
'''.split())
KNOWN_EXCEPTIONS = frozenset('''
Autoconf-exception-2.0 Autoconf-exception-3.0 Bison-exception-2.2 Classpath-exception-2.0
GCC-exception-2.0 GCC-exception-3.1 Linux-syscall-note LLVM-exception
'''.split())
MAX_LICENSE = 4096          # characters of one header value we look at
_TOKEN_RE = re.compile(r'\s*(\(|\)|[A-Za-z0-9.+-]+)')
_REF_CHARS_RE = re.compile(r'[^A-Za-z0-9.-]+')


def _tokens(text):
    tokens = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if not match:
            return None
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def _is_expression(tokens):
    """Recursive descent over `tokens` (bounded by MAX_LICENSE); True when all is used."""
    pos = [0]

    def peek():
        return tokens[pos[0]] if pos[0] < len(tokens) else None

    def take():
        pos[0] += 1
        return tokens[pos[0] - 1]

    def term(depth):
        if depth > 32:
            return False
        token = peek()
        if token == '(':
            take()
            if not expression(depth + 1) or peek() != ')':
                return False
            take()
            return True
        if token is None or token in ('AND', 'OR', 'WITH', ')'):
            return False
        take()
        ident = token[:-1] if token.endswith('+') else token
        if ident not in KNOWN_LICENSES:
            return False
        if peek() == 'WITH':
            take()
            return peek() in KNOWN_EXCEPTIONS and bool(take())
        return True

    def expression(depth):
        if not term(depth):
            return False
        while peek() in ('AND', 'OR'):
            take()
            if not term(depth):
                return False
        return True

    return bool(tokens) and expression(0) and pos[0] == len(tokens)


def license_ref(text):
    """A stable LicenseRef- id for a free-text license value."""
    readable = _REF_CHARS_RE.sub('-', text[:40]).strip('-.') or 'none'
    return 'LicenseRef-rpm-%s-%s' % (readable, hashlib.sha256(text.encode('utf-8'))
                                     .hexdigest()[:10])


def spdx_expression(value):
    """(expression, extracted text or None) for an RPM License value; NOASSERTION if none."""
    if value is None:
        return 'NOASSERTION', None
    text = value.strip()[:MAX_LICENSE]
    if not text:
        return 'NOASSERTION', None
    tokens = _tokens(text)
    if tokens is not None and _is_expression(tokens):
        return ' '.join(tokens).replace('( ', '(').replace(' )', ')'), None
    return license_ref(text), text
