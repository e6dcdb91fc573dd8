"""The local `koji-containerbuild build` command: real builds, outputs, clear failures."""

import json
import os
import shutil
import subprocess

import pytest

from koji_containerbuild import buildah
from koji_containerbuild.local import cli
from tests.support.gitserver import GitDaemon

GOOD_LABELS = ('LABEL com.redhat.component=bad-container name=kcb/bad version=1.0 '
               'release=1\n')


def run(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def store(tmp_path):
    """A storage root the test can inspect after the command (it keeps it)."""
    path = str(tmp_path / 'storage')
    yield path
    buildah.Storage(path, None, 'overlay').destroy()
    subprocess.run(['umount', '-R', path], stderr=subprocess.DEVNULL)


def containers(path):
    return buildah.Storage(path, None, 'overlay').containers()


@pytest.fixture
def own_registry(tmp_path):
    """A registry of this test's own: the local build moves floating tags ('latest')."""
    from tests.native.conftest import RunningRegistry
    reg = RunningRegistry(str(tmp_path / 'registry'))
    yield reg
    reg.stop()


def test_local_build_base_and_layered(examples, own_registry, tmp_path, capsys):
    registry = own_registry
    out = tmp_path / 'out'
    rc, stdout, err = run(['build', '--registry', registry.url, '--output-dir', str(out),
                           '-q', os.path.join(examples, 'base')], capsys)
    assert rc == 0, err
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['nvr'] == 'koji-example-base-container-1.0-1'
    assert summary['arches'][0]['rpm_count'] == 1
    assert 'koji-example-base-container-1.0-1' in stdout
    assert summary['pull_specs'][1] == '%s/koji-example/base:1.0-1' % registry.host
    meta = json.loads((out / 'metadata.json').read_text())
    assert meta['build']['release'] == '1'
    assert sorted(os.listdir(out / 'import')) == sorted(
        [meta['output'][0]['filename'], 'x86_64.log', 'metadata.json',
         'sbom-x86_64.spdx.json', 'provenance-x86_64.intoto.json'])
    assert json.loads((out / 'import' / 'metadata.json').read_text()) == meta
    assert (out / 'logs' / 'x86_64.log').read_text().count('STEP') >= 3
    base_id = meta['output'][0]['extra']['docker']['id']
    # the layered example FROM the base this test just published
    out2 = tmp_path / 'out2'
    rc, stdout, err = run(['build', '--registry', registry.url, '--output-dir', str(out2),
                           os.path.join(examples, 'app')], capsys)
    assert rc == 0, err
    assert 'STEP' in stdout        # build output echoed when not quiet
    meta = json.loads((out2 / 'metadata.json').read_text())
    assert meta['build']['extra']['image']['parent_images'] == ['koji-example/base:1.0-1']
    docker = meta['output'][0]['extra']['docker']
    assert docker['parent_id'] == base_id
    assert meta['build']['extra']['image']['index']['floating_tags'] == \
        ['latest', '1.0', 'stable']


def test_local_build_without_registry_keeps_dir_image(examples, tmp_path, capsys):
    out = tmp_path / 'out'
    rc, stdout, err = run(['build', '-q', '--output-dir', str(out), '--scratch',
                           os.path.join(examples, 'base')], capsys)
    assert rc == 0, err
    summary = json.loads((out / 'summary.json').read_text())
    image_dir = summary['arches'][0]['image_dir']
    assert os.path.isfile(os.path.join(image_dir, 'manifest.json'))
    assert summary['pull_specs'] == []
    meta = json.loads((out / 'metadata.json').read_text())
    assert 'index' not in meta['build']['extra']['image']
    assert meta['output'][0]['extra']['docker']['repositories'] == []


def test_local_build_from_git_url(examples, registry, tmp_path, capsys):
    """SOURCE as git_url#ref, served by a real git daemon on loopback."""
    daemon = GitDaemon(tmp_path / 'gitd').start()
    try:
        sha = daemon.create_from_dir('base', os.path.join(examples, 'base'))
        port = daemon.port
        out = tmp_path / 'out'
        rc, stdout, err = run(['build', '-q', '--scratch', '--registry', registry.url,
                               '--output-dir', str(out), daemon.url('base')], capsys)
    finally:
        daemon.stop()
    assert rc == 0, err
    meta = json.loads((out / 'metadata.json').read_text())
    assert meta['build']['source'] == 'git://127.0.0.1:%d/base.git#%s' % (port, sha)
    labels = meta['output'][0]['extra']['docker']['config']['config']['Labels']
    assert labels['vcs-ref'] == sha
    assert meta['build']['extra']['image']['index']['tags'] == \
        meta['build']['extra']['image']['index']['unique_tags']


def _context(tmp_path, dockerfile):
    ctx = tmp_path / 'ctx'
    ctx.mkdir()
    shutil.copy('/bin/busybox', str(ctx / 'busybox'))
    (ctx / 'Dockerfile').write_text(dockerfile)
    return str(ctx)


@pytest.mark.parametrize('dockerfile, message', [
    ('FROM scratch\nLABEL name=kcb/bad version=1.0\n',
     "error: Required Dockerfile label is missing: component (label 'com.redhat.component'"),
    ('FROM scratch\nCOPY busybox /bin/sh\nRUN exit 3\n' + GOOD_LABELS,
     'error: buildah build for x86_64 failed: '),
    ('FROM kcb-tests/does-not-exist:1\n' + GOOD_LABELS,
     'error: Image 127.0.0.1:'),
    ('FROM nonexistent.invalid/kcb/nothing:1\n' + GOOD_LABELS,
     'error: buildah build for x86_64 failed: '),
])
def test_bad_dockerfiles(tmp_path, capsys, registry, store, dockerfile, message):
    ctx = _context(tmp_path, dockerfile)
    rc, _out, err = run(['build', '-q', '--registry', registry.url, '--storage-root', store,
                         '--output-dir', str(tmp_path / 'out'), ctx], capsys)
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert 'Traceback' not in err
    if os.path.isdir(store):
        assert containers(store) == []


def test_failing_run_names_the_step(tmp_path, capsys, store):
    ctx = _context(tmp_path, 'FROM scratch\nCOPY busybox /bin/sh\nRUN exit 3\n' + GOOD_LABELS)
    rc, _out, err = run(['build', '-q', '--storage-root', store, '--output-dir',
                         str(tmp_path / 'out'), ctx], capsys)
    assert rc == 1 and 'exit 3' in err
    assert containers(store) == []


@pytest.mark.parametrize('argv, message', [
    (['--release', '1-2'], 'Invalid --release'),
    (['--arch', 'sparc64'], 'unknown architecture'),
    (['--registry', 'http://registry.example.com'], 'only loopback registries'),
    (['--registry', 'ftp://x'], 'Invalid registry URL'),
    (['--authfile', '/nonexistent/auth.json', '--registry', 'http://127.0.0.1:1'],
     'does not exist'),
    (['--repo-url', 'file:///etc/passwd'], 'Invalid --repo-url'),
    (['--target', 'a/b'], 'Invalid --target'),
    (['--target=-x'], 'Invalid --target'),
    (['--output-dir', '/dev/null/out'], 'NotADirectoryError'),
])
def test_bad_arguments(examples, tmp_path, capsys, argv, message):
    rc, _out, err = run(['build', '--output-dir', str(tmp_path / 'o')] + argv +
                        [os.path.join(examples, 'base')], capsys)
    assert rc == 1 and message in err and len(err.strip().splitlines()) == 1, err


def test_bad_source(tmp_path, capsys):
    rc, _out, err = run(['build', str(tmp_path / 'missing')], capsys)
    assert rc == 1 and 'neither a directory nor a git_url#ref' in err
    (tmp_path / 'empty').mkdir()
    rc, _out, err = run(['build', str(tmp_path / 'empty')], capsys)
    assert rc == 1 and 'No Dockerfile' in err


def test_missing_release(tmp_path, capsys):
    ctx = _context(tmp_path, 'FROM scratch\nLABEL com.redhat.component=c name=kcb/c '
                             'version=1\n')
    rc, _out, err = run(['build', ctx], capsys)
    assert rc == 1 and 'pass --release' in err


def test_console_script_entry_point():
    """setup.py declares koji-containerbuild = koji_containerbuild.local.cli:main."""
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, '-m', 'koji_containerbuild.local.cli', 'build',
                           '--help'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=root)
    assert proc.returncode == 0 and b'--registry' in proc.stdout
    with open(os.path.join(root, 'setup.py')) as f:
        assert 'koji-containerbuild = koji_containerbuild.local.cli:main' in f.read()


def test_repo_url_uses_the_builder_rules(examples, tmp_path, capsys):
    """--repo-url files are fetched by the same function as the builder's yum_repourls."""
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
    served = tmp_path / 'served'
    served.mkdir()
    (served / 'bad.repo').write_text('no section here\n')
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    handler = partial(Quiet, directory=str(served))
    server = ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = 'http://127.0.0.1:%d/bad.repo' % server.server_address[1]
        rc, _out, err = run(['build', '-q', '--output-dir', str(tmp_path / 'o'),
                             '--repo-url', url, os.path.join(examples, 'base')], capsys)
    finally:
        server.shutdown()
        server.server_close()
    assert rc == 1 and 'outside a [repository] section' in err, err
    assert len(err.strip().splitlines()) == 1, err


def _git(path, *args):
    subprocess.run(['git', '-C', str(path)] + list(args), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_dirty_work_tree_is_refused_or_recorded_without_commit(tmp_path, capsys):
    ctx = _context(tmp_path, 'FROM scratch\nCOPY busybox /busybox\n' + GOOD_LABELS)
    _git(ctx, 'init', '-q')
    _git(ctx, '-c', 'user.name=t', '-c', 'user.email=t@example.com', 'add', '.')
    _git(ctx, '-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'x')
    with open(os.path.join(ctx, 'Dockerfile'), 'a') as f:
        f.write('LABEL changed=yes\n')
    out = tmp_path / 'out'
    rc, _out, err = run(['build', '-q', '--output-dir', str(out), ctx], capsys)
    assert rc == 1 and 'uncommitted changes' in err and '--allow-dirty' in err, err
    rc, _out, err = run(['build', '-q', '--allow-dirty', '--output-dir', str(out), ctx],
                        capsys)
    assert rc == 0, err
    meta = json.loads((out / 'metadata.json').read_text())
    assert meta['build']['source'] == 'file://%s#dirty' % ctx
    labels = meta['output'][0]['extra']['docker']['config']['config']['Labels']
    assert 'vcs-ref' not in labels and labels['changed'] == 'yes'
