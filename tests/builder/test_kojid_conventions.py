"""Where the builder plugin follows kojid's own build tasks: the allowed-SCM check before
preSCMCheckout, checkout.log in the task output, clear faults for malformed requests."""

import koji
import koji.plugin
import pytest

from koji_containerbuild import errors
from tests.builder.conftest import TARGET


@pytest.fixture
def pre_checkout():
    seen = []

    def callback(cbtype, *args, **kwargs):
        seen.append(kwargs)
    koji.plugin.register_callback('preSCMCheckout', callback)
    yield seen
    koji.plugin.callbacks['preSCMCheckout'].remove(callback)


def test_scm_not_allowed_is_refused_before_pre_checkout(git_daemon, make_task, options,
                                                        osbs_double, pre_checkout, hub):
    options.allowed_scms = 'scm.example.com:/*:no'
    task_id, handler = make_task('buildContainer', [git_daemon.url('demo'), TARGET,
                                                    {'git_branch': 'main'}])
    with pytest.raises(errors.SourceError, match='not allowed'):
        handler.run()
    assert pre_checkout == []
    assert osbs_double.calls('create_binary_container_build') == []


def test_checkout_log_in_task_output(git_daemon, make_task, osbs_double, hub, pre_checkout):
    task_id, handler = make_task('buildContainer', [git_daemon.url('demo'), TARGET,
                                                    {'git_branch': 'main'}])
    handler.run()
    assert len(pre_checkout) == 1
    log = hub.uploaded_files(task_id)['checkout.log'].decode()
    assert 'git fetch' in log and 'Fetched git://' in log


def test_checkout_log_of_a_failed_fetch(git_daemon, make_task, osbs_double, hub):
    src = git_daemon.url('demo').split('#')[0] + '#' + 'f' * 40
    task_id, handler = make_task('buildContainer', [src, TARGET, {'git_branch': 'main'}])
    with pytest.raises(errors.SourceError) as info:
        handler.run()
    log = hub.uploaded_files(task_id)['checkout.log'].decode()
    assert str(info.value) in log


@pytest.mark.parametrize('params, message', [
    (['git://h/r#a', TARGET, 'x86_64'], 'params'),
    (['git://h/r#a', TARGET, 'x86_64', {}, 'extra'], 'positional'),
    ([None, TARGET, 'x86_64', {}], 'src must be a non-empty string'),
    (['git://h/r#a', TARGET, 'x86_64', []], 'params must be a dict'),
])
def test_malformed_create_container_request_is_a_clear_fault(make_task, tmp_path, params,
                                                             message):
    from tests.builder.conftest import write_builder_conf
    conf = write_builder_conf(str(tmp_path / 'native.conf'), str(tmp_path / 'osbs.conf'),
                              backend='native')
    _task_id, handler = make_task('createContainer', params, config_file=conf)
    with pytest.raises(koji.GenericError, match=message):
        handler.run()


def test_source_package_not_listed_is_refused_before_osbs(make_task, osbs_double, hub):
    build = hub.add_build('demo-container-1.0-3', extra={'image': {}})
    task_id, handler = make_task('buildSourceContainer',
                                 [TARGET, {'koji_build_id': build['id']}])
    with pytest.raises(errors.BuildCheckError) as info:
        handler.run()
    text = str(info.value)
    assert 'demo-container-source is not in the package list of tag %s' % TARGET in text
    assert 'koji add-pkg --owner alice %s demo-container-source' % TARGET in text
    assert osbs_double.calls('create_source_container_build') == []
    assert hub.uploaded_files(task_id) == {}


def test_checkout_log_is_bounded(tmp_path):
    from koji_containerbuild import checkout_log
    import logging
    log = checkout_log.CheckoutLog(str(tmp_path / 'c.log'), logging.getLogger('t'))
    for _ in range(100000):
        log.debug('git %s -> %d %s', 'fetch', 0, 'x' * 100)
    log.info('odd %s %s', 'one')          # a bad format still gives a line
    log.close()
    assert (tmp_path / 'c.log').stat().st_size == checkout_log.MAX_SIZE
