"""The options model on its own: every option, every rule, unknown keys, null = unset."""

import koji
import pytest

from koji_containerbuild import options
from koji_containerbuild.errors import OptionError

# What each kind needs to be valid at all.
BASE = {
    'binary': {'git_branch': 'f40'},
    'flatpak': {'git_branch': 'f40', 'flatpak': True},
    'source': {'koji_build_id': 12},
}
# Options that are only valid next to another one (the table's 'requires' rules).
PARTNERS = {
    'arch_override': {'scratch': True},
    'operator_csv_modifications_url': {'isolated': True, 'release': '1'},
    'isolated': {'release': '1'},
}
LONG = 'x' * (options.MAX_TEXT + 1)

GOOD = {
    'scratch': [True, False],
    'isolated': [True, False],
    'arch_override': ['x86_64', 'x86_64 aarch64', ' ppc64le  s390x '],
    'git_branch': ['f40', 'feature/new-ui', 'rhel-9.4.0', 'origin/f40', 'a' * 255],
    'release': ['1', '3.el9', '1.2_3', '20240501'],
    'koji_parent_build': ['base-image-9.4-12', 'fedora-container-40-1.5'],
    'yum_repourls': [[], ['http://repos.example.com/x.repo'],
                     ['https://a.example.com/b.repo', 'http://[2001:db8::1]:8080/d.repo']],
    'compose_ids': [[], [1], [1, 2, 99999999]],
    'signing_intent': ['release', 'beta key'],
    'dependency_replacements': [[], ['gomod:example.com/lib:v1.2.3'],
                                ['pip:requests:2.31.0:requests-fork', 'npm:left-pad:1.3.0']],
    'userdata': [{}, {'team': 'containers'}, {'a': [1, 'two', None], 'b': {'c': 1.5}}],
    'operator_csv_modifications_url': ['https://example.com/csv.json'],
    'flatpak': [True, False],
    'skip_build': [False],
    'koji_build_id': [1, 12345678],
    'koji_build_nvr': ['widget-container-2.4-3'],
}

BAD = {
    'scratch': ['true', 1, 0, [True], {}],
    'isolated': ['yes', 1, [False]],
    'arch_override': ['x86_64,aarch64', 'x86-64', 'x86_64;rm', 64, ['x86_64'], LONG,
                      'x86_64\n', 'x86_64\taarch64'],
    'git_branch': ['', 'two words', 'a:b', 'a~1', 'f40\n', 40, ['f40'], LONG, '-x', '../../etc',
                   'a@{1}', 'a.lock', 'a..b', '@', 'a/', '/a', 'a\x7fb', 'refs/heads/a',
                   'a' * 40, 'a' * 256],
    'release': ['', 'el9', '1-2', '.1', '1..2', '1\n', 1, LONG],
    'koji_parent_build': ['base', 'base-1', 'a b-1-2', 'base-1-2\n', 5, ['base-1-2']],
    'yum_repourls': ['http://repos.example.com/x.repo', ['file:///etc/x.repo'], ['repo'],
                     [5], [None], ['http://x.example.com/a b'], ['http://x.example.com\n'],
                     {}, ['https://user:tok@x.example.com/a.repo'],
                     ['https://tok@x.example.com/a.repo'], ['ftp://@x.example.com/a.repo']],
    'compose_ids': [1, [0], [-1], ['1'], [True], [1.5], 'all', {}],
    'signing_intent': ['', ' release', 'release ', 'release\n', 7, ['release']],
    'dependency_replacements': ['gomod:a:b', ['gomod:a'], ['gomod:a:b:c:d'], ['go mod:a:b'],
                                [3], ['gomod:a:b\n']],
    'userdata': ['{"a": 1}', [1], 1, True, {1: 'x'}, {'a': object()}, {'s': {1, 2}},
                 {'a': float('nan')}, {'a': [1, {'b': float('inf')}]}, {'a': -float('inf')}],
    'operator_csv_modifications_url': ['not a url', 'file:///x.json', 'https://', 5,
                                       'https://example.com/x\n',
                                       'https://bot:s3cr3t@example.com/csv.json',
                                       'https://s3cr3t@example.com/csv.json'],
    'flatpak': ['yes', 1],
    'skip_build': ['no', 0],
    'koji_build_id': [0, -1, '1', True, 1.5, [1]],
    'koji_build_nvr': ['widget', 'widget-1', 'a b-1-2', 'widget-1-2\n', 5],
}


def opts_with(kind, name, value):
    opts = dict(BASE[kind])
    opts.update(PARTNERS.get(name, {}))
    opts[name] = value
    return opts


def kinds_of(opt):
    return [k for k in options.KINDS if k in opt.kinds]


def test_every_option_has_good_and_bad_samples():
    names = set(o.name for o in options.OPTIONS)
    assert set(GOOD) == names
    assert set(BAD) == names


@pytest.mark.parametrize('name', sorted(GOOD))
def test_good_values_accepted(name):
    opt = options.BY_NAME[name]
    for kind in kinds_of(opt):
        for value in GOOD[name]:
            if name == 'flatpak' and kind == 'flatpak' and value is False:
                value = True
            clean, warnings = options.validate(kind, opts_with(kind, name, value))
            if opt.deprecated:
                assert name not in clean
                assert warnings == ["Option %r is deprecated and ignored" % name]
            elif options.is_set(value):
                assert clean[name] == value
                assert warnings == []
            else:
                assert name not in clean or (name, kind) == ('flatpak', 'flatpak')


@pytest.mark.parametrize('name', sorted(BAD))
def test_bad_values_rejected_with_the_option_named(name):
    opt = options.BY_NAME[name]
    for kind in kinds_of(opt):
        for value in BAD[name]:
            with pytest.raises(OptionError) as err:
                options.validate(kind, opts_with(kind, name, value))
            assert repr(name) in str(err.value), (kind, value, str(err.value))


def test_fault_is_a_koji_parameter_error():
    with pytest.raises(koji.ParameterError) as err:
        options.validate('binary', {'git_branch': 'f40', 'scratch': 'yes'})
    assert err.value.faultCode == 1019
    assert isinstance(err.value, koji.GenericError)


def test_long_value_message_is_short():
    with pytest.raises(OptionError) as err:
        options.validate('binary', {'git_branch': 'f40', 'release': 'z' * 5000})
    assert len(str(err.value)) < 300


@pytest.mark.parametrize('value', [1.0, 12.0])
def test_integral_floats_are_integers(value):
    # JSON (and JSON schema) cannot tell 12.0 from 12; builds get a real int.
    clean, _ = options.validate('source', {'koji_build_id': value})
    assert clean['koji_build_id'] == int(value) and type(clean['koji_build_id']) is int
    clean, _ = options.validate('binary', {'git_branch': 'f40', 'compose_ids': [value, 3]})
    assert clean['compose_ids'] == [int(value), 3]
    assert [type(i) for i in clean['compose_ids']] == [int, int]


# ------------------------------------------------------------------ rules

RULE_CASES = [
    ('binary', {'scratch': True, 'isolated': True}, "'scratch' and 'isolated' cannot"),
    ('flatpak', {'scratch': True, 'isolated': True}, "'scratch' and 'isolated' cannot"),
    ('binary', {'arch_override': 'x86_64'}, "'arch_override' is only allowed"),
    ('binary', {'arch_override': 'x86_64', 'scratch': False, 'isolated': False},
     "'arch_override' is only allowed"),
    ('binary', {'signing_intent': 'release', 'compose_ids': [1]},
     "'signing_intent' and 'compose_ids' cannot"),
    ('binary', {'operator_csv_modifications_url': 'https://e.com/x'},
     "'operator_csv_modifications_url' is only allowed for isolated"),
    ('binary', {'operator_csv_modifications_url': 'https://e.com/x', 'scratch': True},
     "'operator_csv_modifications_url' is only allowed for isolated"),
]


@pytest.mark.parametrize('kind,extra,message', RULE_CASES)
def test_rules_reject(kind, extra, message):
    opts = dict(BASE[kind])
    opts.update(extra)
    with pytest.raises(OptionError, match=message):
        options.validate(kind, opts)


@pytest.mark.parametrize('kind,extra', [
    ('binary', {'scratch': True, 'isolated': False}),
    ('binary', {'scratch': None, 'isolated': True, 'release': '2.1'}),
    ('binary', {'arch_override': 'x86_64', 'scratch': True}),
    ('flatpak', {'arch_override': 'aarch64', 'isolated': True, 'release': '3'}),
    ('binary', {'arch_override': '', 'scratch': False}),
    ('binary', {'arch_override': None}),
    ('binary', {'signing_intent': 'release', 'compose_ids': []}),
    ('binary', {'signing_intent': None, 'compose_ids': [4]}),
    ('binary', {'operator_csv_modifications_url': 'https://e.com/x', 'isolated': True,
                'release': '1.2'}),
    ('source', {'koji_build_id': None, 'koji_build_nvr': 'w-1-2'}),
    ('source', {'koji_build_id': 3, 'koji_build_nvr': 'w-1-2'}),
    ('source', {'scratch': True, 'signing_intent': 'release', 'userdata': {'a': 1}}),
])
def test_rules_accept(kind, extra):
    opts = dict(BASE[kind])
    opts.update(extra)
    expected = dict((k, v) for k, v in opts.items() if options.is_set(v))
    assert options.validate(kind, opts) == (expected, [])


@pytest.mark.parametrize('kind', ['binary', 'flatpak'])
@pytest.mark.parametrize('branch', [None, ''])
def test_git_branch_required(kind, branch):
    opts = dict(BASE[kind], git_branch=branch)
    with pytest.raises(OptionError, match="'git_branch'"):
        options.validate(kind, opts)
    without = dict(BASE[kind])
    del without['git_branch']
    with pytest.raises(OptionError, match="Missing option 'git_branch'"):
        options.validate(kind, without)


@pytest.mark.parametrize('opts', [{}, None, {'koji_build_id': None, 'koji_build_nvr': None},
                                  {'scratch': True}])
def test_source_needs_a_build(opts):
    with pytest.raises(OptionError, match="'koji_build_id' or 'koji_build_nvr'"):
        options.validate('source', opts)


# ------------------------------------------------------------------ keys, null, rpkg

@pytest.mark.parametrize('kind', options.KINDS)
@pytest.mark.parametrize('key', ['bogus', 'Scratch', 'git-branch', '', 7, None])
def test_unknown_keys_rejected(kind, key):
    opts = dict(BASE[kind])
    opts[key] = True
    with pytest.raises(OptionError, match='Unknown option for a %s build: %r'
                       % (kind, str(key))):
        options.validate(kind, opts)


def test_unknown_keys_all_named():
    with pytest.raises(OptionError, match="Unknown options for a binary build: 'a', 'b'"):
        options.validate('binary', {'git_branch': 'f40', 'b': 1, 'a': None})


@pytest.mark.parametrize('kind,foreign', [
    ('binary', 'koji_build_id'), ('binary', 'koji_build_nvr'),
    ('flatpak', 'koji_build_id'), ('source', 'git_branch'), ('source', 'isolated'),
    ('source', 'flatpak'), ('source', 'skip_build'), ('source', 'compose_ids'),
])
def test_options_of_another_kind_rejected(kind, foreign):
    opts = dict(BASE[kind])
    opts[foreign] = None  # even unset: the key itself is wrong for this call
    with pytest.raises(OptionError, match='Unknown option.*%r' % foreign):
        options.validate(kind, opts)


@pytest.mark.parametrize('opts', ['scratch', ['scratch'], 1, True, ('git_branch', 'f40')])
def test_opts_must_be_a_dict(opts):
    with pytest.raises(OptionError, match='Invalid opts: must be a dict'):
        options.validate('binary', opts)


@pytest.mark.parametrize('kind', options.KINDS)
def test_none_means_unset(kind):
    opts = dict((o.name, None) for o in options.options_for(kind))
    opts.update(BASE[kind])
    clean, warnings = options.validate(kind, opts)
    assert clean == BASE[kind]
    assert warnings == []


def test_unset_values_dropped_from_clean_opts():
    clean, _ = options.validate('binary', {
        'git_branch': 'f40', 'scratch': False, 'yum_repourls': [], 'userdata': {},
        'arch_override': '', 'release': None})
    assert clean == {'git_branch': 'f40'}


def test_flatpak_kind_always_says_flatpak():
    clean, _ = options.validate('flatpak', {'git_branch': 'f40'})
    assert clean == {'git_branch': 'f40', 'flatpak': True}


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError):
        options.validate('rpm', {})


RPKG_OPTS = {'scratch': False, 'release': None, 'isolated': False, 'koji_parent_build': None,
             'yum_repourls': None, 'git_branch': 'f40', 'signing_intent': None,
             'compose_ids': None, 'skip_build': False, 'dependency_replacements': None,
             'arch_override': None, 'flatpak': True}


def test_rpkg_opts_accepted():
    kind = options.kind_of(RPKG_OPTS)
    assert kind == 'flatpak'
    clean, warnings = options.validate(kind, dict(RPKG_OPTS))
    assert clean == {'git_branch': 'f40', 'flatpak': True}
    assert warnings == ["Option 'skip_build' is deprecated and ignored"]
    binary = dict(RPKG_OPTS, flatpak=False)
    assert options.kind_of(binary) == 'binary'
    assert options.validate('binary', binary)[0] == {'git_branch': 'f40'}


def test_rpkg_scratch_arch_override_accepted():
    opts = dict(RPKG_OPTS, scratch=True, arch_override='x86_64 aarch64')
    clean, _ = options.validate(options.kind_of(opts), opts)
    assert clean['arch_override'] == 'x86_64 aarch64' and clean['scratch'] is True


def test_skip_build_true_rejected_clearly():
    with pytest.raises(OptionError) as err:
        options.validate('binary', dict(RPKG_OPTS, flatpak=False, skip_build=True))
    assert str(err.value).startswith("Option 'skip_build' is no longer supported")


def test_skip_build_false_warns_and_is_dropped():
    clean, warnings = options.validate('binary', {'git_branch': 'f40', 'skip_build': False})
    assert clean == {'git_branch': 'f40'}
    assert warnings == ["Option 'skip_build' is deprecated and ignored"]


def test_validate_does_not_change_its_input():
    opts = dict(RPKG_OPTS)
    options.validate('flatpak', opts)
    assert opts == RPKG_OPTS


@pytest.mark.parametrize('opts,kind', [
    ({'flatpak': True}, 'flatpak'), ({'flatpak': False}, 'binary'), ({}, 'binary'),
    ({'flatpak': 'yes'}, 'binary'), (None, 'binary'), ('x', 'binary'),
])
def test_kind_of(opts, kind):
    assert options.kind_of(opts) == kind


@pytest.mark.parametrize('text,arches', [
    ('x86_64 aarch64', ['x86_64', 'aarch64']), ('x86_64,aarch64', ['x86_64', 'aarch64']),
    (' x86_64 ,, ppc64le ', ['x86_64', 'ppc64le']), ('', []), (None, []),
])
def test_arch_list(text, arches):
    assert options.arch_list(text) == arches


@pytest.mark.parametrize('kind,name,url', [
    ('binary', 'yum_repourls', 'https://builder:s3cr3t-T0ken@repos.example.com/x.repo'),
    ('binary', 'yum_repourls', 'https://s3cr3t-T0ken@repos.example.com/x.repo'),
    ('binary', 'yum_repourls', 'ftp://a@s3cr3t-T0ken@repos.example.com/x.repo'),
    ('binary', 'yum_repourls', 'https://s3cr3t-T0ken:@repos.example.com/x.repo'),
    ('flatpak', 'yum_repourls', 'http://u:s3cr3t-T0ken@[::1]:8080/x.repo'),
    ('binary', 'operator_csv_modifications_url',
     'https://bot:s3cr3t-T0ken@example.com/csv.json'),
    ('binary', 'operator_csv_modifications_url', 'https://s3cr3t-T0ken@example.com/csv'),
])
def test_credentials_in_urls_refused_without_echoing_them(kind, name, url):
    value = [url] if name == 'yum_repourls' else url
    opts = opts_with(kind, name, value)
    with pytest.raises(OptionError) as err:
        options.validate(kind, opts)
    message = str(err.value)
    assert repr(name) in message and 'credentials' in message
    assert 's3cr3t' not in message and 'T0ken' not in message


def test_at_sign_after_the_host_is_not_userinfo():
    for url in ('https://e.example.com/~u/a@b.repo', 'https://e.example.com/x?user=a@b',
                'https://e.example.com#a@b'):
        opts = opts_with('binary', 'yum_repourls', [url])
        assert options.validate('binary', opts)[0]['yum_repourls'] == [url]


def test_a_malformed_url_message_masks_userinfo_too():
    opts = opts_with('binary', 'yum_repourls', ['repos s3cr3t@example.com'])
    with pytest.raises(OptionError) as err:
        options.validate('binary', opts)
    assert 's3cr3t' not in str(err.value)


@pytest.mark.parametrize('value', [float('nan'), float('inf'), -float('inf'),
                                   [1.0, {'x': float('nan')}]])
def test_userdata_nan_and_infinity_refused(value):
    with pytest.raises(OptionError, match="'userdata': NaN and Infinity"):
        options.validate('binary', opts_with('binary', 'userdata', {'v': value}))


def test_userdata_largest_numbers_accepted():
    userdata = {'i': 2 ** 63 - 1, 'j': -2 ** 63, 'f': 1.5e-300, 'g': -0.5, 'z': 0.0}
    assert options.validate('source', opts_with('source', 'userdata', userdata))[0][
        'userdata'] == userdata
