"""registry_ca_cert reaches buildah as a --cert-dir holding the bundle as ca.crt."""

import os

from koji_containerbuild import buildah, native_build
from koji_containerbuild.registry import Registry
from tests.native.conftest import BASE, build

BUNDLE = '/etc/ssl/certs/ca-certificates.crt'


def test_ca_bundle_given_to_buildah_pull_and_push(examples, registry, storage, tmp_path,
                                                  monkeypatch):
    seen = []
    real_stream = buildah.stream

    def recording_stream(cmd, log_line, **kwargs):
        if '--cert-dir' in cmd:
            cert_dir = cmd[cmd.index('--cert-dir') + 1]
            with open(os.path.join(cert_dir, 'ca.crt'), 'rb') as f:
                seen.append((cmd[cmd.index('--cert-dir') - 1:][0], cmd[len(storage.args())],
                             f.read()))
        else:
            seen.append((None, cmd[len(storage.args())], None))
        return real_stream(cmd, log_line, **kwargs)
    monkeypatch.setattr(buildah, 'stream', recording_stream)
    client = Registry(registry.url, tls_verify=False, ca_cert=BUNDLE)
    result, _lines = build(examples, 'base', BASE, registry, storage, str(tmp_path / 'w'),
                           'certs', registry_client=client)
    assert result['manifest_digest'].startswith('sha256:')
    with open(BUNDLE, 'rb') as f:
        bundle = f.read()
    assert [(verb, data == bundle) for _flag, verb, data in seen] == [
        ('build', True), ('push', True)]


def test_no_cert_dir_without_a_bundle(tmp_path):
    assert native_build.registry_cert_dir(None, str(tmp_path)) is None
    assert native_build.registry_cert_dir(Registry('https://reg.example'),
                                          str(tmp_path)) is None


def test_unreadable_bundle_is_a_clear_error(tmp_path):
    import pytest
    from koji_containerbuild.errors import BackendError
    reg = Registry('https://reg.example', ca_cert=str(tmp_path / 'missing.pem'))
    with pytest.raises(BackendError) as info:
        native_build.registry_cert_dir(reg, str(tmp_path))
    assert 'registry CA bundle' in str(info.value)
