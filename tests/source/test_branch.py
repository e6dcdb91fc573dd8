"""fetch_source(git_branch=...): the branch is fetched as refs/remotes/origin/<branch>
(what kojid's scm policy reads with `git branch -r --contains HEAD`) and the commit must
be on it. Real repositories served by git daemon."""

import os
import subprocess

import pytest

from koji_containerbuild import source, source_fetch
from koji_containerbuild.errors import SourceError
from tests.support.gitserver import git, git_env


def fast_import(git_daemon, name, commits):
    """Bare repo <name>.git from [(branch, parent index or None, committer time)].

    Each commit adds a file; the first also a Dockerfile. Returns the shas in order.
    """
    bare = os.path.join(git_daemon.repos, name + '.git')
    git('init', '-q', '--bare', '-b', 'main', bare)
    stream = []
    for index, (branch, parent, when) in enumerate(commits):
        files = {'f%d' % index: b'%d\n' % index}
        if index == 0:
            files['Dockerfile'] = b'FROM x\nLABEL com.redhat.component=b name=b version=1\n'
        message = b'commit %d' % index
        stream.append(b'commit refs/heads/%s\nmark :%d\n' % (branch.encode(), index + 1))
        stream.append(b'committer T <t@example.com> %d +0000\n' % when)
        stream.append(b'data %d\n%s\n' % (len(message), message))
        if parent is not None:
            stream.append(b'from :%d\n' % (parent + 1))
        for path, data in files.items():
            stream.append(b'M 100644 inline %s\ndata %d\n%s\n' % (path.encode(), len(data),
                                                                   data))
    stream.append(b'done\n')
    subprocess.run(['git', 'fast-import', '--quiet', '--done', '--export-marks=marks'],
                   cwd=bare, input=b''.join(stream), env=git_env(), check=True)
    git('config', 'uploadpack.allowFilter', 'true', cwd=bare)
    marks = dict(line.split() for line in open(os.path.join(bare, 'marks')).read().split('\n')
                 if line)
    return [marks[':%d' % (i + 1)] for i in range(len(commits))]


T0 = 1700000000


@pytest.fixture(scope='module')
def branchy(git_daemon):
    """main: c0..c4, one hour apart; side: c1 + s1. Returns {'main': [...], 'side': sha}."""
    shas = fast_import(git_daemon, 'branchy', [
        ('main', None, T0), ('main', 0, T0 + 3600), ('main', 1, T0 + 7200),
        ('main', 2, T0 + 10800), ('main', 3, T0 + 14400), ('side', 1, T0 + 5000)])
    return {'main': shas[:5], 'side': shas[5]}


@pytest.fixture(scope='module')
def skewed(git_daemon):
    """main: c0..c3 where c2 and c3 have older committer dates than c1 (clock skew)."""
    return fast_import(git_daemon, 'skewed', [
        ('main', None, T0), ('main', 0, T0 + 7200), ('main', 1, T0 + 100),
        ('main', 2, T0 + 200)])


def contains_head(repodir):
    """What the scm policy plugin runs in the checkout."""
    out = subprocess.run(['git', 'branch', '-r', '--contains', 'HEAD'], cwd=repodir,
                         env={'PATH': os.environ['PATH'], 'GIT_CONFIG_GLOBAL': '/dev/null',
                              'GIT_CONFIG_NOSYSTEM': '1', 'HOME': repodir,
                              'GIT_NO_LAZY_FETCH': '1'},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    return [line.strip() for line in out.stdout.decode().splitlines()]


def test_without_branch_no_remote_branches(git_daemon, branchy, options, workdir):
    # what the policy saw before: a commit-sha fetch creates no refs/remotes/origin/*
    co = source.fetch_source(git_daemon.url('branchy', ref=branchy['main'][4]), workdir,
                             options)
    assert contains_head(co.repodir) == []


@pytest.mark.parametrize('index', [4, 2, 0])
def test_commit_sha_on_the_branch(git_daemon, branchy, options, workdir, index):
    sha = branchy['main'][index]
    co = source.fetch_source(git_daemon.url('branchy', ref=sha), workdir, options,
                             git_branch='main')
    assert co.commit == sha
    assert contains_head(co.repodir) == ['origin/main']
    if index == 4:
        # the tip (what fedpkg usually sends): one commit, still shallow
        assert git('rev-list', '--count', 'origin/main', cwd=co.repodir).strip() == '1'
        assert os.path.exists(os.path.join(co.repodir, '.git', 'shallow'))


def test_side_branch(git_daemon, branchy, options, workdir):
    co = source.fetch_source(git_daemon.url('branchy', ref=branchy['side']), workdir,
                             options, git_branch='side')
    assert contains_head(co.repodir) == ['origin/side']


@pytest.mark.parametrize('ref,branch', [('side', 'main'), ('main', 'side')])
def test_commit_not_on_the_branch(git_daemon, branchy, options, workdir, ref, branch):
    sha = branchy['side'] if ref == 'side' else branchy['main'][3]
    with pytest.raises(SourceError, match='Commit %s is not on branch %r of git://'
                       % (sha, branch)):
        source.fetch_source(git_daemon.url('branchy', ref=sha), workdir, options,
                            git_branch=branch)
    assert not os.path.exists(os.path.join(workdir, 'source'))   # nothing half-done


def test_only_the_history_since_the_commit_is_fetched(git_daemon, branchy, options,
                                                     workdir):
    co = source.fetch_source(git_daemon.url('branchy', ref=branchy['main'][2]), workdir,
                             options, git_branch='main')
    # c4, c3 and c2 (the date bound), not c1 and c0
    assert git('rev-list', '--count', 'origin/main', cwd=co.repodir).strip() == '3'


def test_clock_skew_falls_back_to_deepening(git_daemon, skewed, options, workdir,
                                            monkeypatch):
    # c1 is newer than the tip: the date-bounded fetch cannot reach it
    monkeypatch.setattr(source_fetch, 'BRANCH_DEPTHS', (2, 8))
    co = source.fetch_source(git_daemon.url('skewed', ref=skewed[1]), workdir, options,
                             git_branch='main')
    assert contains_head(co.repodir) == ['origin/main']


def test_search_depth_is_bounded(git_daemon, skewed, options, workdir, monkeypatch):
    monkeypatch.setattr(source_fetch, 'BRANCH_DEPTHS', (2,))
    with pytest.raises(SourceError, match='not within the last 2 commits of branch'):
        source.fetch_source(git_daemon.url('skewed', ref=skewed[1]), workdir, options,
                            git_branch='main')


def test_unknown_branch(git_daemon, branchy, options, workdir):
    with pytest.raises(SourceError, match="Branch 'nope' was not found in git://"):
        source.fetch_source(git_daemon.url('branchy', ref=branchy['main'][4]), workdir,
                            options, git_branch='nope')


@pytest.mark.parametrize('ref', ['main', 'origin/main'])
def test_ref_is_the_branch(git_daemon, branchy, options, workdir, ref):
    co = source.fetch_source(git_daemon.url('branchy', ref=ref), workdir, options,
                             git_branch='main')
    assert co.commit == branchy['main'][4]
    assert contains_head(co.repodir) == ['origin/main']


def test_tag_on_the_branch_partial_fetch_stays_small(git_daemon, options, workdir):
    # demo: v1 is the first commit; its 1 MiB blob must not come with the branch history
    co = source.fetch_source(git_daemon.url('demo', ref='v1'), workdir, options,
                             git_branch='main')
    assert contains_head(co.repodir) == ['origin/main']
    env = {'PATH': os.environ['PATH'], 'GIT_NO_LAZY_FETCH': '1', 'HOME': co.repodir,
           'GIT_CONFIG_GLOBAL': '/dev/null'}
    present = subprocess.run(['git', 'cat-file', '-e', git_daemon.big_blob], cwd=co.repodir,
                             env=env, stderr=subprocess.DEVNULL).returncode == 0
    assert not present


def test_server_without_filter_support(git_daemon, options, workdir):
    bare = os.path.join(git_daemon.repos, 'demo-nofilter.git')
    old = git('rev-parse', 'main~1', cwd=bare).strip()
    co = source.fetch_source(git_daemon.url('demo-nofilter', ref=old), workdir, options,
                             git_branch='main')
    assert contains_head(co.repodir) == ['origin/main']


def test_full_tree_checks_the_branch_too(git_daemon, branchy, options, workdir):
    with pytest.raises(SourceError, match='is not on branch'):
        source.fetch_full_tree(git_daemon.url('branchy', ref=branchy['side']), workdir,
                               options, git_branch='main')


@pytest.mark.parametrize('branch', ['', '-x', '--upload-pack=x', 'refs/heads/main', 'a..b',
                                    'a:b', 'a b', '0' * 40, 7])
def test_bad_branch_names_refused_before_git(git_daemon, branchy, options, workdir, branch):
    with pytest.raises(SourceError, match='Invalid git'):
        source.fetch_source(git_daemon.url('branchy', ref=branchy['main'][4]), workdir,
                            options, git_branch=branch)
    assert not os.path.exists(os.path.join(workdir, 'source'))
