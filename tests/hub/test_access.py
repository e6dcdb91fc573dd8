"""Login, permissions, channels, priorities, targets and locked tags on the hub calls."""

import koji
import pytest

from koji_containerbuild import hub_policy
from koji_containerbuild.errors import OptionError, PermissionDenied
from tests.hub.conftest import LOCKED_TARGET, SRC, TARGET, base_opts, submit

KINDS = ('binary', 'flatpak', 'source')
DEFAULT_CHANNEL = {'binary': 'container-binary', 'flatpak': 'container-binary',
                   'source': 'container-source'}


def write_config(plugin, tmp_path, text):
    path = tmp_path / 'hub_containerbuild.conf'
    path.write_text(text)
    plugin.CONFIG = hub_policy.LazyConfig(str(path))


@pytest.mark.parametrize('kind', KINDS)
def test_login_required(hub, plugin, kind):
    hub.logout()
    with pytest.raises(koji.ActionNotAllowed, match='logged in'):
        submit(hub, plugin, kind, base_opts(kind))
    assert hub.tasks == {}


@pytest.mark.parametrize('kind', KINDS)
def test_defaults(hub, plugin, kind):
    task_id = submit(hub, plugin, kind, base_opts(kind))
    task = hub.tasks[task_id]
    assert task['channel'] == DEFAULT_CHANNEL[kind]
    assert task['priority'] == koji.PRIO_DEFAULT
    assert task['owner'] == koji.context.context.session.user_id
    assert task['arch'] == 'noarch'
    assert task['state'] == koji.TASK_STATES['FREE']
    assert isinstance(task_id, int)


def test_channel_default_is_the_signature_default(hub, plugin):
    # clients that pass nothing and clients that pass channel=None get the same
    first = hub.call(plugin.buildContainer, SRC, TARGET, base_opts('binary'))
    second = hub.call(plugin.buildContainer, SRC, TARGET, base_opts('binary'), None, None)
    assert hub.tasks[first]['channel'] == hub.tasks[second]['channel'] == 'container-binary'


# ------------------------------------------------------------------ priority

@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('offset', [0, 1, 5, hub_policy.MAX_PRIORITY_OFFSET])
def test_non_negative_priority_for_everyone(hub, plugin, kind, offset):
    task_id = submit(hub, plugin, kind, base_opts(kind), priority=offset)
    assert hub.tasks[task_id]['priority'] == koji.PRIO_DEFAULT + offset


@pytest.mark.parametrize('kind', KINDS)
def test_negative_priority_needs_admin(hub, plugin, kind):
    hub.login('bob', perms=['container-channel', 'build'])
    with pytest.raises(PermissionDenied, match='admin'):
        submit(hub, plugin, kind, base_opts(kind), priority=-1)
    assert hub.tasks == {}
    hub.login('root', perms=['admin'])
    task_id = submit(hub, plugin, kind, base_opts(kind), priority=-5)
    assert hub.tasks[task_id]['priority'] == koji.PRIO_DEFAULT - 5


@pytest.mark.parametrize('priority', [True, False, '1', 1.0, [1], {'p': 1},
                                      hub_policy.MAX_PRIORITY_OFFSET + 1, 2 ** 64, -2 ** 64])
def test_bad_priority(hub, plugin, priority):
    hub.login('root', perms=['admin'])
    with pytest.raises(OptionError, match='priority'):
        submit(hub, plugin, 'binary', base_opts('binary'), priority=priority)
    assert hub.tasks == {}


def test_priority_policy_still_applies(hub, plugin):
    hub.priority_policy = lambda data: 'adjust +3' if data.get('scratch') else 'stay'
    opts = dict(base_opts('binary'), scratch=True)
    task_id = submit(hub, plugin, 'binary', opts, priority=2)
    assert hub.tasks[task_id]['priority'] == koji.PRIO_DEFAULT + 2 + 3


# ------------------------------------------------------------------ channels

@pytest.mark.parametrize('kind', KINDS)
def test_default_channel_passed_explicitly(hub, plugin, kind):
    task_id = submit(hub, plugin, kind, base_opts(kind), channel=DEFAULT_CHANNEL[kind])
    assert hub.tasks[task_id]['channel'] == DEFAULT_CHANNEL[kind]


@pytest.mark.parametrize('kind', KINDS)
def test_other_channel_refused_without_config(hub, plugin, kind):
    hub.login('bob', perms=['container-channel'])
    with pytest.raises(PermissionDenied, match="'container-fast'.*admin"):
        submit(hub, plugin, kind, base_opts(kind), channel='container-fast')
    assert hub.tasks == {}


@pytest.mark.parametrize('kind', KINDS)
def test_other_channel_for_admin(hub, plugin, kind):
    hub.login('root', perms=['admin'])
    task_id = submit(hub, plugin, kind, base_opts(kind), channel='container-fast')
    assert hub.tasks[task_id]['channel'] == 'container-fast'
    assert hub.tasks[task_id]['policy_data']['req_channel'] == 'container-fast'


def test_source_channel_on_binary_build_is_an_override(hub, plugin):
    with pytest.raises(PermissionDenied):
        submit(hub, plugin, 'binary', base_opts('binary'), channel='container-source')
    assert hub.tasks == {}


@pytest.mark.parametrize('kind', KINDS)
def test_other_channel_with_configured_permission(hub, plugin, tmp_path, kind):
    write_config(plugin, tmp_path,
                 '[hub_containerbuild]\nchannel_override_permission = container-channel\n')
    hub.login('bob', perms=['container-channel'])
    task_id = submit(hub, plugin, kind, base_opts(kind), channel='container-fast')
    assert hub.tasks[task_id]['channel'] == 'container-fast'
    hub.login('carol', perms=['build'])
    with pytest.raises(PermissionDenied, match="'container-channel' permission or admin"):
        submit(hub, plugin, kind, base_opts(kind), channel='container-fast')
    assert list(hub.tasks) == [task_id]


@pytest.mark.parametrize('channel', ['', 'has space', 'x' * 129, 3, True, ['c'], {'c': 1},
                                     'bad\nname'])
def test_bad_channel_value(hub, plugin, channel):
    hub.login('root', perms=['admin'])
    with pytest.raises(OptionError, match='channel'):
        submit(hub, plugin, 'binary', base_opts('binary'), channel=channel)
    assert hub.tasks == {}


@pytest.mark.parametrize('channel,message', [('no-such', 'No such channel'),
                                             ('container-off', 'disabled')])
def test_admin_unknown_or_disabled_channel(hub, plugin, channel, message):
    # checked by make_task itself; the call fails and its task is rolled back
    hub.login('root', perms=['admin'])
    with pytest.raises(koji.GenericError, match=message):
        submit(hub, plugin, 'binary', base_opts('binary'), channel=channel)
    assert hub.tasks == {}


def test_missing_default_channel_is_a_fault(hub, plugin):
    hub.channels = dict((k, v) for k, v in hub.channels.items()
                        if v['name'] != 'container-source')
    with pytest.raises(koji.GenericError, match='No such channel: container-source'):
        submit(hub, plugin, 'source', base_opts('source'))
    assert hub.tasks == {}


# ------------------------------------------------------------------ build permission

@pytest.mark.parametrize('kind', KINDS)
def test_build_permission(hub, plugin, tmp_path, kind):
    write_config(plugin, tmp_path, '[hub_containerbuild]\nbuild_permission = container\n')
    with pytest.raises(PermissionDenied, match="'container' permission"):
        submit(hub, plugin, kind, base_opts(kind))
    assert hub.tasks == {}
    hub.login('bob', perms=['container'])
    first = submit(hub, plugin, kind, base_opts(kind))
    hub.login('root', perms=['admin'])
    second = submit(hub, plugin, kind, base_opts(kind))
    assert sorted(hub.tasks) == sorted([first, second])


def test_build_permission_checked_before_inputs(hub, plugin, tmp_path):
    # an unauthorised caller learns nothing about targets or option rules
    write_config(plugin, tmp_path, '[hub_containerbuild]\nbuild_permission = container\n')
    with pytest.raises(PermissionDenied):
        hub.call(plugin.buildContainer, 'bad', 'no-such-target', {'bogus': 1})
    with pytest.raises(PermissionDenied):
        hub.call(plugin.buildSourceContainer, 'no-such-target', {'bogus': 1})


# ------------------------------------------------------------------ targets

@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('target,message', [
    ('no-such-target', "Unknown build target: 'no-such-target'"),
    (999, 'Unknown build target: 999'),
    ('', 'Invalid target'),
    (' f40 ', 'Invalid target'),
    (None, 'Invalid target'),
    (True, 'Invalid target'),
    (['t'], 'Invalid target'),
    ({'name': 't'}, 'Invalid target'),
    (2 ** 64, 'Invalid target id'),
    ('t' * 300, 'Invalid target'),
])
def test_bad_target(hub, plugin, kind, target, message):
    with pytest.raises(OptionError) as err:
        submit(hub, plugin, kind, base_opts(kind), target=target)
    assert message in str(err.value)
    assert hub.tasks == {}


def test_target_by_id(hub, plugin):
    target_id = hub.get_build_target(TARGET)['id']
    task_id = submit(hub, plugin, 'binary', base_opts('binary'), target=target_id)
    assert hub.tasks[task_id]['arglist'][1] == target_id
    assert hub.tasks[task_id]['policy_data']['target'] == TARGET


@pytest.mark.parametrize('kind', KINDS)
def test_locked_destination_tag(hub, plugin, kind):
    with pytest.raises(PermissionDenied, match="'frozen-candidate'.*locked.*scratch"):
        submit(hub, plugin, kind, base_opts(kind), target=LOCKED_TARGET)
    assert hub.tasks == {}
    opts = dict(base_opts(kind), scratch=True)
    task_id = submit(hub, plugin, kind, opts, target=LOCKED_TARGET)
    assert hub.tasks[task_id]['arglist'][-1]['scratch'] is True


def test_locked_tag_also_for_admin(hub, plugin):
    hub.login('root', perms=['admin'])
    with pytest.raises(PermissionDenied, match='locked'):
        submit(hub, plugin, 'binary', base_opts('binary'), target=LOCKED_TARGET)


# ------------------------------------------------------------------ faults on the wire

def test_faults_keep_koji_codes(hub, plugin):
    hub.logout()
    with pytest.raises(koji.GenericError) as err:
        submit(hub, plugin, 'binary', base_opts('binary'))
    assert hub.fault_of(err.value).faultCode == koji.ActionNotAllowed.faultCode
    hub.login('bob')
    with pytest.raises(koji.GenericError) as err:
        submit(hub, plugin, 'binary', {'bogus': 1})
    fault = hub.fault_of(err.value)
    assert fault.faultCode == koji.ParameterError.faultCode
    assert 'bogus' in fault.faultString
    # the client maps it back to a known koji exception
    assert isinstance(koji.convertFault(fault), koji.ParameterError)
