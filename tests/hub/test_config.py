"""The plugin config file: defaults, keys, broken files, lazy loading."""

import os
import shutil

import pytest

from koji_containerbuild import hub_policy
from koji_containerbuild.errors import ConfigError, PermissionDenied
from tests.hub.conftest import ROOT, base_opts, load_plugin, submit


def test_missing_file_means_defaults(tmp_path):
    assert hub_policy.load_config(str(tmp_path / 'nope.conf')) == hub_policy.HubConfig()


def test_sample_config_gives_defaults():
    sample = os.path.join(ROOT, 'hub', 'hub_containerbuild.conf')
    assert hub_policy.load_config(sample) == hub_policy.HubConfig()


def test_sample_config_documents_every_key():
    with open(os.path.join(ROOT, 'hub', 'hub_containerbuild.conf')) as f:
        sample = f.read()
    with open(os.path.join(ROOT, 'docs', 'hub.md')) as f:
        doc = f.read()
    for key in hub_policy.HubConfig.KEYS:
        assert key in sample and key in doc


def test_all_keys(tmp_path):
    path = tmp_path / 'c.conf'
    path.write_text('[hub_containerbuild]\nbuild_permission = container\n'
                    'channel_override_permission =  container-admin \n')
    assert hub_policy.load_config(str(path)) == hub_policy.HubConfig(
        build_permission='container', channel_override_permission='container-admin')


def test_empty_values_and_empty_file(tmp_path):
    path = tmp_path / 'c.conf'
    path.write_text('[hub_containerbuild]\nbuild_permission =\n')
    assert hub_policy.load_config(str(path)) == hub_policy.HubConfig()
    path.write_text('')
    assert hub_policy.load_config(str(path)) == hub_policy.HubConfig()


def test_percent_is_not_interpolated(tmp_path):
    path = tmp_path / 'c.conf'
    path.write_text('[hub_containerbuild]\nbuild_permission = a%(b)s\n')
    with pytest.raises(ConfigError, match='not a permission name'):
        hub_policy.load_config(str(path))


@pytest.mark.parametrize('text,message', [
    ('build_permission = x\n', 'not valid'),
    ('[hub_containerbuild\nbuild_permission = x\n', 'not valid'),
    ('[hub_containerbuild]\nbuild_permision = x\n', "unknown key 'build_permision'"),
    ('[permissions]\nbuild_permission = x\n', 'unknown section [permissions]'),
    ('[hub_containerbuild]\nbuild_permission = two words\n', 'not a permission name'),
    ('[hub_containerbuild]\nbuild_permission = x\nbuild_permission = y\n', 'not valid'),
])
def test_broken_config(tmp_path, text, message):
    path = tmp_path / 'c.conf'
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        hub_policy.load_config(str(path))
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_binary_garbage_config(tmp_path):
    path = tmp_path / 'c.conf'
    path.write_bytes(b'\xff\xfe\x00[hub')
    with pytest.raises(ConfigError):
        hub_policy.load_config(str(path))


def test_config_not_a_regular_file(tmp_path):
    # exists but cannot be read as a file (even by root): a FIFO
    path = tmp_path / 'c.conf'
    os.mkfifo(str(path))
    with pytest.raises(ConfigError, match="can't be opened"):
        hub_policy.load_config(str(path))


def test_config_directory_without_files(tmp_path):
    with pytest.raises(ConfigError):
        hub_policy.load_config(str(tmp_path))


def test_broken_config_fails_the_call_not_the_import(hub, tmp_path):
    path = tmp_path / 'hub_containerbuild.conf'
    path.write_text('[hub_containerbuild]\nbogus = 1\n')
    plugin = load_plugin()  # importing never reads the config
    plugin.CONFIG = hub_policy.LazyConfig(str(path))
    for kind in ('binary', 'source'):
        with pytest.raises(ConfigError, match='bogus'):
            submit(hub, plugin, kind, base_opts(kind))
    assert hub.tasks == {}
    # a failed load is not kept: fixing the file is enough
    path.write_text('[hub_containerbuild]\n')
    assert submit(hub, plugin, 'binary', base_opts('binary'))


def test_config_loaded_once(hub, plugin, tmp_path):
    path = tmp_path / 'hub_containerbuild.conf'
    path.write_text('[hub_containerbuild]\nbuild_permission = container\n')
    loads = []

    def counting_loader(p):
        loads.append(p)
        return hub_policy.load_config(p)

    plugin.CONFIG = hub_policy.LazyConfig(str(path), loader=counting_loader)
    hub.login('bob', perms=['container'])
    submit(hub, plugin, 'binary', base_opts('binary'))
    # later edits are not seen by this process (like Koji's own hub plugins)
    path.write_text('[hub_containerbuild]\nbuild_permission = other\n')
    submit(hub, plugin, 'source', base_opts('source'))
    assert loads == [str(path)]


def test_plugin_default_config_path(hub):
    plugin = load_plugin()
    assert plugin.CONFIG.path == '/etc/koji-hub/plugins/hub_containerbuild.conf'


def test_config_via_default_path_shape(hub, tmp_path):
    # the installed layout: <etc>/koji-hub/plugins/hub_containerbuild.conf
    conf_dir = tmp_path / 'koji-hub' / 'plugins'
    conf_dir.mkdir(parents=True)
    shutil.copy(os.path.join(ROOT, 'hub', 'hub_containerbuild.conf'), str(conf_dir))
    with open(str(conf_dir / 'hub_containerbuild.conf'), 'a') as f:
        f.write('build_permission = container\n')
    plugin = load_plugin()
    plugin.CONFIG = hub_policy.LazyConfig(str(conf_dir / 'hub_containerbuild.conf'))
    with pytest.raises(PermissionDenied):
        submit(hub, plugin, 'binary', base_opts('binary'))
