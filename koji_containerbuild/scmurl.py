"""The one set of rules for URLs and git names in a build request (hub, CLI and builder).

* check_source_url / parse_source_url: the SCM URL `scheme://[user@]host[:port]/path
  [?module]#ref`, checked the same way by the CLI and the hub (before any task) and by
  the builder (before kojid's SCM sees it), so the hub refuses what a builder would.
* REF_NAME_PATTERN / check_ref_name / check_branch_name: git's check-ref-format rules,
  plus no leading '-' (an option to git or ssh) and printable ASCII only.
* HTTP_URL_PATTERN: the http(s) URLs of request options (yum repo files, CSV
  modifications): no credentials, a valid host and port.
* redact: masks credentials in any text quoted to a user or a log (linear time).

Credentials: a request (its SCM URL and options) is public on the hub (getTaskInfo,
Koji web), so it never carries a secret. Following kojid's SCM rules, `user:password@`
is refused unless the builder sets allow_password_in_scm_url (the hub and the CLI always
refuse it), and a bare `user@` is only a user name for git+ssh; on the http(s), git and
rsync schemes it is how tokens are passed (https://TOKEN@host), so it is refused there
too, unless allow_password (a credential the site chose to accept).
"""

import re
import urllib.parse

from koji_containerbuild.errors import OptionError

# Schemes koji.daemon.SCM accepts for git; plain https:// is not an SCM URL for Koji.
GIT_SCHEMES = ('git://', 'git+http://', 'git+https://', 'git+rsync://', 'git+ssh://')
# Schemes where a user name in the URL is a login name, not a secret.
USER_SCHEMES = ('git+ssh://',)
MAX_URL = 2048
MAX_REF = 255
MAX_MODULE = 1024

# ---- pieces shared by the Python checks and the JSON schema (ECMA 262 compatible):
# every pattern is anchored with ^...$(?!\n) because Python's '$' also matches before a
# final newline.

# git check-ref-format: no control characters, space, ~ ^ : ? * [ \ ; no '..', '@{',
# '//', component starting with '.' or ending with '.lock', no trailing '/' or '.',
# not '@'. Ours on top: no leading '-' or '/', printable ASCII, no '#' (URL fragment
# delimiter), no quotes, no leading '+' (a forced refspec).
_REF_CHAR = r"[A-Za-z0-9!$%&()+,\-./;<=>@\]_{|}]"
REF_NAME_RE = (r"(?![-/.+])(?!@$)"
               r"(?!.*(?:\.\.|//|@\{|/\.|\.lock/|\.lock$|[/.]$))"
               r"%s{1,%d}" % (_REF_CHAR, MAX_REF))
REF_NAME_PATTERN = r'^%s$(?!\n)' % REF_NAME_RE
# A branch for git_branch: also not a full ref or a commit id (the builder fetches it as
# refs/heads/<branch>).
# refs/heads/<branch>; kojid's `origin/` prefix is allowed (and stripped) as in refs.
BRANCH_PATTERN = (r'^(?!(?:origin/)?refs/)(?!(?:origin/)?[0-9a-f]{40}$)'
                  r'(?!(?:origin/)?[0-9a-f]{64}$)%s$(?!\n)' % REF_NAME_RE)

_LABEL = r'[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?'
DNS_NAME_RE = r'%s(?:\.%s)*\.?' % (_LABEL, _LABEL)
_H = r'[0-9A-Fa-f]{1,4}'
IPV6_RE = ('(?:' + '|'.join([
    r'(?:%s:){7}%s' % (_H, _H),
    r'(?:%s:){1,7}:' % _H,
    r'(?:%s:){1,6}:%s' % (_H, _H),
    r'(?:%s:){1,5}(?::%s){1,2}' % (_H, _H),
    r'(?:%s:){1,4}(?::%s){1,3}' % (_H, _H),
    r'(?:%s:){1,3}(?::%s){1,4}' % (_H, _H),
    r'(?:%s:){1,2}(?::%s){1,5}' % (_H, _H),
    r'%s:(?::%s){1,6}' % (_H, _H),
    r':(?:(?::%s){1,7}|:)' % _H,
]) + ')')
HOST_RE = r'(?:%s|\[%s\])' % (DNS_NAME_RE, IPV6_RE)
PORT_RE = (r'(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}'
           r'|[1-9][0-9]{0,3})')
AUTHORITY_RE = r'%s(?::%s)?' % (HOST_RE, PORT_RE)
# http(s) only: the native backend fetches these itself (no ftp), OSBS the same way.
HTTP_URL_PATTERN = r'^https?://%s(?:[/?#][!-~]*)?$(?!\n)' % AUTHORITY_RE

_HOST_FULL = re.compile(AUTHORITY_RE)
_REF_FULL = re.compile(REF_NAME_RE)
_BRANCH_FULL = re.compile(BRANCH_PATTERN)
_PRINTABLE = re.compile(r'[!-~]*')
_CONTROL = re.compile('[\x00-\x1f\x7f]')
_URL_SHAPE = re.compile(r'(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<netloc>[^/?#]*)'
                        r'(?P<path>/[^?#]*)(?:\?(?P<module>[^#]*))?#(?P<ref>.*)')
_USER_RE = re.compile(r"[A-Za-z0-9._~%!$&'()*+,=-]+")
_PATH_CHARS = re.compile(r"[A-Za-z0-9._~%!$&'()*+,=:@/-]*")
_MODULE_RE = re.compile(r'[A-Za-z0-9_.@+-]+(?:/[A-Za-z0-9_.@+-]+)*')


class SourceURL(object):
    """The parts of a checked SCM URL (user and password: None when absent)."""

    def __init__(self, url, scheme, user, password, host, path, module, ref):
        self.url = url
        self.scheme = scheme
        self.user = user
        self.password = password
        self.host = host
        self.path = path
        self.module = module
        self.ref = ref

    def without_password(self):
        """The URL with the password (not the user name) removed."""
        user = '%s@' % self.user if self.user is not None else ''
        module = '?%s' % self.module if self.module else ''
        return '%s%s%s%s%s#%s' % (self.scheme, user, self.host, self.path, module, self.ref)


def _fail(message):
    raise OptionError(message)


def check_ref_name(ref, what='git revision', where=' in the SCM URL'):
    """`ref` if git and every builder accept it as a branch, tag or commit name."""
    if not isinstance(ref, str) or not ref or len(ref) > MAX_REF \
            or not _REF_FULL.fullmatch(ref):
        _fail('Invalid %s %s%s: use a branch, tag or commit name (git check-ref-format rules; '
              'no leading "-", printable ASCII, at most %d characters)'
              % (what, _shown(ref), where, MAX_REF))
    return ref


def check_branch_name(branch):
    """The branch name of a git_branch value (without kojid's `origin/` prefix): a ref
    name that is not refs/... or a commit id."""
    check_ref_name(branch, 'git branch', '')
    if not _BRANCH_FULL.fullmatch(branch):
        _fail('Invalid git branch %s: give the branch name (not refs/... or a commit id)'
              % _shown(branch))
    return branch[len('origin/'):] if branch.startswith('origin/') else branch


def check_module(module):
    """The ?module part: a relative directory of plain names ('' when absent)."""
    module = (module or '').strip('/')
    if not module:
        return ''
    if len(module) > MAX_MODULE or not _MODULE_RE.fullmatch(module) \
            or any(part in ('.', '..', '.git') for part in module.split('/')):
        _fail('Invalid subdirectory %s in the SCM URL (after "?"): use a relative path of '
              'plain names' % _shown(module))
    return module


def _shown(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + '...'


def parse_source_url(src, allow_password=False):
    """SourceURL of `src`, or OptionError naming the problem (credentials never quoted).

    allow_password: the builder's allow_password_in_scm_url; the hub and the CLI pass
    False (their request is public).
    """
    if not isinstance(src, str) or not src:
        _fail('Invalid source: an SCM URL string is required, got %s' % _shown(src))
    if len(src) > MAX_URL:
        _fail('Invalid source: the SCM URL is longer than %d characters' % MAX_URL)
    if not _PRINTABLE.fullmatch(src):
        _fail('Invalid source %s: the SCM URL may only hold printable ASCII characters (no '
              'spaces or control characters; percent-encode the rest)' % _shown(redact(src)))
    match = _URL_SHAPE.fullmatch(src)
    if not match:
        if '#' not in src:
            _fail('Invalid source %s: the SCM URL needs a "#<commit or ref>" suffix, e.g. '
                  'git://host/repo#main' % _shown(redact(src)))
        _fail('Invalid source %s: expected an SCM URL of the form '
              'scheme://host/path[?subdir]#ref' % _shown(redact(src)))
    scheme = match.group('scheme')
    if scheme not in GIT_SCHEMES:
        _fail('Invalid source %s: unsupported scheme %r (use one of %s)'
              % (_shown(redact(src)), scheme, ', '.join(GIT_SCHEMES)))
    if ';' in src:
        _fail('Invalid source %s: ";" parameters are not allowed' % _shown(redact(src)))
    user, password, host = _split_netloc(match.group('netloc'), scheme, allow_password)
    path = match.group('path')
    _check_path(path, src)
    module = match.group('module')
    if module is not None:
        check_module(module)
    ref = match.group('ref')
    check_ref_name(ref)
    return SourceURL(src, scheme, user, password, host, path, module, ref)


def check_source_url(src):
    """Return `src` if the hub and every builder accept it; raise OptionError otherwise."""
    parse_source_url(src, allow_password=False)
    return src


def _split_netloc(netloc, scheme, allow_password):
    user = password = None
    if '@' in netloc:
        userinfo, _, hostport = netloc.rpartition('@')
        if '@' in userinfo:
            _fail('Invalid source: the SCM URL has more than one "@" before the host')
        user, sep, pw = userinfo.partition(':')
        if sep:
            password = pw
            if not allow_password:
                _fail('Invalid source: passwords are not allowed in the SCM URL (the task '
                      'request is public; give the builder its own credentials)')
        elif scheme not in USER_SCHEMES and not allow_password:
            _fail('Invalid source: a user name before the host of a %s URL is refused (it '
                  'is how tokens are passed, and the task request is public; only %s URLs '
                  'may name a user)' % (scheme, ', '.join(USER_SCHEMES)))
        if not user or not _USER_RE.fullmatch(user) or user.startswith('-'):
            _fail('Invalid source: the user name in the SCM URL is not valid')
        if password is not None and not _USER_RE.fullmatch(password or 'x'):
            _fail('Invalid source: the password in the SCM URL is not valid')
    else:
        hostport = netloc
    if not hostport:
        _fail('Invalid source: the SCM URL has no host')
    if not _HOST_FULL.fullmatch(hostport):
        _fail('Invalid source: %s is not a valid host[:port] (a DNS name, an IPv4 address '
              'or a [IPv6] address, and a port from 1 to 65535)' % _shown(hostport))
    return user, password, hostport


def _check_path(path, src):
    if not _PATH_CHARS.fullmatch(path):
        _fail('Invalid source %s: the repository path has characters that are not allowed'
              % _shown(redact(src)))
    plain = urllib.parse.unquote(path)
    parts = plain.rstrip('/').split('/')[1:]
    if not parts or any(p in ('', '.', '..') for p in parts) or _CONTROL.search(plain):
        _fail('Invalid source %s: the repository path must be a plain /path (no empty, "." '
              'or ".." parts, no control characters)' % _shown(redact(src)))


def check_http_url(url):
    """True if `url` fits HTTP_URL_PATTERN (http(s), valid host and port, no credentials)."""
    return isinstance(url, str) and re.match(HTTP_URL_PATTERN, url) is not None


# ------------------------------------------------------------------ redaction

# The run after '://' up to its last '@' before a '/' or whitespace (a password may hold
# '@'): linear, because such runs cannot overlap the next '://' (it contains '/'), and
# the engine backs up at most once over each. See _mask for what is masked.
_USERINFO = re.compile(r'://([^/\s]*)@')
# Schemes where even a bare user part is a secret (https://TOKEN@host).
_TOKEN_SCHEMES = ('http', 'https', 'ftp', 'ftps')
_SCHEME_CHARS = frozenset('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-')


def _scheme_before(text, pos):
    """The scheme name ending at text[pos] (at most 32 characters looked at)."""
    start = pos
    while start > 0 and pos - start < 32 and text[start - 1] in _SCHEME_CHARS:
        start -= 1
    return text[start:pos].lower()


def _mask(match):
    userinfo = match.group(1)
    if ':' in userinfo:
        return '://***@'
    scheme = _scheme_before(match.string, match.start())
    if scheme.rsplit('+', 1)[-1] in _TOKEN_SCHEMES:
        return '://***@'
    return match.group(0)


def redact(text, secrets=()):
    """`text` with URL credentials (user:password@, and user@ on http(s)/ftp URLs) and
    each of `secrets` masked. Linear in len(text).

    Everything quoted back to a user or a log goes through here (URLs are user input).
    """
    text = _USERINFO.sub(_mask, text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, '***')
    return text
