"""fetch_source / fetch_full_tree against real repositories served by git daemon."""

import logging
import os
import socket
import subprocess
import threading

import koji
import pytest

from koji_containerbuild import source
from koji_containerbuild.errors import ConfigError, SourceError
from tests.support.gitserver import git
from tests.support.net import free_port


def _objects_present(repodir, sha):
    proc = subprocess.run(['git', 'cat-file', '-e', sha], cwd=repodir,
                          env={'PATH': os.environ['PATH'], 'GIT_NO_LAZY_FETCH': '1',
                               'GIT_CONFIG_GLOBAL': '/dev/null', 'HOME': repodir},
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc.returncode == 0


def _files(path):
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != '.git']
        found.extend(os.path.relpath(os.path.join(root, f), path) for f in files)
    return sorted(found)


def test_branch_fetches_only_check_files(git_daemon, options, workdir, logger):
    co = source.fetch_source(git_daemon.url('demo'), workdir, options, logger=logger)
    head = git_daemon.shas['demo'][1]
    assert co.commit == head
    assert co.source == git_daemon.url('demo', ref=head)
    assert co.url == git_daemon.url('demo')
    assert co.dockerfile_path == os.path.join(co.srcdir, 'Dockerfile')
    assert co.srcdir == co.repodir == os.path.join(workdir, 'source')
    assert _files(co.repodir) == ['Dockerfile', 'additional-tags']
    assert not co.complete
    # partial and shallow: the 1 MiB blob never crossed the wire, one commit only
    assert not _objects_present(co.repodir, git_daemon.big_blob)
    assert os.path.exists(os.path.join(co.repodir, '.git', 'shallow'))
    assert source.read_labels(co.dockerfile_path)['version'] == '1.0'


def test_server_without_filter_support(git_daemon, options, workdir):
    co = source.fetch_source(git_daemon.url('demo-nofilter'), workdir, options)
    assert _files(co.repodir) == ['Dockerfile', 'additional-tags']
    assert os.path.exists(os.path.join(co.repodir, '.git', 'shallow'))
    assert source.read_labels(co.dockerfile_path)['name'] == 'demo/app'
    assert source.read_additional_tags(co.srcdir) == ['latest']


def test_annotated_tag_resolves_to_commit(git_daemon, options, workdir):
    co = source.fetch_source(git_daemon.url('demo', ref='v1'), workdir, options)
    assert co.commit == git_daemon.shas['demo'][0]
    assert co.source.endswith('#' + git_daemon.shas['demo'][0])


@pytest.mark.parametrize('repo', ['demo', 'demo-nofilter'])
def test_full_sha_of_older_commit(git_daemon, options, workdir, repo):
    old = git_daemon.shas['demo'][0]
    if repo == 'demo-nofilter':
        old = git('rev-parse', 'main~1', cwd=os.path.join(git_daemon.repos, repo + '.git'))
        old = old.strip()
    co = source.fetch_source(git_daemon.url(repo, ref=old), workdir, options)
    assert co.commit == old


@pytest.mark.parametrize('repo', ['demo', 'demo-nofilter'])
def test_abbreviated_sha(git_daemon, options, workdir, repo):
    bare = os.path.join(git_daemon.repos, repo + '.git')
    full = git('rev-parse', 'main~1', cwd=bare).strip()
    co = source.fetch_source(git_daemon.url(repo, ref=full[:9]), workdir, options)
    assert co.commit == full
    assert _files(co.repodir) == ['Dockerfile', 'additional-tags']


def test_origin_prefix_like_kojid(git_daemon, options, workdir):
    co = source.fetch_source(git_daemon.url('demo', ref='origin/main'), workdir, options)
    assert co.commit == git_daemon.shas['demo'][1]


def test_module_subdirectory(git_daemon, options, workdir):
    co = source.fetch_source(git_daemon.url('demo', module='sub'), workdir, options)
    assert co.srcdir == os.path.join(co.repodir, 'sub')
    assert co.module == 'sub'
    assert _files(co.repodir) == ['sub/Dockerfile']
    assert source.read_labels(co.dockerfile_path)['BZComponent'] == 'sub'
    assert co.source == git_daemon.url('demo', module='sub', ref=co.commit)


def test_full_tree(git_daemon, options, workdir):
    co = source.fetch_source(git_daemon.url('demo'), workdir, options)
    # a second fetch into the same work dir (kojid re-run) starts clean
    co = source.fetch_full_tree(git_daemon.url('demo'), workdir, options)
    assert co.complete
    assert _files(co.repodir) == ['Dockerfile', 'README', 'additional-tags', 'big.bin',
                                  'src/app.py', 'sub/Dockerfile']


def test_missing_ref(git_daemon, options, workdir):
    with pytest.raises(SourceError, match="Revision 'nope' was not found"):
        source.fetch_source(git_daemon.url('demo', ref='nope'), workdir, options)
    assert os.listdir(workdir) == []   # nothing half-fetched left behind


def test_missing_hex_looking_ref(git_daemon, options, workdir):
    with pytest.raises(SourceError, match="Revision 'deadbeef' was not found"):
        source.fetch_source(git_daemon.url('demo', ref='deadbeef'), workdir, options)


def test_missing_full_sha(git_daemon, options, workdir):
    with pytest.raises(SourceError, match='Commit 0{40} was not found'):
        source.fetch_source(git_daemon.url('demo', ref='0' * 40), workdir, options)


def test_missing_repository(git_daemon, options, workdir):
    with pytest.raises(SourceError, match='no such repository'):
        source.fetch_source(git_daemon.url('nothere'), workdir, options)


def test_missing_module_directory(git_daemon, options, workdir):
    with pytest.raises(SourceError, match="subdirectory 'nope' does not exist"):
        source.fetch_source(git_daemon.url('demo', module='nope'), workdir, options)


def test_missing_dockerfile(git_daemon, options, workdir):
    git_daemon.create('nodockerfile', [{'container.yaml': b'flatpak: {name: x}\n'}])
    with pytest.raises(SourceError, match='No Dockerfile in'):
        source.fetch_source(git_daemon.url('nodockerfile'), workdir, options)
    co = source.fetch_source(git_daemon.url('nodockerfile'), workdir, options, flatpak=True)
    assert co.dockerfile_path is None
    assert source.read_container_yaml(co.srcdir) == {'flatpak': {'name': 'x'}}


def test_dockerfile_symlink_refused(git_daemon, options, workdir):
    git_daemon.create('symlinked', [{'Dockerfile': ('link', '/etc/passwd')}])
    with pytest.raises(SourceError, match='Dockerfile is a symbolic link'):
        source.fetch_source(git_daemon.url('symlinked'), workdir, options)


def test_module_symlink_leaving_repository_refused(git_daemon, options, workdir):
    git_daemon.create('modlink', [{'Dockerfile': b'FROM x\n', 'sub': ('link', '/etc')}])
    with pytest.raises(SourceError, match='sub'):
        source.fetch_source(git_daemon.url('modlink', module='sub'), workdir, options)


def test_additional_tags_symlink_refused(git_daemon, options, workdir):
    git_daemon.create('tagslink', [{'Dockerfile': b'FROM x\n',
                                    'additional-tags': ('link', '/etc/hostname')}])
    co = source.fetch_source(git_daemon.url('tagslink'), workdir, options)
    with pytest.raises(SourceError, match='additional-tags is a symbolic link'):
        source.read_additional_tags(co.srcdir)


def test_user_git_config_is_ignored(git_daemon, options, workdir, tmp_path, monkeypatch):
    # A builder user's ~/.gitconfig redirecting URLs must not change what is fetched.
    home = tmp_path / 'home'
    home.mkdir()
    (home / '.gitconfig').write_text('[url "git://127.0.0.1:1/"]\n\tinsteadOf = git://\n')
    monkeypatch.setenv('HOME', str(home))
    monkeypatch.setenv('XDG_CONFIG_HOME', str(home))
    co = source.fetch_source(git_daemon.url('demo'), workdir, options)
    assert co.commit == git_daemon.shas['demo'][1]


# ------------------------------------------------------------------ allowed SCMs

def test_not_allowed_by_config(git_daemon, workdir, tmp_path):
    from tests.doubles.hub_session import make_task_handler_options
    opts = make_task_handler_options(tmp_path, allowed_scms='scm.example.com:/*')
    with pytest.raises(SourceError, match='not in the list of allowed SCMs'):
        source.fetch_source(git_daemon.url('demo'), workdir, opts)
    opts = make_task_handler_options(tmp_path)   # kojid default: nothing allowed
    with pytest.raises(SourceError, match='SCM not allowed'):
        source.fetch_source(git_daemon.url('demo'), workdir, opts)
    assert not os.path.exists(os.path.join(workdir, 'source'))


def test_blocked_by_config(git_daemon, workdir, tmp_path):
    from tests.doubles.hub_session import make_task_handler_options
    opts = make_task_handler_options(tmp_path, allowed_scms='!127.0.0.1*:/demo.git 127.0.0.1*:/*')
    with pytest.raises(SourceError, match='not in the list of allowed SCMs'):
        source.fetch_source(git_daemon.url('demo'), workdir, opts)


def test_policy_allows_with_task_data(git_daemon, workdir, tmp_path, hub):
    from tests.doubles.hub_session import make_task_handler_options
    seen = []

    def policy(data):
        seen.append(data)
        return 'allow' if data['user_id'] == 7 and data['scratch'] else 'deny not scratch'
    hub.set_policy('build_from_scm', policy)
    opts = make_task_handler_options(tmp_path, allowed_scms_use_config=False,
                                     allowed_scms_use_policy=True)
    data = {'user_id': 7, 'channel': 'container', 'scratch': True}
    co = source.fetch_source(git_daemon.url('demo'), workdir, opts, session=hub,
                             policy_data=data)
    assert co.commit == git_daemon.shas['demo'][1]
    assert seen[0]['channel'] == 'container'
    assert seen[0]['scm_host'] == '127.0.0.1:%d' % git_daemon.port
    assert seen[0]['scm_repository'] == '/demo.git'
    assert seen[0]['scm_revision'] == 'main'
    with pytest.raises(SourceError, match='reason: not scratch'):
        source.fetch_source(git_daemon.url('demo'), workdir, opts, session=hub,
                            policy_data=dict(data, scratch=False))


def test_policy_and_config_both_apply(git_daemon, workdir, tmp_path, hub):
    from tests.doubles.hub_session import make_task_handler_options
    hub.set_policy('build_from_scm', 'deny')
    opts = make_task_handler_options(tmp_path, allowed_scms='127.0.0.1*:/*',
                                     allowed_scms_use_policy=True)
    with pytest.raises(SourceError, match='is not allowed'):
        source.fetch_source(git_daemon.url('demo'), workdir, opts, session=hub)


def test_policy_missing_on_hub(git_daemon, workdir, tmp_path, hub):
    from tests.doubles.hub_session import make_task_handler_options
    opts = make_task_handler_options(tmp_path, allowed_scms_use_config=False,
                                     allowed_scms_use_policy=True)
    with pytest.raises(SourceError, match='no such policy'):
        source.fetch_source(git_daemon.url('demo'), workdir, opts, session=hub)


def test_policy_without_session_is_config_error(git_daemon, workdir, tmp_path):
    from tests.doubles.hub_session import make_task_handler_options
    opts = make_task_handler_options(tmp_path, allowed_scms_use_policy=True,
                                     allowed_scms='127.0.0.1*:/*')
    with pytest.raises(ConfigError):
        source.fetch_source(git_daemon.url('demo'), workdir, opts)


# ------------------------------------------------------------------ bad URLs

@pytest.mark.parametrize('url, message', [
    ('https://127.0.0.1/demo.git#main', 'unsupported scheme'),
    ('git://127.0.0.1/demo.git', 'needs a "#<commit or ref>"'),
    ('git://127.0.0.1/demo.git;x=1#main', 'parameters are not allowed'),
    ('svn://127.0.0.1/demo#1', 'unsupported scheme'),
    ('git://127.0.0.1/demo.git#main\n', 'printable ASCII'),
    ('git://127.0.0.1/demo.git#-oProxyCommand=id', 'Invalid git revision'),
    ('git://127.0.0.1/demo.git#@{-1}', 'Invalid git revision'),
    ('git://127.0.0.1/demo.git#a\x7fb', 'printable ASCII'),
    ('git://127.0.0.1/demo.git?../../..#main', 'Invalid subdirectory'),
    ('git+ssh://-oProxyCommand=id/demo.git#main', 'not a valid host'),
    ('git://[::1/demo.git#main', 'not a valid host'),
    ('git://127.0.0.1:99999/demo.git#main', 'not a valid host'),
    ('git+https://TOKEN@127.0.0.1/demo.git#main', 'user name before the host'),
    ('git://127.0.0.1/demo.git#a:b', 'Invalid git revision'),
    ('git://127.0.0.1/demo.git#-upload-pack=x', 'Invalid git revision'),
    ('git://127.0.0.1/demo.git#+main', 'Invalid git revision'),
    ('git://127.0.0.1/demo.git#a..b', 'Invalid git revision'),
    ('git://127.0.0.1/demo.git?../x#main', 'Invalid subdirectory'),
    ('git://127.0.0.1/demo.git?a/*#main', 'Invalid subdirectory'),
    ('git://127.0.0.1/demo.git?.git#main', 'Invalid subdirectory'),
    ('', 'non-empty string'),
    (None, 'non-empty string'),
])
def test_invalid_urls(url, message, options, workdir):
    with pytest.raises(SourceError, match=message):
        source.fetch_source(url, workdir, options)


def test_password_never_in_messages(options, workdir, caplog):
    url = 'git+https://bob:S3cr%21tpw@127.0.0.1/demo.git#main'
    with pytest.raises(SourceError) as info:
        source.fetch_source(url, workdir, options)
    assert 'S3cr' not in str(info.value)
    assert 'not allowed' in str(info.value)


def test_password_allowed_but_redacted(tmp_path, workdir, caplog):
    from tests.doubles.hub_session import make_task_handler_options
    opts = make_task_handler_options(tmp_path, allowed_scms='127.0.0.1*:/*',
                                     allow_password_in_scm_url=True)
    port = free_port()   # nothing listens there
    url = 'git+http://bob:S3cretpw@127.0.0.1:%d/demo.git#main' % port
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceError) as info:
        source.fetch_source(url, workdir, opts, logger=logging.getLogger('t'))
    assert 'S3cretpw' not in str(info.value)
    assert 'S3cretpw' not in caplog.text
    assert 'Fetching git+http://' in str(info.value)


def test_git_timeout(workdir, options):
    # A server that accepts the connection and never answers.
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen(5)
    port = server.getsockname()[1]
    accepted = []

    def accept():
        try:
            while True:
                accepted.append(server.accept()[0])
        except OSError:
            pass
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        with pytest.raises(SourceError, match='longer than 1 seconds'):
            source.fetch_source('git://127.0.0.1:%d/demo.git#main' % port, workdir, options,
                                timeout=1)
    finally:
        server.close()
        for conn in accepted:
            conn.close()


def test_scm_lib_error_is_source_error(options, workdir):
    # Two '@' in the netloc: koji.daemon.SCM's own error, mapped and redacted.
    with pytest.raises(SourceError, match='more than one "@"') as info:
        source.fetch_source('git://a:pw1@b@127.0.0.1/x.git#main', workdir, options)
    assert isinstance(info.value, koji.BuildError)
    assert 'pw1' not in str(info.value)
