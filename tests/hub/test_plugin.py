"""Plugin loading, exported calls and task signatures, as the hub sees them."""

import inspect

import koji
import koji.plugin
import koji.tasks
import pytest

from koji_containerbuild import hub_policy
from tests.hub.conftest import SRC, TARGET, base_opts, load_plugin, submit


def exported(module):
    # the hub scans every non-class callable of the module for the export mark
    return sorted(name for name, value in vars(module).items()
                  if callable(value) and not inspect.isclass(value)
                  and getattr(value, 'exported', False))


def test_exports(plugin):
    assert exported(plugin) == ['buildContainer', 'buildSourceContainer']
    # exported under their own names (no alias, no module prefix)
    assert not hasattr(plugin.buildContainer, 'export_alias')
    assert not hasattr(plugin.buildSourceContainer, 'export_alias')


def test_call_signatures(plugin):
    sig = inspect.signature(plugin.buildContainer)
    assert list(sig.parameters) == ['src', 'target', 'opts', 'priority', 'channel']
    assert sig.parameters['channel'].default == 'container-binary'
    assert sig.parameters['opts'].default is None
    assert sig.parameters['priority'].default is None
    sig = inspect.signature(plugin.buildSourceContainer)
    assert list(sig.parameters) == ['target', 'opts', 'priority', 'channel']
    assert sig.parameters['channel'].default == 'container-source'


def test_legacy_signatures_registered(plugin):
    assert koji.tasks.LEGACY_SIGNATURES['buildContainer'] == [
        [['src', 'target', 'opts'], None, None, (None,)]]
    assert koji.tasks.LEGACY_SIGNATURES['buildSourceContainer'] == [
        [['target', 'opts'], None, None, (None,)]]


def test_reimport_does_not_clobber(hub, monkeypatch):
    other = [['src', 'target', 'opts', 'extra'], None, None, (None, None)]
    monkeypatch.setitem(koji.tasks.LEGACY_SIGNATURES, 'buildContainer', [other])
    load_plugin()
    load_plugin('_koji_plugin__hub_containerbuild_again')
    assert koji.tasks.LEGACY_SIGNATURES['buildContainer'] == [
        other, [['src', 'target', 'opts'], None, None, (None,)]]


def test_parse_task_params_on_created_tasks(hub, plugin):
    opts = dict(base_opts('binary'), scratch=True, yum_repourls=['http://r.example.com/a.repo'])
    binary = submit(hub, plugin, 'binary', opts)
    source = submit(hub, plugin, 'source', {'koji_build_nvr': 'demo-1.0-1'})
    for task_id in (binary, source):
        task = hub.tasks[task_id]
        params, method = hub.decoded_request(task_id)
        assert method == task['method']
        parsed = koji.tasks.parse_task_params(method, list(params))
        if method == 'buildContainer':
            assert parsed == {'src': SRC, 'target': TARGET, 'opts': opts}
        else:
            assert parsed == {'target': TARGET, 'opts': {'koji_build_nvr': 'demo-1.0-1'}}


def test_policies_see_source_target_scratch(hub, plugin):
    seen = []

    def channel_policy(data):
        seen.append(dict(data))
        return 'req'

    hub.channel_policy = channel_policy
    submit(hub, plugin, 'binary', dict(base_opts('binary'), scratch=True))
    submit(hub, plugin, 'source', base_opts('source'))
    assert seen[0]['method'] == 'buildContainer'
    assert seen[0]['source'] == SRC
    assert seen[0]['target'] == TARGET
    assert seen[0]['scratch'] is True
    assert seen[0]['req_channel'] == 'container-binary'
    assert seen[1]['target'] == TARGET and 'source' not in seen[1]
    assert seen[1]['req_channel'] == 'container-source'


def test_channel_policy_can_redirect(hub, plugin):
    hub.channel_policy = lambda data: 'use container-fast' if data.get('scratch') else 'req'
    scratch = submit(hub, plugin, 'binary', dict(base_opts('binary'), scratch=True))
    normal = submit(hub, plugin, 'binary', base_opts('binary'))
    assert hub.tasks[scratch]['channel'] == 'container-fast'
    assert hub.tasks[normal]['channel'] == 'container-binary'


def test_deprecated_option_warning_logged(hub, plugin, caplog):
    caplog.set_level('WARNING', logger='koji.plugin.hub_containerbuild')
    submit(hub, plugin, 'binary', dict(base_opts('binary'), skip_build=False))
    assert "'skip_build' is deprecated" in caplog.text


def test_register_signatures_is_idempotent():
    table = {}
    hub_policy.register_signatures(table)
    hub_policy.register_signatures(table)
    assert table == dict((k, [list(v)]) for k, v in hub_policy.TASK_SIGNATURES.items())


def test_plugin_file_is_thin():
    # decisions live in koji_containerbuild.hub_policy, not in the plugin file
    import os
    from tests.hub.conftest import PLUGIN_PATH
    with open(PLUGIN_PATH) as f:
        code = [line for line in f if line.strip() and not line.strip().startswith('#')]
    assert len(code) < 60
    assert os.path.basename(PLUGIN_PATH) == 'hub_containerbuild.py'


@pytest.mark.parametrize('kind', ['binary', 'source'])
def test_task_ids_are_ints_and_distinct(hub, plugin, kind):
    ids = [submit(hub, plugin, kind, base_opts(kind)) for _ in range(3)]
    assert all(type(i) is int for i in ids) and len(set(ids)) == 3


def test_create_container_signature_registered(plugin):
    """The native builder's per-arch subtask: policies and taskinfo see its arguments."""
    load_plugin('_koji_plugin__hub_containerbuild_again2')
    assert koji.tasks.LEGACY_SIGNATURES['createContainer'] == [
        [['src', 'target', 'arch', 'params'], None, None, None]]
    params = koji.tasks.parse_task_params(
        'createContainer', ['git://scm.example.com/c/demo#abc', 'f40-candidate', 'x86_64',
                            {'repo_id': 7}])
    assert params == {'src': 'git://scm.example.com/c/demo#abc', 'target': 'f40-candidate',
                      'arch': 'x86_64', 'params': {'repo_id': 7}}
