"""The local command's hermetic mode (`--hermetic --repo-dir DIR`): RUN steps see the
local yum repository read-only and no network, like a hermetic build on a builder.

Real buildah with runc (--isolation oci), a createrepo'd repository holding the example
RPM, the test registry on this host's loopback as the service a RUN step must not reach."""

import json
import os
import shutil

import pytest

from koji_containerbuild import hermetic
from koji_containerbuild.local import cli
from tests.support import yumrepo

LABELS = 'LABEL com.redhat.component=herm-container name=kcb/herm version=1.0 release=1\n'
needs_runc = pytest.mark.skipif(not (shutil.which('runc') and yumrepo.available()),
                                reason='needs runc and createrepo_c (scripts/setup.sh)')


@pytest.fixture(scope='module')
def yum_repo(tmp_path_factory):
    work = tmp_path_factory.mktemp('local-hermetic-rpm')
    return yumrepo.make_yum_repo(str(work / 'repo'), str(work))


def _context(tmp_path, dockerfile):
    ctx = tmp_path / 'ctx'
    ctx.mkdir()
    shutil.copy('/bin/busybox', str(ctx / 'busybox'))
    (ctx / 'Dockerfile').write_text(dockerfile)
    return str(ctx)


def run(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@needs_runc
def test_local_hermetic_build(tmp_path, capsys, registry, yum_repo):
    mount = hermetic.MOUNT_POINT
    script = ("set -e; /bin/busybox --install -s /bin; grep -c '<repomd' "
              "%s/repodata/repomd.xml; ls %s | grep koji-example-hello; "
              "cat /etc/yum.repos.d/*.repo; "
              "if nc -w 5 127.0.0.1 %s </dev/null; then echo REACHED'-'LOOPBACK; exit 1; fi; "
              "echo herm''etic-ok" % (mount, mount, registry.url.rsplit(':', 1)[1]))
    ctx = _context(tmp_path, 'FROM scratch\nCOPY --chmod=755 busybox /bin/busybox\n'
                   'RUN ["/bin/busybox", "sh", "-c", "%s"]\n' % script + LABELS)
    out = tmp_path / 'out'
    rc, _stdout, err = run(['build', '--output-dir', str(out), '--isolation', 'oci',
                            '--runtime', 'runc', '--hermetic', '--repo-dir', yum_repo,
                            '--scratch', ctx], capsys)
    assert rc == 0, err
    log = (out / 'logs' / 'x86_64.log').read_text()
    assert 'hermetic-ok' in log and 'REACHED-LOOPBACK' not in log
    assert "can't connect to remote host (127.0.0.1): Connection refused" in log
    assert 'baseurl=file://%s' % mount in log
    meta = json.loads((out / 'metadata.json').read_text())
    assert meta['build']['extra']['image']['hermetic'] is True
    assert meta['buildroots'][0]['extra']['buildah']['network'] == 'none'
    prov = json.loads((out / 'provenance-x86_64.intoto.json').read_text())
    definition = prov['predicate']['buildDefinition']
    assert definition['externalParameters']['options']['hermetic'] is True
    deps = definition['resolvedDependencies']
    assert [d['name'] for d in deps] == ['source', 'repo-dir']
    assert deps[1]['uri'] == 'file://%s' % yum_repo


@pytest.mark.parametrize('argv, message', [
    (['--hermetic', '--isolation', 'oci'], '--hermetic needs --repo-dir DIR'),
    (['--hermetic', '--repo-dir', '/tmp'], '--hermetic needs --isolation oci or rootless'),
    (['--hermetic', '--isolation', 'oci', '--repo-dir', '/tmp', '--repo-url',
      'https://mirror.example.com/a.repo'], '--repo-url is refused with --hermetic'),
    (['--hermetic', '--isolation', 'oci', '--repo-dir', '/nonexistent/repo'],
     'repo directory /nonexistent/repo does not exist'),
    (['--repo-dir', '/tmp'], '--repo-dir is used with --hermetic only'),
])
def test_bad_hermetic_arguments(tmp_path, capsys, argv, message):
    ctx = _context(tmp_path, 'FROM scratch\n' + LABELS)
    rc, _out, err = run(['build', '--output-dir', str(tmp_path / 'o')] + argv + [ctx], capsys)
    assert rc == 1 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / 'o').exists()   # refused before anything was made


def test_hermetic_refuses_remote_add(tmp_path, capsys):
    ctx = _context(tmp_path, 'FROM scratch\nADD https://example.com/a /a\n' + LABELS)
    repo = tmp_path / 'repo'
    (repo / 'repodata').mkdir(parents=True)
    (repo / 'repodata' / 'repomd.xml').write_text('<repomd/>\n')
    rc, _out, err = run(['build', '--output-dir', str(tmp_path / 'o'), '--isolation', 'oci',
                         '--hermetic', '--repo-dir', str(repo), ctx], capsys)
    assert rc == 1 and 'line 2: ADD of a URL is refused in a hermetic build' in err, err
