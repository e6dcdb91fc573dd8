"""The SCM side of a container build: SCM URL rules and fetching one git commit.

make_scm / assert_scm_allowed check an SCM URL with kojid's koji.daemon.SCM and its
allowed-SCM settings (config and/or build_from_scm policy); check_ref / check_module the
parts handed to git. fetch_source fetches only the files the pre-build checks read
(source.CHECK_FILES, a sparse partial fetch); fetch_full_tree the whole tree of the commit
(a native build context); with git_branch, the commit must be on that branch. Kept apart
from source.py, which reads the fetched files and derives the image identity: this module
is the git protocol dance (fetch fallbacks for servers without filters, abbreviated ids,
branch deepening). Every name here stays importable from source.

Every failure is an errors.SourceError whose message never contains credentials from the URL.
"""

import os
import re
import shutil
import urllib.parse

import koji
import koji.daemon

from koji_containerbuild import gitfetch, scmurl
from koji_containerbuild.errors import ConfigError, OptionError, SourceError
from koji_containerbuild.source import (CHECK_FILES, CHECKOUT_DIR, DOCKERFILE, SourceCheckout,
                                        _inside, _regular_file)

_FULL_SHA = re.compile(r'^(?:[0-9a-f]{40}|[0-9a-f]{64})\Z')
_ABBREV_SHA = re.compile(r'^[0-9a-f]{4,39}\Z')
_NOT_FOUND = ("couldn't find remote ref", 'not our ref', 'unadvertised object',
              'no such remote ref')
_UNREACHABLE = ('could not read from remote', 'unable to connect', 'unable to access',
                'connection refused', 'not allowed', 'does not appear to be a git repository',
                'repository not found')


# ------------------------------------------------------------------ SCM rules

def _secrets(url):
    """Passwords (and tokens: a bare user outside git+ssh) of a URL, raw and unquoted, to
    scrub from any message."""
    netloc = url.split('://', 1)[-1].split('/', 1)[0]
    if '@' not in netloc:
        return []
    userinfo = netloc.rsplit('@', 1)[0]
    found = set()
    # Every "user:password" piece, even in malformed netlocs with several '@'.
    for piece in [userinfo] + userinfo.split('@'):
        if ':' in piece:
            password = piece.split(':', 1)[1]
            found.update((password, urllib.parse.unquote(password)))
        elif not url.startswith(scmurl.USER_SCHEMES):
            # a bare user outside ssh is a token (https://TOKEN@host)
            found.update((piece, urllib.parse.unquote(piece)))
    return sorted((s for s in found if s), key=len, reverse=True)


def make_scm(scm_url, options):
    """koji.daemon.SCM for `scm_url` (git only) or SourceError.

    The URL is first checked with the rules the hub and the CLI use (scmurl), with the
    builder's allow_password_in_scm_url: what the hub accepts, this accepts.
    """
    secrets = _secrets(scm_url) if isinstance(scm_url, str) else []
    if not isinstance(scm_url, str) or not scm_url:
        raise SourceError('Invalid SCM URL: a non-empty string is required')
    allow_password = bool(getattr(options, 'allow_password_in_scm_url', False))
    try:
        scmurl.parse_source_url(scm_url, allow_password=allow_password)
    except OptionError as exc:
        raise SourceError(scmurl.redact(str(exc), secrets))
    try:
        scm = koji.daemon.SCM(scm_url, allow_password=allow_password)
    except koji.GenericError as exc:
        raise SourceError('Invalid SCM URL %s: %s'
                          % (scmurl.redact(scm_url, secrets), scmurl.redact(str(exc), secrets)))
    if scm.scmtype not in ('GIT', 'GIT+SSH'):
        raise SourceError('Invalid SCM URL %s: container builds need a git repository, '
                          'not %s' % (scmurl.redact(scm_url, secrets), scm.scmtype))
    return scm


def assert_scm_allowed(scm, options, session=None, policy_data=None):
    """kojid's allowed-SCM check (config and/or build_from_scm policy) as SourceError."""
    secrets = _secrets(scm.url)
    try:
        scm.assert_allowed(allowed=getattr(options, 'allowed_scms', '') or '',
                           session=session,
                           by_config=getattr(options, 'allowed_scms_use_config', True),
                           by_policy=getattr(options, 'allowed_scms_use_policy', False),
                           policy_data=policy_data)
    except koji.ConfigurationError as exc:
        raise ConfigError('Allowed-SCM check: %s' % scmurl.redact(str(exc), secrets))
    except koji.GenericError as exc:
        raise SourceError('SCM not allowed: %s' % scmurl.redact(str(exc), secrets))


def _git_uri(scm, with_password=True):
    """The URL handed to git, the way kojid's SCM.checkout builds it."""
    user = scm.user
    if user and not with_password:
        # ssh: the login name stays; elsewhere a user part is a token: all of it goes
        user = user.split(':', 1)[0] if scm.scmtype == 'GIT+SSH' else None
    if scm.scmtype == 'GIT+SSH':
        return 'git+ssh://%s@%s%s' % (user, scm.host, scm.repository)
    scheme = scm.scheme.split('+', 1)[1] if '+' in scm.scheme else scm.scheme
    if user:
        return '%s%s@%s%s' % (scheme, user, scm.host, scm.repository)
    return '%s%s%s' % (scheme, scm.host, scm.repository)


def check_ref(ref):
    """A revision that is safe to pass to git fetch (scmurl.check_ref_name, SourceError)."""
    if isinstance(ref, str) and ref.startswith('origin/'):   # kojid accepts origin/<branch>
        ref = ref[len('origin/'):]
    try:
        return scmurl.check_ref_name(ref)
    except OptionError as exc:
        raise SourceError(str(exc))


def check_module(module):
    """The ?module part (scmurl.check_module) as SourceError."""
    try:
        return scmurl.check_module(module)
    except OptionError as exc:
        raise SourceError(str(exc))


# ------------------------------------------------------------------ fetching

def fetch_source(scm_url, workdir, options, session=None, policy_data=None, logger=None,
                 flatpak=False, timeout=gitfetch.DEFAULT_TIMEOUT, dirname=CHECKOUT_DIR,
                 git_branch=None):
    """Fetch only the files the pre-build checks read (see CHECK_FILES) at one commit.

    git_branch: the branch the commit must be on; it is fetched as
    refs/remotes/origin/<branch> (for `git branch -r --contains HEAD`, e.g. kojid's scm
    policy) and a commit not on it is a SourceError.
    """
    return _checkout(scm_url, workdir, options, session, policy_data, logger,
                     sparse=True, flatpak=flatpak, timeout=timeout, dirname=dirname,
                     git_branch=git_branch)


def fetch_full_tree(scm_url, workdir, options, session=None, policy_data=None, logger=None,
                    flatpak=False, timeout=gitfetch.DEFAULT_TIMEOUT, dirname=CHECKOUT_DIR,
                    git_branch=None):
    """Fetch the whole tree of one commit (shallow), e.g. as a build context."""
    return _checkout(scm_url, workdir, options, session, policy_data, logger,
                     sparse=False, flatpak=flatpak, timeout=timeout, dirname=dirname,
                     git_branch=git_branch)


def _checkout(scm_url, workdir, options, session, policy_data, logger, sparse, flatpak,
              timeout, dirname, git_branch=None):
    scm = make_scm(scm_url, options)
    assert_scm_allowed(scm, options, session=session, policy_data=policy_data)
    ref = check_ref(scm.revision)
    module = check_module(scm.module)
    branch = _check_branch(git_branch)
    repodir = os.path.join(workdir, dirname)
    _fresh_dir(repodir)
    try:
        return _fetch_into(scm, scm_url, repodir, ref, module, logger, sparse, flatpak,
                           timeout, branch)
    except BaseException:
        # Leave nothing half-fetched behind (also on kojid's KeyboardInterrupt).
        shutil.rmtree(repodir, ignore_errors=True)
        raise


def _fetch_into(scm, scm_url, repodir, ref, module, logger, sparse, flatpak, timeout,
                branch=None):
    git = gitfetch.Git(repodir, scm.scheme, secrets=_secrets(scm_url), timeout=timeout,
                       logger=logger)
    git_uri = _git_uri(scm)
    git.run('init', '-q', what='git init')
    git.run('remote', 'add', 'origin', git_uri, what='git remote add')
    if sparse:
        prefix = '/%s/' % module if module else '/'
        with open(os.path.join(repodir, '.git', 'info', 'sparse-checkout'), 'w') as handle:
            handle.write(''.join(prefix + name + '\n' for name in CHECK_FILES))
        git.run('config', 'core.sparseCheckout', 'true', what='git config')
    commit = _fetch_commit(git, ref, partial=sparse, what=scmurl.redact(scm_url, git.secrets),
                           branch=branch)
    git.run('checkout', '-q', '--detach', commit, what='git checkout of %s' % commit)
    if branch:
        _fetch_branch(git, ref, branch, commit, partial=sparse,
                      what=scmurl.redact(scm_url.rsplit('#', 1)[0], git.secrets))
    if scm.user and (':' in scm.user or scm.scmtype != 'GIT+SSH'):
        # allow_password_in_scm_url: the password (or token) must not stay in .git/config,
        # which a build context holds (COPY . bakes it into the image). Nothing is
        # fetched later.
        git_uri = _git_uri(scm, with_password=False)
        git.run('remote', 'set-url', 'origin', git_uri, what='git remote set-url')
    srcdir = _inside(repodir, module, 'the subdirectory %r' % module)
    if not os.path.isdir(srcdir):
        raise SourceError('The subdirectory %r does not exist in %s at commit %s'
                          % (module, scmurl.redact(scm.url, git.secrets), commit))
    dockerfile_path = _regular_file(srcdir, DOCKERFILE)
    if dockerfile_path is None and not flatpak:
        raise SourceError('No Dockerfile in %s at commit %s%s'
                          % (scmurl.redact(scm.url, git.secrets), commit,
                             ' (subdirectory %r)' % module if module else ''))
    source = scmurl.redact(scm_url.rsplit('#', 1)[0] + '#' + commit, git.secrets)
    if logger is not None:
        logger.info('Fetched %s (%s)', source, 'check files only' if sparse else 'full tree')
    return SourceCheckout(srcdir=srcdir, commit=commit, url=scm_url, source=source,
                          dockerfile_path=dockerfile_path, repodir=repodir, git_uri=git_uri,
                          module=module, complete=not sparse)


def _check_branch(branch):
    """A git_branch safe to put in a refspec, or None."""
    if branch is None:
        return None
    if not isinstance(branch, str) or not branch:
        raise SourceError('Invalid git branch %r: a branch name is required' % (branch,))
    try:
        return scmurl.check_branch_name(branch)
    except OptionError as exc:
        raise SourceError(str(exc))


# Depths tried, in order, when the date-bounded fetch did not reach the commit (commits
# only when the server filters, so even the last costs a few MiB at most).
BRANCH_DEPTHS = (64, 4096, 65536)


def _fetch_branch(git, ref, branch, commit, partial, what):
    """Fetch `branch` as refs/remotes/origin/<branch> and check `commit` is on it.

    One fetch usually does it: the branch history since the commit's committer date
    (just the tip when the commit is the tip, what fedpkg sends). If that does not reach
    the commit (clock skew, a server without deepen-since, or a commit not on the
    branch), the history is deepened (BRANCH_DEPTHS) until the commit is an ancestor,
    the branch's root is reached, or the last depth is exhausted. osbs-client refuses a
    commit that is not on the branch (OsbsCommitNotFound) only after cloning; this fails
    first, cheaply.
    """
    remote_ref = 'refs/remotes/origin/' + branch
    if ref == branch:
        # The commit is that branch's tip, just fetched: no second round trip.
        git.run('update-ref', remote_ref, commit, what='git update-ref')
        return
    flags = ('--filter=tree:0',) if partial else ()
    refspec = _branch_refspec(branch)

    def fetch(limit):
        rc, _, stderr = git.run(*(('fetch', '--no-tags', limit) + flags
                                  + ('origin', refspec)), check=False)
        if rc != 0 and _is_not_found(stderr):
            raise SourceError('Branch %r was not found in %s' % (branch, what))
        return rc, stderr

    def on_branch():
        return git.run('merge-base', '--is-ancestor', commit, remote_ref,
                       check=False)[0] == 0

    if _rev_parse(git, remote_ref) and on_branch():
        return   # the tip came with the commit (_fetch_commit) and is (or descends from) it
    _, out, _ = git.run('log', '-1', '--format=%ct', commit, what='git log')
    since = int(out.strip() or 0) - 1
    rc, _ = fetch('--shallow-since=%d' % since)
    if rc == 0 and on_branch():
        return
    have = 0
    if rc == 0:
        have = int(git.run('rev-list', '--count', remote_ref, what='git rev-list')[1] or 0)
    for depth in BRANCH_DEPTHS:
        if depth <= have:
            continue   # --depth would shorten what is already here
        rc, stderr = fetch('--depth=%d' % depth)
        if rc != 0:
            raise SourceError('Fetching branch %r of %s failed: %s'
                              % (branch, what, gitfetch.summarize(stderr)))
        if on_branch():
            return
        have = int(git.run('rev-list', '--count', remote_ref, what='git rev-list')[1] or 0)
        if have < depth:
            break   # the whole branch is here: the commit is not on it
    else:
        raise SourceError('Commit %s is not within the last %d commits of branch %r of %s'
                          % (commit, BRANCH_DEPTHS[-1], branch, what))
    raise SourceError('Commit %s is not on branch %r of %s' % (commit, branch, what))


def _fresh_dir(path):
    # A re-run of the same task id reuses the work directory: start clean.
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    os.makedirs(path)


def _attempts(partial):
    if partial:
        return (('--depth=1', '--filter=blob:none'), ('--depth=1',), ())
    return (('--depth=1',), ())


def _is_not_found(stderr):
    lowered = stderr.lower()
    return any(marker in lowered for marker in _NOT_FOUND)


def _try_fetch(git, ref, partial, extra=()):
    """Fetch `ref` (and `extra` refspecs) as cheaply as the server allows; (ok, stderr)."""
    stderr = ''
    for flags in _attempts(partial):
        rc, _, stderr = git.run(*(('fetch', '--no-tags') + flags + ('origin', ref)
                                  + tuple(extra)), check=False)
        if rc == 0:
            return True, stderr
        lowered = stderr.lower()
        if _is_not_found(stderr) or any(m in lowered for m in _UNREACHABLE):
            # Not a capability problem: a plainer fetch would fail the same way.
            return False, stderr
    return False, stderr


def _fetch_all(git, partial):
    """Every branch and tag, commits only when the server can filter (abbreviated sha)."""
    flags = ('--filter=tree:0',) if partial else ()
    git.run(*(('fetch', '--no-tags') + flags +
              ('origin', '+refs/heads/*:refs/remotes/origin/*', '+refs/tags/*:refs/tags/*')),
            what='git fetch of all branches and tags')


def _rev_parse(git, expr):
    rc, out, _ = git.run('rev-parse', '--verify', '--quiet', expr, check=False)
    sha = out.strip()
    return sha if rc == 0 and _FULL_SHA.match(sha) else None


def _branch_refspec(branch):
    return '+refs/heads/%s:refs/remotes/origin/%s' % (branch, branch)


def _fetch_commit(git, ref, partial, what, branch=None):
    if _FULL_SHA.match(ref):
        ok = False
        if branch:
            # The branch tip in the same round trip: usually it is this very commit.
            ok, stderr = _try_fetch(git, ref, partial, (_branch_refspec(branch),))
        if not ok:   # (without the branch, in case that is what is missing)
            ok, stderr = _try_fetch(git, ref, partial)
        if not ok and not _is_not_found(stderr):
            raise SourceError('Fetching %s failed: %s' % (what, gitfetch.summarize(stderr)))
        if not ok:
            # Servers that refuse unadvertised objects: look through all branches/tags.
            _fetch_all(git, partial)
        sha = _rev_parse(git, ref + '^{commit}')
        if sha is None:
            raise SourceError('Commit %s was not found in %s' % (ref, what))
        return sha
    ok, stderr = _try_fetch(git, ref, partial)
    if ok:
        sha = _rev_parse(git, 'FETCH_HEAD^{commit}')
        if sha is None:
            raise SourceError('Revision %r of %s is not a commit' % (ref, what))
        return sha
    if not _is_not_found(stderr):
        raise SourceError('Fetching %s failed: %s' % (what, gitfetch.summarize(stderr)))
    if not _ABBREV_SHA.match(ref):
        raise SourceError('Revision %r was not found in %s (no such branch or tag)'
                          % (ref, what))
    # An abbreviated commit id: servers only answer full ids, so resolve it locally.
    _fetch_all(git, partial)
    rc, out, err = git.run('rev-parse', '--verify', '--quiet', ref + '^{commit}',
                           check=False)
    sha = out.strip()
    if rc != 0 or not _FULL_SHA.match(sha):
        if 'ambiguous' in err:
            raise SourceError('Abbreviated commit %r is ambiguous in %s: use more digits'
                              % (ref, what))
        raise SourceError('Revision %r was not found in %s (no branch, tag or commit)'
                          % (ref, what))
    # Trees and blobs of just that commit in one go, instead of lazily one by one.
    _try_fetch(git, sha, partial)
    return sha
