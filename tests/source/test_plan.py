"""plan.prepare_binary / prepare_source: real git, real koji.daemon.SCM, hub double."""

import koji
import pytest

from koji_containerbuild import plan
from koji_containerbuild.errors import BuildCheckError, OptionError, SourceError
from tests.doubles.hub_session import make_task_handler_options
from tests.support.gitserver import git

TARGET = 'f40-container-candidate'
OPTS = {'git_branch': 'main'}


def _task(hub, src, opts, method='buildContainer'):
    return hub.add_task(method, [src, TARGET, opts], owner='alice', channel='container')


def test_binary_plan(git_daemon, hub, options, workdir, logger):
    src = git_daemon.url('demo')
    opts = dict(OPTS, scratch=None, yum_repourls=[], skip_build=False)
    task_id = _task(hub, src, opts)
    p = plan.prepare_binary(hub, task_id, src, TARGET, opts, options, workdir, logger=logger)
    assert p.kind == 'binary'
    assert p.opts == {'git_branch': 'main'}
    assert p.warnings == ["Option 'skip_build' is deprecated and ignored"]
    assert p.identity.nvr == 'demo-container-1.0-3'
    assert p.identity.name == 'demo/app'
    assert p.arches == ['x86_64', 'aarch64', 'i386', 'ppc64le']
    assert p.checkout.commit == git_daemon.shas['demo'][1]
    assert p.additional_tags == ['latest', 'stable']
    assert (p.owner, p.channel, p.scratch, p.isolated, p.flatpak) == \
        ('alice', 'container', False, False, False)
    assert p.dest_tag == TARGET and p.build_tag == 'f40-container-build'
    assert p.event == hub.calls_of('getBuildTarget')[0][1]['event']
    # the event the target was resolved at (getLastEvent), recorded for backends
    assert p.event_id == p.event == hub.getLastEvent()['id']
    assert p.git_branch == 'main'
    assert p.labels['com.redhat.component'] == 'demo-container'
    assert hub.calls_of('getPackageConfig')
    assert hub.calls_of('getBuild')[0][0] == ('demo-container-1.0-3',)


def test_policy_data_from_task(git_daemon, hub, workdir, tmp_path):
    seen = []
    hub.set_policy('build_from_scm', lambda data: seen.append(data) or 'allow')
    options = make_task_handler_options(tmp_path, allowed_scms_use_config=False,
                                        allowed_scms_use_policy=True)
    src = git_daemon.url('demo')
    opts = dict(OPTS, scratch=True)
    task_id = _task(hub, src, opts)
    plan.prepare_binary(hub, task_id, src, TARGET, opts, options, workdir)
    alice = hub.getUser('alice')
    assert seen[0]['user_id'] == alice['id']
    assert seen[0]['channel'] == 'container'
    assert seen[0]['scratch'] is True


def test_scratch_skips_koji_state_checks(git_daemon, hub, options, workdir):
    hub.add_build('demo-container-1.0-3')
    src = git_daemon.url('demo')
    opts = dict(OPTS, scratch=True, arch_override='aarch64 s390x', release='9')
    task_id = _task(hub, src, opts)
    p = plan.prepare_binary(hub, task_id, src, TARGET, opts, options, workdir)
    assert p.arches == ['aarch64']
    assert p.identity.release == '9'
    assert not hub.calls_of('getPackageConfig')


def test_nvr_taken(git_daemon, hub, options, workdir):
    hub.add_build('demo-container-1.0-3')
    src = git_daemon.url('demo')
    with pytest.raises(BuildCheckError, match='already exists'):
        plan.prepare_binary(hub, _task(hub, src, OPTS), src, TARGET, OPTS, options, workdir)
    # a release override makes it free again
    opts = dict(OPTS, release='4')
    p = plan.prepare_binary(hub, _task(hub, src, opts), src, TARGET, opts, options, workdir)
    assert p.identity.nvr == 'demo-container-1.0-4'


def test_package_not_listed(git_daemon, hub, options, workdir):
    src = git_daemon.url('demo', module='sub')
    with pytest.raises(BuildCheckError, match='Package sub is not in the package list'):
        plan.prepare_binary(hub, _task(hub, src, OPTS), src, TARGET, OPTS, options, workdir)


def test_missing_labels(git_daemon, hub, options, workdir):
    git_daemon.create('nolabels', [{'Dockerfile': b'FROM x\nLABEL version=1\n'}])
    src = git_daemon.url('nolabels')
    with pytest.raises(SourceError, match='Required Dockerfile labels are missing'):
        plan.prepare_binary(hub, _task(hub, src, OPTS), src, TARGET, OPTS, options, workdir)


def test_flatpak_plan(git_daemon, hub, options, workdir):
    git_daemon.create('flatpak', [{'container.yaml': (
        b'compose:\n  modules: [eog:stable]\nflatpak:\n  component: eog-flatpak\n'
        b'  name: eog\ntags: [extra]\n')}])
    hub.add_package(TARGET, 'eog-flatpak')
    src = git_daemon.url('flatpak')
    opts = dict(OPTS, flatpak=True)
    p = plan.prepare_binary(hub, _task(hub, src, opts), src, TARGET, opts, options, workdir)
    assert p.flatpak and p.kind == 'flatpak'
    assert (p.identity.component, p.identity.version, p.identity.release) == \
        ('eog-flatpak', 'stable', None)
    assert p.checkout.dockerfile_path is None
    assert p.additional_tags == ['extra']


def test_plan_checks_the_commit_is_on_git_branch(git_daemon, hub, options, workdir):
    # fedpkg sends a commit sha; the branch comes from opts['git_branch']
    sha = git_daemon.shas['demo'][0]
    src = git_daemon.url('demo', ref=sha)
    p = plan.prepare_binary(hub, _task(hub, src, OPTS), src, TARGET, OPTS, options, workdir)
    assert git('branch', '-r', '--contains', 'HEAD', cwd=p.checkout.repodir).split() == \
        ['origin/main']
    opts = dict(OPTS, git_branch='f40')
    with pytest.raises(SourceError, match="Branch 'f40' was not found"):
        plan.prepare_binary(hub, _task(hub, src, opts), src, TARGET, opts, options, workdir)


def test_event_id_given_by_the_caller_is_recorded(git_daemon, hub, options, workdir):
    src = git_daemon.url('demo')
    event = hub.getLastEvent()['id']
    p = plan.prepare_binary(hub, _task(hub, src, OPTS), src, TARGET, OPTS, options, workdir,
                            event=event)
    assert p.event_id == event
    assert all(kw.get('event') == event for _, kw in hub.calls_of('getBuildTarget'))


def _bare_flatpak(git_daemon, name, container_yaml):
    # No Dockerfile, no labels: the flatpak's Dockerfile is generated by OSBS.
    git_daemon.create(name, [{'container.yaml': container_yaml}])
    return git_daemon.url(name)


def test_flatpak_scratch_without_any_identity(git_daemon, hub, options, workdir):
    src = _bare_flatpak(git_daemon, 'flatpak-bare', b'flatpak:\n  branch: stable\n')
    opts = dict(OPTS, flatpak=True, scratch=True)
    p = plan.prepare_binary(hub, _task(hub, src, opts), src, TARGET, opts, options, workdir)
    assert p.flatpak and p.scratch
    assert (p.identity.component, p.identity.name, p.identity.version, p.identity.nvr) == \
        (None, None, None, None)
    assert not hub.calls_of('getPackageConfig')


def test_flatpak_non_scratch_needs_a_component(git_daemon, hub, options, workdir):
    src = _bare_flatpak(git_daemon, 'flatpak-noname', b'flatpak:\n  branch: stable\n')
    opts = dict(OPTS, flatpak=True)
    with pytest.raises(BuildCheckError, match='Flatpak build: cannot tell the component.*'
                       'package list'):
        plan.prepare_binary(hub, _task(hub, src, opts), src, TARGET, opts, options, workdir)


def test_flatpak_non_scratch_component_from_module_only(git_daemon, hub, options, workdir):
    # component from compose.modules, no version known: package list checked, no NVR check
    src = _bare_flatpak(git_daemon, 'flatpak-module', b'compose:\n  modules: [eog]\n')
    hub.add_package(TARGET, 'eog')
    opts = dict(OPTS, flatpak=True)
    p = plan.prepare_binary(hub, _task(hub, src, opts), src, TARGET, opts, options, workdir)
    assert (p.identity.component, p.identity.version, p.identity.nvr) == ('eog', None, None)
    assert hub.calls_of('getPackageConfig')
    assert not hub.calls_of('getBuild')


def test_long_tags_and_invalid_tags(git_daemon, hub, options, workdir):
    git_daemon.create('tags', [{'Dockerfile': b'FROM x\nLABEL com.redhat.component=demo-'
                                              b'container name=demo version=1 release=1\n',
                                'additional-tags': b'ok\nbad-dash\n'}])
    src = git_daemon.url('tags')
    p = plan.prepare_binary(hub, _task(hub, src, OPTS), src, TARGET, OPTS, options, workdir)
    assert p.additional_tags == ['ok']
    assert any('bad-dash' in w for w in p.warnings)
    git_daemon.create('longtags', [{'Dockerfile': b'FROM x\nLABEL com.redhat.component=demo-'
                                                  b'container name=demo version=1 release=1\n',
                                    'additional-tags': b'x' * 129 + b'\n'}])
    src = git_daemon.url('longtags')
    with pytest.raises(SourceError, match='longer than 128'):
        plan.prepare_binary(hub, _task(hub, src, OPTS), src, TARGET, OPTS, options, workdir)


@pytest.mark.parametrize('opts, message', [
    ({}, "Missing option 'git_branch'"),
    ({'git_branch': 'main', 'bogus': 1}, "Unknown option for a binary build: 'bogus'"),
    ({'git_branch': 'main', 'scratch': 'yes'}, "Invalid option 'scratch'"),
    ({'git_branch': 'main', 'scratch': True, 'isolated': True}, 'cannot be used together'),
    ({'git_branch': 'main', 'arch_override': 'x86_64'}, 'only allowed for scratch'),
    ({'git_branch': 'main', 'release': '1-2'}, "Invalid option 'release'"),
    ({'git_branch': 'main', 'compose_ids': [0]}, "Invalid option 'compose_ids'"),
    ({'git_branch': 'main', 'skip_build': True}, 'no longer supported'),
    (['not', 'a', 'dict'], 'must be a dict'),
])
def test_bad_opts(hub, options, workdir, opts, message):
    src = 'git://127.0.0.1/x.git#main'
    with pytest.raises(OptionError, match=message):
        plan.prepare_binary(hub, 1, src, TARGET, opts, options, workdir)
    assert not hub.calls   # nothing asked of the hub before the opts are valid


def test_schema_error_mapping():
    # messages derived from jsonschema when the options model has no better one
    class Err(object):
        absolute_path = ['release']
        message = "'1-2' does not match"
        validator = 'pattern'
    assert plan._schema_message(Err()) == "Invalid option 'release': '1-2' does not match"
    Err.absolute_path = []
    Err.validator = 'additionalProperties'
    assert plan._schema_message(Err()).startswith('Unknown option(s)')


def test_schema_and_model_agree_on_valid_opts():
    clean, warnings = plan.validate_opts('binary', {'git_branch': 'b', 'scratch': True,
                                                    'arch_override': 'x86_64',
                                                    'yum_repourls': ['http://r/x.repo']})
    assert clean['arch_override'] == 'x86_64' and warnings == []
    assert plan.validate_opts('source', {'koji_build_id': 3}) == ({'koji_build_id': 3}, [])


@pytest.mark.parametrize('src, message', [
    ('https://example.com/x.git#main', 'unsupported scheme'),
    ('git://example.com/x.git', 'needs a "#<commit or ref>"'),
])
def test_bad_src(hub, options, workdir, src, message):
    with pytest.raises(OptionError, match=message):
        plan.prepare_binary(hub, 1, src, TARGET, OPTS, options, workdir)


def test_unknown_target_and_task(git_daemon, hub, options, workdir):
    src = git_daemon.url('demo')
    task_id = _task(hub, src, OPTS)
    with pytest.raises(OptionError, match='Unknown build target: nope'):
        plan.prepare_binary(hub, task_id, src, 'nope', OPTS, options, workdir)
    with pytest.raises(BuildCheckError, match='Task 999999 does not exist'):
        plan.prepare_binary(hub, 999999, src, TARGET, OPTS, options, workdir)


def test_not_allowed_scm(git_daemon, hub, workdir, tmp_path):
    options = make_task_handler_options(tmp_path)
    src = git_daemon.url('demo')
    with pytest.raises(SourceError, match='SCM not allowed'):
        plan.prepare_binary(hub, _task(hub, src, OPTS), src, TARGET, OPTS, options, workdir)
    options = make_task_handler_options(tmp_path, allowed_scms_use_policy=True,
                                        allowed_scms_use_config=False)
    hub.set_policy('build_from_scm', 'deny')
    with pytest.raises(SourceError, match='is not allowed'):
        plan.prepare_binary(hub, _task(hub, src, OPTS), src, TARGET, OPTS, options, workdir)


# ------------------------------------------------------------------ source containers

@pytest.fixture
def shub(hub):
    """The source conftest's hub plus the source package and a binary image build."""
    hub.add_package(TARGET, 'demo-container-source')
    hub.image_build = hub.add_build('demo-container-1.0-3', extra={'image': {'index': {}}})
    return hub


def _stask(hub, opts):
    return hub.add_task('buildSourceContainer', [TARGET, opts], owner='alice')


def test_source_plan_by_id_and_nvr(shub, options, workdir):
    build = shub.image_build
    for opts in ({'koji_build_id': build['id']}, {'koji_build_nvr': build['nvr']},
                 {'koji_build_id': build['id'], 'koji_build_nvr': build['nvr']}):
        p = plan.prepare_source(shub, _stask(shub, opts), TARGET, opts, options, workdir)
        assert p.build_id == build['id'] and p.build_nvr == build['nvr']
        assert p.component == 'demo-container-source'
        assert p.owner == 'alice' and p.dest_tag == TARGET and not p.scratch
        assert p.event_id == p.event == shub.getLastEvent()['id']


def test_source_plan_mismatch(shub, options, workdir):
    other = shub.add_build('demo-container-1.0-4', extra={'image': {}})
    opts = {'koji_build_id': other['id'], 'koji_build_nvr': shub.image_build['nvr']}
    with pytest.raises(OptionError, match='is build demo-container-1.0-4, not'):
        plan.prepare_source(shub, _stask(shub, opts), TARGET, opts, options, workdir)


@pytest.mark.parametrize('opts, message', [
    ({'koji_build_id': 9999}, 'No build with id 9999'),
    ({'koji_build_nvr': 'no-such-1'}, 'No build no-such-1'),
    ({}, "one of the options 'koji_build_id' or 'koji_build_nvr' is required"),
    ({'koji_build_id': 'x'}, "Invalid option 'koji_build_id'"),
    ({'koji_build_id': 1, 'git_branch': 'main'}, 'Unknown option'),
])
def test_source_plan_bad_requests(shub, options, workdir, opts, message):
    with pytest.raises((OptionError, BuildCheckError), match=message):
        plan.prepare_source(shub, _stask(shub, opts), TARGET, opts, options, workdir)


def test_source_plan_build_kind_rules(shub, options, workdir):
    rpm = shub.add_build('bash-5.2-1')
    opts = {'koji_build_id': rpm['id']}
    with pytest.raises(BuildCheckError, match='not a container image build'):
        plan.prepare_source(shub, _stask(shub, opts), TARGET, opts, options, workdir)
    src = shub.add_build('demo-container-source-1.0-3',
                         extra={'image': {'sources_for_nvr': 'demo-container-1.0-3'}})
    opts = {'koji_build_nvr': src['nvr']}
    with pytest.raises(BuildCheckError, match='itself a source container build'):
        plan.prepare_source(shub, _stask(shub, opts), TARGET, opts, options, workdir)
    failed = shub.add_build('demo-container-1.0-5', extra={'image': {}},
                            state=koji.BUILD_STATES['FAILED'])
    opts = {'koji_build_id': failed['id']}
    with pytest.raises(BuildCheckError, match='not complete'):
        plan.prepare_source(shub, _stask(shub, opts), TARGET, opts, options, workdir)
    typed = shub.add_build('typed-1-1', extra={'typeinfo': {'image': {}}})
    shub.add_package(TARGET, 'typed-source')
    opts = {'koji_build_id': typed['id']}
    assert plan.prepare_source(shub, _stask(shub, opts), TARGET, opts, options,
                               workdir).component == 'typed-source'


def test_source_plan_whitelist(shub, options, workdir):
    other = shub.add_build('unlisted-1-1', extra={'image': {}})
    opts = {'koji_build_id': other['id']}
    with pytest.raises(BuildCheckError, match='unlisted-source is not in the package list'):
        plan.prepare_source(shub, _stask(shub, opts), TARGET, opts, options, workdir)
    opts = {'koji_build_id': other['id'], 'scratch': True}
    p = plan.prepare_source(shub, _stask(shub, opts), TARGET, opts, options, workdir)
    assert p.scratch and p.component == 'unlisted-source'
