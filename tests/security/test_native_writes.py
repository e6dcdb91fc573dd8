"""No write through a path the repository controls (issue 7, items 1 and 2): symlinks
committed in a repository, real git daemon and buildah."""

import os
import subprocess

import pytest

from koji_containerbuild import safe_files
from koji_containerbuild.errors import ConfigError, SourceError
from koji_containerbuild.local import cli
from tests.native_koji.conftest import (  # noqa: F401 (fixtures)
    buildah_available, dockerfile, git_server, make_repo, registry_url, small_rootfs,
    world_factory)

needs_buildah = pytest.mark.skipif(not buildah_available(), reason='needs buildah as root')
VICTIM_TEXT = 'the user\'s own file\n'


def _victim(tmp_path):
    victim = tmp_path / 'victim'
    victim.write_text(VICTIM_TEXT)
    return victim


@needs_buildah
def test_koji_parent_build_rewrite_never_written_into_checkout(world_factory, git_server,
                                                                small_rootfs, tmp_path):
    world = world_factory()
    hub = world.hub
    hub.add_package('f40-container-candidate', 'wbase-container')
    hub.add_package('f40-container-candidate', 'wapp-container')
    base_src = make_repo(git_server, 'wbase', {
        'Dockerfile': dockerfile(component='wbase-container', name='acme/wbase'),
        'rootfs.tar': small_rootfs})[0]
    world.run_parent(base_src)
    victim = _victim(tmp_path)
    # the names the builder used (and might use) for the rewritten Dockerfile
    app_src = make_repo(git_server, 'wapp', {
        'Dockerfile': 'FROM acme/none:1\nLABEL com.redhat.component=wapp-container '
                      'name=acme/wapp version=2 release=1\n',
        '.Dockerfile.koji-parent': ('link', str(victim)),
        'Dockerfile.koji-parent': ('link', str(victim)),
        'Dockerfile.x86_64': ('link', str(victim))})[0]
    _t, result = world.run_parent(app_src, {'koji_parent_build': 'wbase-container-1.0-1'})
    assert result['koji_builds']
    assert victim.read_text() == VICTIM_TEXT


@needs_buildah
def test_dockerfile_symlink_is_not_followed(world_factory, git_server, tmp_path):
    world = world_factory()
    secret = tmp_path / 'builder-secret'
    secret.write_text('FROM scratch\nLABEL secret=builder-only-value\n')
    src = make_repo(git_server, 'wlink', {'Dockerfile': ('link', str(secret))})[0]
    with pytest.raises(SourceError) as info:
        world.run_parent(src)
    assert 'symbolic link' in str(info.value)
    assert 'builder-only-value' not in world.all_text()


def _git_checkout(tmp_path, files):
    """A real git work tree with `files` committed ({path: text | ('link', target)})."""
    work = tmp_path / 'checkout'
    subprocess.run(['git', 'init', '-q', '-b', 'main', str(work)], check=True)
    for path, content in files.items():
        full = work / path
        full.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, tuple):
            os.symlink(content[1], str(full))
        else:
            full.write_text(content)
    env = dict(os.environ, GIT_AUTHOR_NAME='t', GIT_AUTHOR_EMAIL='t@example.com',
               GIT_COMMITTER_NAME='t', GIT_COMMITTER_EMAIL='t@example.com')
    subprocess.run(['git', 'add', '-A'], cwd=str(work), check=True, env=env)
    subprocess.run(['git', 'commit', '-q', '-m', 'x'], cwd=str(work), check=True, env=env)
    return work


LOCAL_DOCKERFILE = ('FROM scratch\nLABEL com.redhat.component=w-container name=acme/w '
                    'version=1 release=1\n')


@pytest.mark.parametrize('committed', [
    # the whole output tree is a link to a directory of the user
    {'koji-containerbuild-output': ('link', '{victim_dir}')},
    # the NVR directory is a link
    {'koji-containerbuild-output/w-container-1-1': ('link', '{victim_dir}')},
    # files inside the NVR directory are links to the user's file
    {'koji-containerbuild-output/w-container-1-1/logs/x86_64.log': ('link', '{victim}'),
     'koji-containerbuild-output/w-container-1-1/summary.json': ('link', '{victim}')},
])
def test_local_default_output_never_writes_through_committed_links(tmp_path, capsys,
                                                                   monkeypatch, committed):
    victim = _victim(tmp_path)
    victim_dir = tmp_path / 'victim-dir'
    victim_dir.mkdir()
    files = {'Dockerfile': LOCAL_DOCKERFILE}
    for path, (kind, target) in committed.items():
        files[path] = (kind, target.format(victim=victim, victim_dir=victim_dir))
    work = _git_checkout(tmp_path, files)
    monkeypatch.chdir(str(work))
    rc = cli.main(['build', '-q', '--storage-driver', 'vfs', '.'])
    _out, err = capsys.readouterr()
    assert rc == 1
    assert 'output' in err.lower() and ('symbolic link' in err or 'earlier output' in err), err
    assert victim.read_text() == VICTIM_TEXT
    assert os.listdir(str(victim_dir)) == []


def test_output_dir_is_fresh_and_replaces_only_our_own(tmp_path, monkeypatch):
    monkeypatch.chdir(str(tmp_path))
    out = safe_files.make_output_dir('a/b/c')
    assert os.path.isfile(os.path.join(out, safe_files.OUTPUT_MARKER))
    (tmp_path / 'a/b/c/old.log').write_text('old')
    # an earlier output of ours is replaced
    assert safe_files.make_output_dir('a/b/c') == out
    assert sorted(os.listdir(out)) == [safe_files.OUTPUT_MARKER]
    # a directory that is not ours is refused, and kept
    (tmp_path / 'mine').mkdir()
    (tmp_path / 'mine/notes.txt').write_text('keep')
    with pytest.raises(ConfigError):
        safe_files.make_output_dir('mine')
    assert (tmp_path / 'mine/notes.txt').read_text() == 'keep'
    # outside the current directory: missing parents are created
    monkeypatch.chdir('/')
    far = tmp_path / 'x' / 'y' / 'out'
    assert safe_files.make_output_dir(str(far)) == str(far)


def test_write_new_replaces_a_link_instead_of_following_it(tmp_path):
    victim = _victim(tmp_path)
    link = tmp_path / 'Dockerfile.x86_64'
    os.symlink(str(victim), str(link))
    safe_files.write_new(str(link), 'FROM scratch\n')
    assert victim.read_text() == VICTIM_TEXT
    assert not link.is_symlink() and link.read_text() == 'FROM scratch\n'


def test_read_in_tree_refuses_links_in_any_component(tmp_path):
    root = tmp_path / 'src'
    (root / 'real').mkdir(parents=True)
    (root / 'real' / 'Dockerfile').write_text('FROM scratch\n')
    os.symlink('real', str(root / 'alias'))
    assert safe_files.read_in_tree(str(root), 'real/Dockerfile', 100, 'D') == b'FROM scratch\n'
    with pytest.raises(SourceError):
        safe_files.read_in_tree(str(root), 'alias/Dockerfile', 100, 'D')
    os.symlink('/etc/hostname', str(root / 'out'))
    with pytest.raises(SourceError):
        safe_files.read_in_tree(str(root), 'out', 100, 'D')


@needs_buildah
def test_local_default_output_inside_the_checkout_works_and_is_replaced(tmp_path, capsys,
                                                                        monkeypatch):
    """The default output directory below a checkout (nothing committed there): built,
    then replaced by the next run (an earlier output of ours)."""
    work = _git_checkout(tmp_path, {'Dockerfile': LOCAL_DOCKERFILE,
                                    'koji-containerbuild-output/README': 'committed\n'})
    monkeypatch.chdir(str(work))
    out = work / 'koji-containerbuild-output' / 'w-container-1-1'
    for run in range(2):
        # the first run's output makes the work tree dirty for the second
        rc = cli.main(['build', '-q', '--storage-driver', 'vfs'] +
                      (['--allow-dirty'] if run else []) + ['.'])
        _out, err = capsys.readouterr()
        assert rc == 0, err
        assert (out / 'metadata.json').is_file() and (out / 'summary.json').is_file()
        assert (out / safe_files.OUTPUT_MARKER).is_file()
    assert (work / 'koji-containerbuild-output' / 'README').read_text() == 'committed\n'
