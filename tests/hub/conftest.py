"""Fixtures for the hub plugin: the kojihub double, a logged-in caller, the plugin.

The plugin is imported from hub/ by path, as the hub loads plugins, after the
double is installed as `kojihub`.
"""

import importlib.util
import os

import pytest

from koji_containerbuild import hub_policy
from tests.doubles import kojihub as kojihub_double

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGIN_PATH = os.path.join(ROOT, 'hub', 'hub_containerbuild.py')

SRC = 'git+https://src.example.com/containers/demo#0123456789abcdef'
TARGET = 'f40-container-candidate'
LOCKED_TARGET = 'frozen-container-candidate'


def load_plugin(name='_koji_plugin__hub_containerbuild'):
    spec = importlib.util.spec_from_file_location(name, PLUGIN_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seed(hub):
    """Channels, tags and targets of a small Koji instance."""
    hub.add_channel(hub_policy.DEFAULT_BINARY_CHANNEL)
    hub.add_channel(hub_policy.DEFAULT_SOURCE_CHANNEL)
    hub.add_channel('container-fast')
    hub.add_channel('container-off', enabled=False)
    hub.add_tag('f40-container-build')
    hub.add_tag('f40-container-candidate')
    hub.add_tag('frozen-candidate', locked=True)
    hub.add_target(TARGET, 'f40-container-build', 'f40-container-candidate')
    hub.add_target(LOCKED_TARGET, 'f40-container-build', 'frozen-candidate')


@pytest.fixture
def hub():
    fake = kojihub_double.install()
    seed(fake)
    fake.login('alice')
    yield fake
    kojihub_double.uninstall()


@pytest.fixture
def plugin(hub, tmp_path):
    module = load_plugin()
    # hermetic: never read the machine's /etc
    module.CONFIG = hub_policy.LazyConfig(str(tmp_path / 'absent.conf'))
    return module


def base_opts(kind):
    """The smallest valid opts for a build kind."""
    if kind == 'source':
        return {'koji_build_id': 1}
    opts = {'git_branch': 'main'}
    if kind == 'flatpak':
        opts['flatpak'] = True
    return opts


def submit(hub, plugin, kind, opts, priority=None, channel=None, src=SRC, target=TARGET):
    """Call the plugin the way a client does; channel None means "not passed"."""
    kwargs = {}
    if priority is not None:
        kwargs['priority'] = priority
    if channel is not None:
        kwargs['channel'] = channel
    if kind == 'source':
        return hub.call(plugin.buildSourceContainer, target, opts, **kwargs)
    return hub.call(plugin.buildContainer, src, target, opts, **kwargs)
