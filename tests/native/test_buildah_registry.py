"""buildah runner and registry client: credentials, failures, cancellation, cleanup."""

import json
import os
import shutil

import pytest

from koji_containerbuild import buildah, cg
from koji_containerbuild.errors import BackendError, ConfigError
from koji_containerbuild.registry import MEDIA_LIST, Registry, load_auth, manifest_list
from tests.native.conftest import BASE, PASSWORD, USER, build


def test_push_with_credentials_keeps_them_out_of_logs(examples, auth_registry, storage,
                                                      tmp_path):
    client = auth_registry.client()
    result, lines = build(examples, 'base', BASE, auth_registry, storage, str(tmp_path / 'w'),
                          'auth-00001-20240501093012', registry_client=client)
    tags = cg.tag_plan(BASE, unique='auth-00001-20240501093012')
    index = cg.publish_manifest_list(client, BASE.name, [result], tags,
                                     log_line=lines.append)
    assert client.tag_digest(BASE.name, '1.0-1') == index['digests'][MEDIA_LIST]
    text = '\n'.join(lines) + json.dumps(result) + json.dumps(index) + repr(client)
    with open(auth_registry.authfile) as f:
        b64 = json.load(f)['auths'][auth_registry.host]['auth']
    for secret in (PASSWORD, b64):
        assert secret not in text
    assert any('Pushing' in line for line in lines)


def test_registry_without_credentials_is_refused(auth_registry):
    anonymous = Registry(auth_registry.url, tls_verify=False)
    with pytest.raises(BackendError, match='refused the credentials') as info:
        anonymous.get_manifest('koji-example/base', 'latest')
    assert PASSWORD not in str(info.value)


def test_wrong_password_is_refused_without_leaking(auth_registry, tmp_path):
    authfile = tmp_path / 'bad.json'
    authfile.write_text(json.dumps({'auths': {auth_registry.host: {
        'username': USER, 'password': 'wrong-Pa55word'}}}))
    client = Registry(auth_registry.url, tls_verify=False, credentials_file=str(authfile))
    with pytest.raises(BackendError) as info:
        client.put_manifest('kcb/x', 'v1', MEDIA_LIST, manifest_list([]))
    assert 'wrong-Pa55word' not in str(info.value)


def test_load_auth_forms(tmp_path):
    path = tmp_path / 'a.json'
    path.write_text(json.dumps({'auths': {'https://reg.example.com': {'auth': 'dTpw'},
                                          'other:5000': {'username': 'x', 'password': 'y'}}}))
    assert load_auth(str(path), 'reg.example.com') == ('u', 'p')
    assert load_auth(str(path), 'other:5000') == ('x', 'y')
    assert load_auth(str(path), 'none.example.com') is None
    path.write_text('not json')
    with pytest.raises(ConfigError, match='not valid JSON'):
        load_auth(str(path), 'x')
    with pytest.raises(ConfigError, match='Cannot read'):
        load_auth(str(tmp_path / 'missing.json'), 'x')


def test_missing_manifest_and_bad_names(registry):
    client = registry.client()
    with pytest.raises(BackendError, match='not found in the registry'):
        client.get_manifest('kcb/nothing', 'v1')
    with pytest.raises(BackendError, match='Invalid registry repository'):
        client.get_manifest('../etc', 'v1')
    with pytest.raises(BackendError, match='Invalid tag'):
        client.get_manifest('kcb/x', 'a/../b')
    with pytest.raises(ConfigError):
        Registry('https://user:pw@host/path')


def test_unreachable_registry():
    port_closed = Registry('http://127.0.0.1:1', tls_verify=False, timeout=5)
    with pytest.raises(BackendError, match='unreachable'):
        port_closed.get_manifest('kcb/x', 'v1')


def test_scrub_hides_secrets():
    line = 'pushing to https://bob:hunter2@reg/x Authorization: Basic Ym9iOmh1bnRlcjI= ' \
           '"auth": "Ym9iOmh1bnRlcjI=" password=hunter2'
    clean = buildah.scrub(line)
    assert 'hunter2' not in clean and 'Ym9iOmh1bnRlcjI=' not in clean


def _ctx(tmp_path, body):
    ctx = tmp_path / 'ctx'
    ctx.mkdir()
    shutil.copy('/bin/busybox', str(ctx / 'busybox'))
    (ctx / 'Dockerfile').write_text('FROM scratch\nCOPY busybox /bin/busybox\n' + body)
    return str(ctx)


@pytest.fixture
def own_storage(tmp_path):
    store = buildah.Storage.temporary(str(tmp_path), 'overlay')
    yield store
    store.destroy()


def test_failed_build_leaves_no_container(tmp_path, own_storage):
    ctx = _ctx(tmp_path, 'RUN ["/bin/busybox", "false"]\n')
    lines = []
    with pytest.raises(BackendError, match='buildah build for x86_64 failed'):
        buildah.build_image(ctx, os.path.join(ctx, 'Dockerfile'), 'x86_64', {}, [],
                            str(tmp_path), lines.append, storage=own_storage)
    assert own_storage.containers() == []
    assert any('STEP' in line for line in lines)


def test_cancel_kills_build_and_removes_containers(tmp_path, own_storage):
    """kojid cancels by raising SystemExit in the task process: kill and clean up."""
    ctx = _ctx(tmp_path, 'RUN ["/bin/busybox", "sh", "-c", "echo started-run; '
                         'exec /bin/busybox sleep 317"]\n')

    class Cancel(SystemExit):
        pass

    def log_line(line):
        if line == 'started-run':
            raise Cancel(1)

    with pytest.raises(Cancel):
        buildah.build_image(ctx, os.path.join(ctx, 'Dockerfile'), 'x86_64', {}, [],
                            str(tmp_path), log_line, storage=own_storage)
    assert own_storage.containers() == []
    for pid in [p for p in os.listdir('/proc') if p.isdigit()]:
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                assert f.read() != b'/bin/busybox\x00sleep\x00317\x00', 'RUN still running'
        except OSError:
            continue


def test_yum_repo_files_are_mounted_not_baked(tmp_path, own_storage):
    repo = tmp_path / 'koji.repo'
    repo.write_text('[koji]\nbaseurl=http://koji.example.com/repos/x86_64\n')
    ctx = _ctx(tmp_path, 'RUN ["/bin/busybox", "cat", "/etc/yum.repos.d/koji.repo"]\n')
    lines = []
    image = buildah.build_image(ctx, os.path.join(ctx, 'Dockerfile'), 'x86_64',
                                {'name': 'x'}, [str(repo)], str(tmp_path), lines.append,
                                storage=own_storage)
    assert 'baseurl=http://koji.example.com/repos/x86_64' in lines
    with buildah.MountedImage(image, own_storage) as rootfs:
        assert not os.path.exists(os.path.join(rootfs, 'etc/yum.repos.d/koji.repo'))
    assert own_storage.containers() == []


def test_chroot_isolation_needs_host_network(tmp_path):
    with pytest.raises(BackendError, match='shares the host network'):
        buildah.build_image(str(tmp_path), 'Dockerfile', 'x86_64', {}, [], str(tmp_path),
                            print, network='none', isolation='chroot')


def test_floating_tags_wait_for_the_primary_group(base_image, registry):
    """A failure in the unique/primary group publishes no floating tag."""
    client = registry.client()
    result = base_image['result']
    tags = {'unique': ['grp-00001-20240501093012'], 'primary': ['1.0-1', 'bad tag'],
            'floating': ['grp-floating']}
    lines = []
    with pytest.raises(BackendError, match='bad tag'):
        cg.publish_manifest_list(client, BASE.name, [result], tags, log_line=lines.append)
    with pytest.raises(BackendError, match='not found'):
        client.get_manifest(BASE.name, 'grp-floating')
    # the valid tags of the failed group were written and checked
    digest = cg.manifest_list_for([result])[1]
    assert client.tag_digest(BASE.name, 'grp-00001-20240501093012') == digest
    assert lines == ['Tagged %s' % client.pullspec(BASE.name, tag)
                     for tag in ('grp-00001-20240501093012', '1.0-1')]


def test_failed_push_on_shared_storage_cleans_up(examples, auth_registry, tmp_path):
    """The image is described while it is pushed: a failed push still leaves the shared
    storage without the inspection container and without the built image."""
    shared = buildah.Storage(str(tmp_path / 'root'), str(tmp_path / 'run'), 'overlay')
    anonymous = Registry(auth_registry.url, tls_verify=False)    # the push is refused
    try:
        with pytest.raises(BackendError, match='buildah push to .* failed'):
            build(examples, 'base', BASE, None, shared, str(tmp_path / 'w'),
                  'push-00001-20240501093012', registry_client=anonymous)
        assert shared.containers() == []
        assert shared.images() == []
    finally:
        shared.destroy()
        shutil.rmtree(str(tmp_path / 'root'), ignore_errors=True)
