"""Every build option through the hub calls, driven from the options table."""

import re

import koji
import pytest

from koji_containerbuild import options
from koji_containerbuild.errors import OptionError
from tests.hub.conftest import SRC, TARGET, base_opts, submit

# A valid example for each text pattern in the table; a new pattern without one
# fails test_every_option_has_samples, so new options cannot go untested.
TEXT_SAMPLES = {
    options.ARCH_LIST_PATTERN: 'x86_64 aarch64',
    options.RELEASE_PATTERN: '3.el9',
    options.NVR_PATTERN: 'base-image-9.4-12',
    options.URL_PATTERN: 'https://repos.example.com/extra.repo',
    options.DEP_REPLACEMENT_PATTERN: 'gomod:example.com/lib:v1.2.3',
    options.TEXT_PATTERN: 'release',
    options.BY_NAME['git_branch'].pattern: 'f40',
}
BAD_TEXTS = ['', ' padded ', 'two\nlines', 'has space', '-1', 'x' * (options.MAX_TEXT + 1),
             'a:b', 'no-dashes', 'ftp:/broken', 'ab#c d']


def valid_value(opt):
    if opt.vtype == 'bool':
        return False if opt.deprecated else True
    if opt.vtype == 'int':
        return 42
    if opt.vtype == 'list_int':
        return [1, 2]
    if opt.vtype == 'object':
        return {'team': 'containers', 'nested': {'n': [1, 'two']}}
    text = TEXT_SAMPLES.get(opt.pattern, 'plain-text') if opt.pattern else 'plain-text'
    return [text] if opt.vtype == 'list_text' else text


def invalid_values(opt):
    """Values of the wrong type, plus texts that break the option's pattern."""
    wrong_types = {
        'bool': [1, 0, 'true', [], {}],
        'int': [True, '1', 1.5, float('nan'), 0, -3, [1]],
        'list_int': [1, [True], ['1'], [0], [1.5], [float('inf')], 'x', {}],
        'object': [[], 'x', 1, True, {1: 'a'}, {'s': {1, 2}}],
        'text': [1, True, ['x'], {'a': 1}],
        'list_text': ['x', [1], [None], [['x']], {}],
    }[opt.vtype]
    if opt.deprecated:
        wrong_types = wrong_types + [True]
    if opt.vtype in ('text', 'list_text'):
        bad = [t for t in BAD_TEXTS
               if len(t) > options.MAX_TEXT or (opt.pattern and not re.match(opt.pattern, t))]
        assert bad, 'no bad text sample for %s' % opt.name
        wrong_types += bad if opt.vtype == 'text' else [[t] for t in bad]
    return wrong_types


def with_partners(kind, name, value):
    """base opts + the option + whatever the table's rules need alongside it."""
    opts = base_opts(kind)
    opts[name] = value
    needed = [name]
    while needed:          # partners can need partners (csv url -> isolated -> release)
        current = needed.pop()
        for rule in options.rules_for(kind):
            partner = rule.others[0] if rule.others else None
            if rule.kind == 'requires' and current in rule.names and partner not in opts:
                opts[partner] = valid_value(options.BY_NAME[partner])
                needed.append(partner)
    return opts


def cases(valid):
    out = []
    for kind in options.KINDS:
        for opt in options.options_for(kind):
            if opt.name == 'flatpak' and kind == 'binary':
                continue  # flatpak=True is what makes a request a flatpak one
            if valid:
                out.append(pytest.param(kind, opt, id='%s-%s' % (kind, opt.name)))
            else:
                for n, value in enumerate(invalid_values(opt)):
                    out.append(pytest.param(kind, opt, value,
                                            id='%s-%s-%d' % (kind, opt.name, n)))
    return out


def test_every_option_has_samples():
    for opt in options.OPTIONS:
        if opt.vtype in ('text', 'list_text') and opt.pattern:
            assert opt.pattern in TEXT_SAMPLES, opt.name
            assert re.match(opt.pattern, TEXT_SAMPLES[opt.pattern]), opt.name


@pytest.mark.parametrize('kind,opt', cases(valid=True))
def test_option_accepted(hub, plugin, kind, opt):
    value = valid_value(opt)
    opts = with_partners(kind, opt.name, value)
    task_id = submit(hub, plugin, kind, opts)
    task = hub.tasks[task_id]
    sent = task['arglist'][-1]
    assert sent == options.validate(kind, opts)[0]
    if opt.deprecated:
        assert opt.name not in sent
    else:
        assert sent[opt.name] == value
    if kind == 'source':
        assert task['method'] == 'buildSourceContainer'
        assert task['arglist'] == [TARGET, sent]
    else:
        assert task['method'] == 'buildContainer'
        assert task['arglist'] == [SRC, TARGET, sent]
    # what kojid reads back is what was sent
    assert hub.decoded_request(task_id) == (tuple(task['arglist']), task['method'])


@pytest.mark.parametrize('kind,opt,value', cases(valid=False))
def test_option_rejected(hub, plugin, kind, opt, value):
    opts = with_partners(kind, opt.name, value)
    with pytest.raises(OptionError) as err:
        submit(hub, plugin, kind, opts)
    assert repr(opt.name) in str(err.value)
    assert hub.tasks == {}


@pytest.mark.parametrize('kind', options.KINDS)
def test_options_of_other_kinds_rejected(hub, plugin, kind):
    accepted = set(o.name for o in options.options_for(kind))
    if kind == 'binary':
        accepted |= set(o.name for o in options.options_for('flatpak'))
    foreign = [o for o in options.OPTIONS if o.name not in accepted]
    if kind != 'source':
        assert foreign, 'source-only options exist'
    for opt in foreign:
        opts = base_opts(kind)
        opts[opt.name] = valid_value(opt)
        with pytest.raises(OptionError, match="Unknown option.*'%s'" % opt.name):
            submit(hub, plugin, kind, opts)
    assert hub.tasks == {}


@pytest.mark.parametrize('kind', options.KINDS)
@pytest.mark.parametrize('key', ['bogus', 'Scratch', '', 'git-branch', 7])
def test_unknown_keys_rejected(hub, plugin, kind, key):
    opts = base_opts(kind)
    opts[key] = True
    with pytest.raises(OptionError, match='Unknown option'):
        submit(hub, plugin, kind, opts)
    assert hub.tasks == {}


@pytest.mark.parametrize('kind', options.KINDS)
@pytest.mark.parametrize('opts', ['scratch', ['scratch'], 1, True])
def test_opts_not_a_dict(hub, plugin, kind, opts):
    with pytest.raises(OptionError, match='opts'):
        submit(hub, plugin, kind, opts)
    assert hub.tasks == {}


@pytest.mark.parametrize('opts,name', [
    ({'git_branch': 'main', 'scratch': True, 'isolated': True}, 'isolated'),
    ({'git_branch': 'main', 'arch_override': 'x86_64'}, 'arch_override'),
    ({'git_branch': 'main', 'signing_intent': 'release', 'compose_ids': [1]}, 'compose_ids'),
    ({'git_branch': 'main', 'operator_csv_modifications_url': 'https://x.example.com/m.json'},
     'operator_csv_modifications_url'),
    ({'git_branch': 'main', 'skip_build': True}, 'skip_build'),
    ({}, 'git_branch'),
    ({'git_branch': None}, 'git_branch'),
    ({'git_branch': ''}, 'git_branch'),
    (None, 'git_branch'),
])
def test_rules_between_options(hub, plugin, opts, name):
    with pytest.raises(OptionError) as err:
        submit(hub, plugin, 'binary', opts)
    assert name in str(err.value)
    assert hub.tasks == {}


@pytest.mark.parametrize('opts', [{}, None, {'koji_build_id': None, 'koji_build_nvr': None}])
def test_source_needs_build_id_or_nvr(hub, plugin, opts):
    with pytest.raises(OptionError, match='koji_build_id'):
        submit(hub, plugin, 'source', opts)
    assert hub.tasks == {}


def test_source_with_both_build_id_and_nvr(hub, plugin):
    opts = {'koji_build_id': 7, 'koji_build_nvr': 'demo-1.0-1', 'scratch': True,
            'signing_intent': 'release', 'userdata': {'a': 1}}
    task_id = submit(hub, plugin, 'source', opts)
    assert hub.tasks[task_id]['arglist'] == [TARGET, opts]


RPKG_OPTS = {'scratch': False, 'release': None, 'isolated': False, 'koji_parent_build': None,
             'yum_repourls': None, 'git_branch': 'f40', 'signing_intent': None,
             'compose_ids': None, 'skip_build': False, 'dependency_replacements': None,
             'arch_override': None, 'flatpak': True}


def test_rpkg_opts_accepted(hub, plugin):
    task_id = submit(hub, plugin, 'flatpak', dict(RPKG_OPTS))
    task = hub.tasks[task_id]
    # unset keys (None/False) are dropped; the request is a flatpak one
    assert task['arglist'] == [SRC, TARGET, {'git_branch': 'f40', 'flatpak': True}]
    assert task['channel'] == 'container-binary'
    assert task['priority'] == koji.PRIO_DEFAULT


def test_rpkg_scratch_arch_override_accepted(hub, plugin):
    opts = dict(RPKG_OPTS, scratch=True, arch_override='x86_64 aarch64')
    task_id = submit(hub, plugin, 'flatpak', opts)
    assert hub.tasks[task_id]['arglist'][2] == {
        'git_branch': 'f40', 'flatpak': True, 'scratch': True,
        'arch_override': 'x86_64 aarch64'}
    assert hub.tasks[task_id]['policy_data']['scratch'] is True


def test_rpkg_arch_override_without_scratch_rejected(hub, plugin):
    # the literal example: arch_override on a non-scratch, non-isolated build
    opts = dict(RPKG_OPTS, arch_override='x86_64 aarch64')
    with pytest.raises(OptionError, match='arch_override'):
        submit(hub, plugin, 'flatpak', opts)
    assert hub.tasks == {}


def test_rpkg_binary_build(hub, plugin):
    opts = dict(RPKG_OPTS, flatpak=False, isolated=True, release='5',
                arch_override='x86_64')
    task_id = submit(hub, plugin, 'binary', opts)
    assert hub.tasks[task_id]['arglist'][2] == {
        'git_branch': 'f40', 'isolated': True, 'release': '5', 'arch_override': 'x86_64'}


@pytest.mark.parametrize('src,problem', [
    ('https://src.example.com/demo#abc', 'scheme'),
    ('git://src.example.com/demo', '#'),
    ('git:///demo#abc', 'host'),
    ('git://user:secret@src.example.com/demo#abc', 'password'),
    ('', 'SCM URL'),
    (None, 'SCM URL'),
    (['git://h/p#r'], 'SCM URL'),
    ('git://src.example.com/demo#ab\x00c', 'control characters'),
    ('git://src.example.com/demo#' + 'a' * 5000, 'longer'),
])
def test_bad_source_rejected(hub, plugin, src, problem):
    with pytest.raises(OptionError) as err:
        submit(hub, plugin, 'binary', base_opts('binary'), src=src)
    assert 'source' in str(err.value) and problem in str(err.value)
    assert 'secret' not in str(err.value)
    assert hub.tasks == {}


@pytest.mark.parametrize('name,value', [
    ('compose_ids', [2 ** 63]),
    ('userdata', {'big': 2 ** 70}),
    ('userdata', {'nested': {1: 'int key'}}),
    ('userdata', {'text': 'bell\x07'}),
    ('userdata', {'text': '\ud800'}),
    ('git_branch', 'f40\x1b'),
])
def test_values_a_task_cannot_store_rejected(hub, plugin, name, value):
    opts = dict(base_opts('binary'), **{name: value})
    with pytest.raises(OptionError, match=repr(name)):
        submit(hub, plugin, 'binary', opts)
    assert hub.tasks == {}


@pytest.mark.parametrize('opts', [
    {'yum_repourls': ['https://bot:s3cr3t@repos.example.com/x.repo']},
    {'yum_repourls': ['https://s3cr3t@repos.example.com/x.repo']},
    {'isolated': True, 'release': '1',
     'operator_csv_modifications_url': 'https://bot:s3cr3t@example.com/csv.json'},
])
def test_credentials_in_url_options_refused(hub, plugin, opts):
    # the task request is public (Koji web, getTaskInfo(request=True))
    with pytest.raises(OptionError, match='credentials') as err:
        submit(hub, plugin, 'binary', dict(base_opts('binary'), **opts))
    assert 's3cr3t' not in str(err.value)
    assert hub.tasks == {}


@pytest.mark.parametrize('kind', ['binary', 'source'])
@pytest.mark.parametrize('number', [float('nan'), float('inf'), -float('inf')])
def test_userdata_nan_and_infinity_refused(hub, plugin, kind, number):
    opts = dict(base_opts(kind), userdata={'n': [number]})
    with pytest.raises(OptionError, match="'userdata': NaN and Infinity"):
        submit(hub, plugin, kind, opts)
    assert hub.tasks == {}


def test_unicode_and_largest_values_accepted(hub, plugin):
    opts = dict(base_opts('binary'), compose_ids=[2 ** 31 - 1],
                userdata={'owner': 'Zoë 🐳', 'n': -2 ** 63, 'f': 1.5, 'none': None})
    task_id = submit(hub, plugin, 'binary', opts)
    assert hub.decoded_request(task_id)[0][2] == opts


def test_integral_floats_are_sent_as_ints(hub, plugin):
    # JSON clients may send 3.0 for 3; the task carries the int
    task_id = submit(hub, plugin, 'binary', dict(base_opts('binary'), compose_ids=[3.0]))
    assert hub.decoded_request(task_id)[0][2]['compose_ids'] == [3]
    task_id = submit(hub, plugin, 'source', {'koji_build_id': 12.0})
    sent = hub.decoded_request(task_id)[0][1]['koji_build_id']
    assert sent == 12 and type(sent) is int


def test_huge_integral_float_rejected(hub, plugin):
    with pytest.raises(OptionError, match='koji_build_id'):
        submit(hub, plugin, 'source', {'koji_build_id': 1e300})
    assert hub.tasks == {}


def deep(levels, leaf='x'):
    value = leaf
    for n in range(levels):
        value = [value] if n % 2 else {'k': value}
    return value


@pytest.mark.parametrize('position', ['src', 'target', 'opts', 'userdata', 'priority',
                                      'channel', 'unknown'])
@pytest.mark.parametrize('levels', [20, 5000])
def test_deep_nesting_refused_everywhere(hub, plugin, position, levels):
    # a hostile client can send deeply nested XML-RPC values; nothing may recurse on them
    hub.login('root', perms=['admin'])
    args = {'src': SRC, 'target': TARGET, 'opts': base_opts('binary'), 'priority': None,
            'channel': None}
    if position == 'userdata':
        args['opts']['userdata'] = {'a': deep(levels)}
    elif position == 'unknown':
        args['opts']['bogus'] = deep(levels)
    else:
        args[position] = deep(levels)
    with pytest.raises(OptionError, match='nested deeper'):
        hub.call(plugin.buildContainer, args['src'], args['target'], args['opts'],
                 args['priority'], args['channel'])
    with pytest.raises(OptionError, match='nested deeper'):
        hub.call(plugin.buildSourceContainer, args['target'],
                 args['opts'] if position != 'src' else deep(levels),
                 args['priority'], args['channel'])
    assert hub.tasks == {}


def test_moderate_nesting_in_userdata_accepted(hub, plugin):
    opts = dict(base_opts('binary'), userdata={'a': deep(14)})
    task_id = submit(hub, plugin, 'binary', opts)
    assert hub.decoded_request(task_id)[0][2]['userdata'] == opts['userdata']
