"""pre/postSCMCheckout callbacks around the fetch, as kojid's own build tasks run them;
a policy plugin like kojid's scmpolicy asserts the hub's `scm` policy there."""

import os

import koji
import koji.plugin
import pytest

from koji_containerbuild import errors
from tests.builder.conftest import TARGET


@pytest.fixture
def callbacks():
    """Register callbacks for one test only (koji.plugin keeps them globally)."""
    added = []

    def _register(cbtype, func):
        koji.plugin.register_callback(cbtype, func)
        added.append((cbtype, func))
    yield _register
    for cbtype, func in added:
        koji.plugin.callbacks[cbtype].remove(func)


def _scm_policy(seen):
    # what kojid's scmpolicy plugin does: assert the hub's `scm` policy after checkout
    def assert_scm_policy(cbtype, *args, **kwargs):
        seen.append(dict(kwargs, cbtype=cbtype,
                         dockerfile=os.path.isfile(os.path.join(kwargs['srcdir'],
                                                                'Dockerfile'))))
        policy_data = {'build_tag': kwargs['build_tag']['id'],
                       'method': kwargs['taskinfo']['method'] if kwargs['taskinfo'] else None,
                       'scratch': kwargs['scratch'],
                       'scm': kwargs['scminfo']}
        kwargs['session'].host.assertPolicy('scm', policy_data)
    return assert_scm_policy


@pytest.mark.parametrize('scratch', [False, True])
def test_post_checkout_callback_sees_the_checkout(git_daemon, make_task, osbs_double, hub,
                                                  callbacks, scratch):
    seen, pre = [], []
    callbacks('preSCMCheckout', lambda cbtype, *a, **kw: pre.append(kw))
    callbacks('postSCMCheckout', _scm_policy(seen))
    policy_data = []
    hub.set_policy('scm', lambda data: policy_data.append(data) or 'allow')
    _task_id, handler = make_task('buildContainer', [git_daemon.url('demo'), TARGET,
                                                     {'git_branch': 'main',
                                                      'scratch': scratch}])
    handler.run()
    (call,) = seen
    assert call['cbtype'] == 'postSCMCheckout' and call['dockerfile']
    assert call['scratch'] is scratch
    assert call['build_tag']['name'] == 'f40-container-build'
    assert call['scminfo']['repository'].endswith('/demo.git')
    assert pre and pre[0]['scratch'] is scratch and 'srcdir' not in pre[0]
    assert policy_data and policy_data[0]['scratch'] is scratch
    assert len(osbs_double.calls('create_binary_container_build')) == 1


def test_policy_denial_is_a_clear_fault_and_no_run(git_daemon, make_task, osbs_double, hub,
                                                   callbacks):
    callbacks('postSCMCheckout', _scm_policy([]))
    hub.set_policy('scm', 'deny repository not approved')
    _task_id, handler = make_task('buildContainer', [git_daemon.url('demo'), TARGET,
                                                     {'git_branch': 'main'}])
    with pytest.raises(errors.PermissionDenied) as info:
        handler.run()
    message = str(info.value)
    assert 'postSCMCheckout callback refused' in message
    assert 'policy violation (scm): repository not approved' in message
    assert 'Traceback' not in message
    assert osbs_double.calls('create_binary_container_build') == []
    assert osbs_double.runs() == []


def test_other_callback_failure_is_a_source_error(git_daemon, make_task, osbs_double,
                                                  callbacks):
    def broken(cbtype, *args, **kwargs):
        raise ValueError('cannot parse branches')
    callbacks('preSCMCheckout', broken)
    _task_id, handler = make_task('buildContainer', [git_daemon.url('demo'), TARGET,
                                                     {'git_branch': 'main'}])
    with pytest.raises(errors.SourceError, match='preSCMCheckout callback refused .*'
                                                 'cannot parse branches'):
        handler.run()
    assert osbs_double.calls('create_binary_container_build') == []
