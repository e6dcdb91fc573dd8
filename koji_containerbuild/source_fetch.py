"""Fetching one commit of a git repository for a container build (source.py's git side).

fetch_source fetches only the files the pre-build checks read (source.CHECK_FILES, a sparse
partial fetch); fetch_full_tree fetches the whole tree of the commit (a native build
context). Both check the SCM URL with source.make_scm / assert_scm_allowed first and, with
git_branch, check that the commit is on that branch. Kept apart from source.py, which reads
the fetched files and derives the image identity: this module is the git protocol dance
(fetch fallbacks for servers without filters, abbreviated ids, branch deepening).

Every failure is an errors.SourceError whose message never contains credentials from the URL.
"""

import os
import re
import shutil

from koji_containerbuild import gitfetch, scmurl
from koji_containerbuild.errors import OptionError, SourceError
from koji_containerbuild.source import (CHECK_FILES, CHECKOUT_DIR, DOCKERFILE, SourceCheckout,
                                        _git_uri, _inside, _regular_file, _secrets,
                                        assert_scm_allowed, check_module, check_ref, make_scm)

_FULL_SHA = re.compile(r'^(?:[0-9a-f]{40}|[0-9a-f]{64})\Z')
_ABBREV_SHA = re.compile(r'^[0-9a-f]{4,39}\Z')
_NOT_FOUND = ("couldn't find remote ref", 'not our ref', 'unadvertised object',
              'no such remote ref')
_UNREACHABLE = ('could not read from remote', 'unable to connect', 'unable to access',
                'connection refused', 'not allowed', 'does not appear to be a git repository',
                'repository not found')


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
