"""Help output of the real koji CLI, and the plugin's load-time imports."""

import os
import re
import subprocess
import sys

import pytest

from koji_containerbuild import options
from tests.cli.conftest import ROOT

# The flags issue 2 promises, written out so the test fails if one disappears.
IMAGE_FLAGS = ['--scratch', '--isolated', '--arch-override', '--wait', '--nowait', '--quiet',
               '--background', '--replace-dependency', '--repo-url', '--git-branch',
               '--channel-override', '--signing-intent', '--compose-id', '--userdata',
               '--operator-csv-modifications-url', '--release', '--koji-parent-build']
SOURCE_FLAGS = ['--scratch', '--wait', '--nowait', '--quiet', '--background',
                '--channel-override', '--signing-intent', '--koji-build-id', '--koji-build-nvr',
                '--userdata']


def flags_in(help_text):
    return set(re.findall(r'^  (?:-[a-z], )?(--[a-z-]+)', help_text, re.M))


@pytest.mark.parametrize('command, kind, flags', [
    ('container-build', options.BINARY, IMAGE_FLAGS),
    ('flatpak-build', options.FLATPAK, IMAGE_FLAGS),
    ('source-container-build', options.SOURCE, SOURCE_FLAGS),
])
def test_help_lists_every_flag(koji_cli, hub, command, kind, flags):
    proc = koji_cli(command, '--help')
    assert proc.returncode == 0, proc.stderr
    shown = flags_in(proc.stdout)
    assert shown == set(flags) | {'--help'}
    # and the option flags are exactly the options model's
    model = set(flag for flag, _ in options.cli_options(kind))
    assert model <= shown
    assert shown - model == {'--help', '--wait', '--nowait', '--quiet', '--background',
                             '--channel-override'}
    assert 'Usage: koji %s [options] TARGET' % command in proc.stdout
    assert hub.hub.calls == []


def test_koji_help_lists_the_commands_under_build(koji_cli):
    proc = koji_cli('help', 'build')
    assert proc.returncode == 0, proc.stderr
    for line in ('container-build           Build a container image from an SCM URL',
                 'flatpak-build             Build a Flatpak from an SCM URL',
                 'source-container-build    Build a source container image for an existing '
                 'image build'):
        assert line in proc.stdout


def test_loading_the_plugin_imports_nothing_new():
    """koji imports every CLI plugin on every command: loading ours must stay cheap."""
    code = (
        'import sys, koji, koji.plugin, koji_cli.lib\n'
        'before = set(sys.modules)\n'
        'mod = koji.plugin.PluginTracker().load("cli_containerbuild", path=%r)\n'
        'new = sorted(set(sys.modules) - before - {"_koji_plugin__cli_containerbuild"})\n'
        'assert mod.handle_container_build.exported_cli\n'
        'print(new)\n' % os.path.join(ROOT, 'cli'))
    proc = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '[]'


def test_cli_folder_has_no_init():
    # koji loads every *.py in koji_cli_plugins/; an __init__.py would be loaded as a plugin
    assert not os.path.exists(os.path.join(ROOT, 'cli', '__init__.py'))
