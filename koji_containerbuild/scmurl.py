"""Shape check for the SCM URL of a container build (hub and CLI, before any task)."""

import re

from koji_containerbuild.errors import OptionError

# Schemes koji.daemon.SCM accepts for git; plain https:// is not an SCM URL for Koji.
GIT_SCHEMES = ('git://', 'git+http://', 'git+https://', 'git+rsync://', 'git+ssh://')
_URL_RE = re.compile(r'^(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<netloc>[^/?#\s]*)'
                     r'(?P<path>/[^?#\s]*)(\?(?P<module>[^#\s]*))?#(?P<ref>[^\s#]+)$')
MAX_URL = 2048


def check_source_url(src):
    """Return `src` if it is `scheme://host/path#ref`; raise OptionError otherwise."""
    if not isinstance(src, str) or not src:
        raise OptionError('Invalid source: an SCM URL string is required, got %r' % (src,))
    if len(src) > MAX_URL:
        raise OptionError('Invalid source: the SCM URL is longer than %d characters' % MAX_URL)
    match = _URL_RE.match(src)
    if not match:
        if '#' not in src:
            raise OptionError('Invalid source %r: the SCM URL needs a "#<commit or ref>" '
                              'suffix, e.g. git://host/repo#main' % redact(src))
        raise OptionError('Invalid source %r: expected an SCM URL of the form '
                          'scheme://host/path#ref' % redact(src))
    if match.group('scheme') not in GIT_SCHEMES:
        raise OptionError('Invalid source %r: unsupported scheme %r (use one of %s)'
                          % (redact(src), match.group('scheme'), ', '.join(GIT_SCHEMES)))
    if ';' in src:
        raise OptionError('Invalid source %r: ";" parameters are not allowed' % redact(src))
    netloc = match.group('netloc')
    if '@' in netloc and ':' in netloc.split('@', 1)[0]:
        raise OptionError('Invalid source: passwords are not allowed in the SCM URL')
    if not netloc:
        raise OptionError('Invalid source %r: the SCM URL has no host' % redact(src))
    return src


def redact(text, secrets=()):
    """`text` with user:password@ parts of URLs, and each of `secrets`, masked.

    Everything quoted back to a user or a log goes through here (URLs are user input).
    """
    text = re.sub(r'(://)[^/@\s]*:[^/@\s]*@', r'\1***@', text)
    for secret in secrets:
        text = text.replace(secret, '***')
    return text

