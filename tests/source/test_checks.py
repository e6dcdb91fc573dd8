"""checks.py against the hub session double."""

import logging

import koji
import pytest

from koji_containerbuild import checks
from koji_containerbuild.errors import BuildCheckError, OptionError

TARGET = 'f40-container-candidate'
BUILD_TAG = 'f40-container-build'
DEST = 'f40-container-candidate'


def test_resolve_target_at_event(hub):
    event = hub.getLastEvent()['id']
    info = checks.resolve_target(hub, TARGET, event=event)
    assert info['name'] == TARGET
    assert info['build_tag_name'] == BUILD_TAG
    assert info['dest_tag_name'] == DEST
    assert info['build_config']['name'] == BUILD_TAG
    assert info['dest_tag_info']['name'] == DEST
    assert hub.calls_of('getBuildTarget')[-1] == ((TARGET,), {'event': event})
    assert hub.calls_of('getBuildConfig')[-1][1] == {'event': event}


@pytest.mark.parametrize('target', ['nope', '', None, True, ['x']])
def test_unknown_or_bad_target(hub, target):
    with pytest.raises(OptionError):
        checks.resolve_target(hub, target)


def test_build_tag_unreadable(hub):
    hub.fail_next('getBuildConfig', koji.GenericError('No such tagInfo'))
    with pytest.raises(BuildCheckError, match='Build tag f40-container-build of target'):
        checks.resolve_target(hub, TARGET)


def test_dest_tag_missing(hub):
    hub.fail_next('getTag', koji.GenericError('boom'))
    with pytest.raises(koji.GenericError):
        checks.resolve_target(hub, TARGET)


def test_arches_canonical_deduped_in_order(hub):
    hub.add_tag('multi', arches='i686 x86_64 athlon i386 ppc64le ppc64p7')
    assert checks.build_arches(hub, 'multi', None, False, False) == \
        ['i386', 'x86_64', 'ppc64le', 'ppc64']


def test_arches_from_config_dict(hub):
    config = hub.getBuildConfig(BUILD_TAG)
    assert checks.build_arches(hub, config, '', False, False) == \
        ['x86_64', 'aarch64', 'i386', 'ppc64le']


def test_arches_inherited(hub):
    hub.add_tag('parent', arches='s390x')
    hub.add_tag('child', arches='', parents=['parent'])
    assert checks.build_arches(hub, 'child', None, False, False) == ['s390x']


def test_no_arches(hub):
    with pytest.raises(BuildCheckError, match='has no arches'):
        checks.build_arches(hub, DEST, None, False, False)


def test_missing_build_tag(hub):
    with pytest.raises(BuildCheckError, match='cannot be read'):
        checks.build_arches(hub, 'nope', None, True, False)


def test_override_only_scratch_or_isolated(hub):
    with pytest.raises(BuildCheckError, match='only allowed for scratch or isolated'):
        checks.build_arches(hub, BUILD_TAG, 'x86_64', False, False)
    assert checks.build_arches(hub, BUILD_TAG, 'aarch64', True, False) == ['aarch64']
    assert checks.build_arches(hub, BUILD_TAG, 'aarch64,i686', False, True) == \
        ['aarch64', 'i386']


def test_override_keeps_only_tag_arches(hub, caplog):
    caplog.set_level(logging.WARNING)
    got = checks.build_arches(hub, BUILD_TAG, 's390x x86_64 x86_64', True, False,
                              logger=logging.getLogger('t'))
    assert got == ['x86_64']
    assert 's390x' in caplog.text
    with pytest.raises(BuildCheckError, match=r'None of the requested arches \(s390x\)'):
        checks.build_arches(hub, BUILD_TAG, 's390x', True, False)


def test_package_allowed(hub):
    assert checks.check_package_allowed(hub, DEST, 'demo-container')['blocked'] is False
    with pytest.raises(BuildCheckError, match='not in the package list of tag'):
        checks.check_package_allowed(hub, DEST, 'other')
    hub.add_package(DEST, 'blocked-one', blocked=True)
    with pytest.raises(BuildCheckError, match='blocked'):
        checks.check_package_allowed(hub, DEST, 'blocked-one')


def test_package_allowed_through_inheritance_and_event(hub):
    hub.add_tag('base-candidate')
    hub.add_tag('inheriting', parents=['base-candidate'])
    hub.add_package('base-candidate', 'inherited')
    checks.check_package_allowed(hub, 'inheriting', 'inherited', event=42)
    assert hub.calls_of('getPackageConfig')[-1] == (('inheriting', 'inherited'),
                                                    {'event': 42})


def test_package_check_hub_error(hub):
    with pytest.raises(BuildCheckError, match='Cannot check package'):
        checks.check_package_allowed(hub, 'no-such-tag', 'x')


@pytest.mark.parametrize('state, free', [
    ('COMPLETE', False), ('BUILDING', False), ('DELETED', False),
    ('FAILED', True), ('CANCELED', True),
])
def test_nvr_free(hub, state, free):
    hub.add_build('demo-container-1.0-3', state=koji.BUILD_STATES[state])
    if free:
        assert checks.check_nvr_free(hub, 'demo-container-1.0-3')['state'] == \
            koji.BUILD_STATES[state]
    else:
        with pytest.raises(BuildCheckError, match='already exists .* state %s' % state):
            checks.check_nvr_free(hub, 'demo-container-1.0-3')


def test_nvr_unknown_is_free(hub):
    assert checks.check_nvr_free(hub, 'demo-container-9-9') is None
