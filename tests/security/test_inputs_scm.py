"""SCM URLs and git names: one rule (scmurl) for the CLI, the hub and the builder.

The hub must refuse what a builder always refuses, and credentials must never be stored
anywhere a user or an image can read them.
"""

import base64
import functools
import http.server
import os
import subprocess
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from koji_containerbuild import options, scmurl, source
from koji_containerbuild.errors import OptionError, SourceError
from tests.doubles.hub_session import make_task_handler_options
from tests.support.gitserver import GitDaemon, git

BUILDER_REFUSED = [
    # git_branch-like refs after '#'
    'git://h.example.com/r.git#-oProxyCommand=id',
    'git://h.example.com/r.git#a..b',
    'git://h.example.com/r.git#@{-1}',
    'git://h.example.com/r.git#a@{1}',
    'git://h.example.com/r.git#a.lock',
    'git://h.example.com/r.git#a\x7fb',
    'git://h.example.com/r.git#main\n',
    'git://h.example.com/r.git#+main',
    'git://h.example.com/r.git#a/.b',
    'git://h.example.com/r.git#a/',
    'git://h.example.com/r.git?../../..#main',
    'git://h.example.com/r.git?a/.git#main',
    'git+ssh://-oProxyCommand=id/r.git#main',
    'git+ssh://-oProxyCommand=id@h.example.com/r.git#main',
    'git://[::1/r.git#main',
    'git://[::1]x/r.git#main',
    'git://h.example.com:99999/r.git#main',
    'git://h.example.com:0/r.git#main',
    'git://h.example.com:/r.git#main',
    'git://-h.example.com/r.git#main',
    'git://h.example.com/../../etc#main',
    'git://h.example.com/a/%2e%2e/b#main',
    'git://h.example.com/a//b#main',
    'git://h.example.com/r\u00e9.git#main',
    'git+https://TOKEN@h.example.com/r.git#main',
    'git+http://TOKEN@h.example.com/r.git#main',
    'git://TOKEN@h.example.com/r.git#main',
    'git+https://user:pw@h.example.com/r.git#main',
    'git+ssh://user:pw@h.example.com/r.git#main',
    'git://a@b@h.example.com/r.git#main',
]
ACCEPTED = [
    'git://h.example.com/r.git#main',
    'git+https://h.example.com/group/r.git?sub/dir#f40',
    'git+ssh://git@h.example.com/r.git#origin/main',
    'git://[::1]:9418/r.git#' + 'a' * 40,
    'git://10.0.0.1:1/r#v1.0',
    'git+https://h.example.com:65535/r.git#feature/x-1',
]


@pytest.mark.parametrize('url', BUILDER_REFUSED)
def test_hub_cli_and_builder_refuse_the_same_urls(url, tmp_path):
    with pytest.raises(OptionError) as hub:
        scmurl.check_source_url(url)
    assert 'pw' not in str(hub.value) and 'TOKEN' not in str(hub.value)
    # the builder (kojid's settings, no network needed: refused before any fetch)
    opts = make_task_handler_options(tmp_path, allowed_scms='*:/*')
    with pytest.raises(SourceError) as builder:
        source.make_scm(url, opts)
    assert 'pw' not in str(builder.value) and 'TOKEN' not in str(builder.value)


@pytest.mark.parametrize('url', ACCEPTED)
def test_hub_and_builder_accept_the_same_urls(url, tmp_path):
    assert scmurl.check_source_url(url) == url
    opts = make_task_handler_options(tmp_path, allowed_scms='*:/*')
    assert source.make_scm(url, opts).scmtype in ('GIT', 'GIT+SSH')


def _check_ref_format(name):
    return subprocess.run(['git', 'check-ref-format', '--branch', name],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


ref_chars = st.sampled_from(list('ab09-./@{}+:~^?*[\\ #\x7f\x00\n') + ['.lock', '..', '@{'])


@settings(max_examples=300, deadline=None)
@given(st.lists(ref_chars, min_size=1, max_size=12).map(''.join))
def test_ref_rule_is_stricter_than_git(name):
    """Whatever the rule accepts, git accepts as a branch name (no NUL: argv cannot)."""
    try:
        scmurl.check_ref_name(name)
    except OptionError:
        return
    assert '\x00' not in name and _check_ref_format(name), name


@pytest.mark.parametrize('branch', ['-x', '../../etc', 'a@{1}', 'a.lock', 'main\n',
                                    'refs/heads/main', 'origin/refs/heads/x', 'a' * 40])
def test_git_branch_refused_by_hub_and_builder(branch):
    with pytest.raises(OptionError):
        options.validate('binary', {'git_branch': branch})
    with pytest.raises(SourceError):
        source._check_branch(branch)


def test_redaction_masks_tokens_and_passwords():
    text = ('fetch https://TOKEN@h/x and git+https://u:pw@h/y, git+ssh://git@h/z, '
            'docker://img@sha256:1 ftp://anon@h/f')
    out = scmurl.redact(text)
    assert 'TOKEN' not in out and 'pw' not in out and 'anon' not in out
    assert 'git+ssh://git@h/z' in out and 'docker://img@sha256:1' in out
    assert scmurl.redact('https://u:p@ss@h/x') == 'https://***@h/x'
    assert scmurl.redact('git+https://a@b@h/x y') == 'git+https://***@h/x y'


# ------------------------------------------------------------------ allow_password

class _DumbGit(http.server.SimpleHTTPRequestHandler):
    """git's dumb HTTP protocol: static files; records the Authorization headers."""

    seen = []

    def do_GET(self):
        auth = self.headers.get('Authorization')
        self.seen.append(auth)
        if auth is None:   # git sends the URL's credentials when challenged
            self.send_response(401)
            self.send_header('WWW-Authenticate', 'Basic realm="git"')
            self.send_header('Content-Length', '0')
            self.end_headers()
            return None
        return http.server.SimpleHTTPRequestHandler.do_GET(self)

    def log_message(self, *args):
        pass


@pytest.fixture
def dumb_http_repo(tmp_path):
    daemon = GitDaemon(tmp_path / 'git')
    daemon.create('ctx', [{'Dockerfile': b'FROM scratch\nLABEL a=1\nCOPY . /src\n',
                           'data.txt': b'x\n'}])
    bare = os.path.join(daemon.repos, 'ctx.git')
    git('update-server-info', cwd=bare)
    handler = functools.partial(_DumbGit, directory=daemon.repos)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield 'git+http://bob:S3cretPw@127.0.0.1:%d/ctx.git#main' % server.server_port
    server.shutdown()
    server.server_close()


def test_password_is_used_but_not_left_in_the_build_context(dumb_http_repo, tmp_path):
    _DumbGit.seen[:] = []
    opts = make_task_handler_options(tmp_path, allowed_scms='127.0.0.1*:/*',
                                     allow_password_in_scm_url=True)
    checkout = source.fetch_full_tree(dumb_http_repo, str(tmp_path / 'work'), opts)
    expected = 'Basic ' + base64.b64encode(b'bob:S3cretPw').decode()
    assert expected in _DumbGit.seen   # git did use the credentials
    assert 'S3cret' not in checkout.source
    found = []
    for root, _, files in os.walk(checkout.repodir):
        for name in files:
            with open(os.path.join(root, name), 'rb') as handle:
                if b'S3cretPw' in handle.read():
                    found.append(os.path.join(root, name))
    assert found == []
    with open(os.path.join(checkout.repodir, '.git', 'config')) as handle:
        config = handle.read()
    assert 'http://127.0.0.1:' in config and 'bob' not in config


def test_no_python_regex_anchored_with_dollar():
    """`$` also matches before a final newline ('main\\n' passes '^main$'): Python-only
    patterns end with \\Z (or use fullmatch); patterns shared with a JSON schema (ECMA
    262 has no \\Z) end with $(?!\\n)."""
    import re as re_mod
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    dollar = re_mod.compile(r'''(?<![\\\[])\$['"]''')   # not escaped, not '[$'
    found = []
    for top in ('koji_containerbuild', 'builder', 'hub', 'cli'):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for name in names:
                if not name.endswith('.py'):
                    continue
                path = os.path.join(dirpath, name)
                with open(path) as handle:
                    for number, line in enumerate(handle, 1):
                        if ('re.' in line or '_RE' in line or 'PATTERN' in line) \
                                and dollar.search(line) and '(?!\\n)' not in line \
                                and '\\n?$' not in line:
                            found.append('%s:%d' % (os.path.relpath(path, root), number))
    assert found == []


url_parts = st.tuples(
    st.sampled_from(list(scmurl.GIT_SCHEMES) + ['https://', 'git+ftp://']),
    st.sampled_from(['', 'git@', 'TOKEN@', 'u:p@', '-o@', 'a@b@']),
    st.sampled_from(['h.example.com', '10.1.2.3', '[::1]', '[::1', '-h', 'h_1', 'h..x', '']),
    st.sampled_from(['', ':22', ':0', ':65535', ':65536', ':', ':x']),
    st.sampled_from(['/r.git', '/a/b', '/', '/a//b', '/a/../b', '/%2e%2e/x', '/a%0a', '/a;b',
                     '/a b', '/r\u00e9']),
    st.sampled_from(['', '?sub', '?a/b', '?../x', '?.git', '?a*']),
    st.sampled_from(['#main', '#origin/main', '#' + 'a' * 40, '#-x', '#a..b', '#a.lock',
                     '#@{-1}', '#main\n', '#', '#a#b', '#+m', '#a\x7f']))


@settings(max_examples=400, deadline=None)
@given(url_parts)
def test_what_the_hub_accepts_the_builder_accepts_alike(parts):
    """scmurl accepting a URL means kojid's SCM parses it to the same parts, and the
    builder's own checks (make_scm, check_ref, check_module) accept it."""
    import koji.daemon
    url = ''.join(parts)
    try:
        parsed = scmurl.parse_source_url(url)
    except OptionError:
        return
    scm = koji.daemon.SCM(url)
    assert (scm.scheme, scm.host, scm.revision) == (parsed.scheme, parsed.host, parsed.ref)
    assert scm.user == parsed.user
    assert scm.repository.rstrip('/') == parsed.path.rstrip('/')
    source.check_ref(scm.revision)
    source.check_module(scm.module)


def test_token_user_with_allow_password_is_used_and_removed(dumb_http_repo, tmp_path):
    url = dumb_http_repo.replace('bob:S3cretPw@', 'T0kenXyz@')
    opts = make_task_handler_options(tmp_path, allowed_scms='127.0.0.1*:/*',
                                     allow_password_in_scm_url=True)
    _DumbGit.seen[:] = []
    checkout = source.fetch_full_tree(url, str(tmp_path / 'work'), opts)
    assert any(a and a.startswith('Basic ') for a in _DumbGit.seen)
    assert 'T0ken' not in checkout.source
    for root, _, files in os.walk(checkout.repodir):
        for name in files:
            with open(os.path.join(root, name), 'rb') as handle:
                assert b'T0kenXyz' not in handle.read(), os.path.join(root, name)
    # without the builder's setting, the same URL is refused before any fetch
    with pytest.raises(SourceError, match='user name before the host') as info:
        source.fetch_full_tree(url, str(tmp_path / 'work2'),
                               make_task_handler_options(tmp_path, allowed_scms='*:/*'))
    assert 'T0ken' not in str(info.value)
