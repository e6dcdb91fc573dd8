"""The three doors agree: hub validation, the builder's JSON schema and the CLI parser,
all derived from the one options table."""

import functools
import json
import optparse
import re
import shlex

import jsonschema

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from koji_containerbuild import options
from koji_containerbuild.errors import OptionError

EXAMPLES_PER_KIND = 2000
SETTINGS = settings(max_examples=EXAMPLES_PER_KIND, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])



def json_like(allow_nan=True):
    # NaN and +-Infinity (refused by both doors) unless allow_nan=False.
    scalars = (st.none() | st.booleans() | st.integers(-3, 2 ** 40)
               | st.floats(allow_nan=allow_nan, allow_infinity=allow_nan)
               | st.sampled_from([0.0, 1.0, 7.0, 2.5, options.MAX_FLOAT, 10 ** 400])
               | st.text(max_size=8))
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                     max_size=3),
        max_leaves=6)


json_values = json_like()
# Texts near each option's edges: empty, whitespace, separators, the length limit.
edge_texts = st.sampled_from([
    '', ' ', '\n', 'x', 'f40', 'f40\n', ' f40', '1', '1.2', '1-2', 'a-1-2', 'a-1-2\n',
    'x86_64 aarch64', 'x86_64,aarch64', 'gomod:a:b', 'gomod:a:b:c', 'a:b:c:d:e',
    'https://e.com/x', 'https://e.com/x\n', 'file:///x', 'https://u:t@e.com/x',
    'https://t@e.com/x', 'https://e.com/a@b', 'ftp://e.com?a@b', 'https://@e.com/x', 'x' * options.MAX_TEXT,
    'x' * (options.MAX_TEXT + 1), '1' * (options.MAX_TEXT + 1)])


@functools.lru_cache(maxsize=None)   # building a regex strategy is costly
def valid_text(opt):
    if opt.pattern:
        # control characters are refused whatever the pattern says
        return st.from_regex(opt.pattern, fullmatch=True).filter(
            lambda t: not re.search(options.BAD_CHARS_PATTERN, t))
    return st.text(min_size=1, max_size=12)


def typed(opt):
    """Values of the option's own type: mostly valid, often just off."""
    if opt.vtype == 'bool':
        return st.booleans()
    if opt.vtype == 'int':
        return st.integers(-2, 10 ** 12) | st.sampled_from([1.0, 0.0, 3.5])
    if opt.vtype == 'list_int':
        return st.lists(st.integers(-1, 10 ** 6) | st.sampled_from([2.0, 1.5, True]),
                        max_size=3)
    if opt.vtype == 'object':
        return st.dictionaries(st.text(max_size=5), json_values, max_size=3)
    text = valid_text(opt) | valid_text(opt).map(lambda t: t + '\n') | edge_texts
    if opt.vtype == 'list_text':
        return st.lists(text, max_size=3)
    return text


def valid(opt):
    """Values of the option's type that pass its own checks (rules aside)."""
    if opt.vtype == 'bool':
        return st.just(False) if opt.deprecated else st.booleans()
    if opt.vtype == 'int':
        return st.integers(1, 10 ** 9)
    if opt.vtype == 'list_int':
        return st.lists(st.integers(1, 10 ** 9), max_size=3)
    if opt.vtype == 'object':
        return st.dictionaries(st.text(max_size=5), json_values, max_size=3)
    if opt.vtype == 'list_text':
        return st.lists(valid_text(opt), max_size=3)
    return valid_text(opt)


VALUES = dict((o.name, st.one_of(st.none(), valid(o), valid(o), valid(o), typed(o),
                                  json_values))
              for o in options.OPTIONS)


@st.composite
def opts_dicts(draw, kind):
    names = [o.name for o in options.options_for(kind)]
    opts = {}
    for name in draw(st.lists(st.sampled_from(names), unique=True)):
        opts[name] = draw(VALUES[name])
    # Mostly give what the kind needs, so the rules and types decide, not a missing key.
    if draw(st.integers(0, 9)) < 8:
        for name in ('git_branch',) if kind != 'source' else ('koji_build_id',):
            if not options.is_set(opts.get(name)):
                opts[name] = draw(valid(options.BY_NAME[name]))
    # ~5%: hypothesis favours small integers, so test a band in the middle.
    if draw(st.integers(0, 99)) in range(40, 45):
        foreign = [o.name for o in options.OPTIONS if o.name not in names]
        opts[draw(st.sampled_from(foreign + ['bogus', 'Scratch']))] = draw(json_values)
    return opts


def hub_accepts(kind, opts):
    try:
        options.validate(kind, opts)
    except OptionError as exc:
        assert str(exc), 'a fault without a message'
        return False
    return True


@pytest.mark.parametrize('kind', options.KINDS)
def test_schema_is_valid_draft7(kind):
    jsonschema.Draft7Validator.check_schema(options.json_schema(kind))


@pytest.mark.parametrize('kind', options.KINDS)
def test_hub_validation_and_builder_schema_agree(kind):
    schema = jsonschema.Draft7Validator(options.json_schema(kind))
    outcomes = []

    @SETTINGS
    @given(opts=opts_dicts(kind) | json_values)
    def agree(opts):
        hub = hub_accepts(kind, opts)
        builder = schema.is_valid(opts)
        assert hub == builder, 'hub %s, builder schema %s: %r' % (
            'accepts' if hub else 'rejects', 'accepts' if builder else 'rejects', opts)
        outcomes.append(hub)

    agree()
    # Both outcomes must be common, or the agreement says little.
    assert len(outcomes) >= EXAMPLES_PER_KIND
    accepted = sum(outcomes)
    assert accepted > len(outcomes) * 0.1 and len(outcomes) - accepted > len(outcomes) * 0.1, \
        (accepted, len(outcomes))


@pytest.mark.parametrize('kind,opts', [
    ('binary', {'git_branch': 'f40', 'scratch': True, 'isolated': True}),
    ('binary', {'git_branch': 'f40', 'arch_override': 'x86_64'}),
    ('binary', {'git_branch': 'f40', 'signing_intent': 'r', 'compose_ids': [1]}),
    ('binary', {'git_branch': 'f40', 'operator_csv_modifications_url': 'https://e.com/x'}),
    ('binary', {'git_branch': 'f40', 'skip_build': True}),
    ('binary', {'git_branch': 'f40', 'koji_build_id': 1}),
    ('binary', {'git_branch': ''}),
    ('binary', {}),
    ('source', {}),
    ('source', {'koji_build_id': 0}),
    ('source', {'koji_build_nvr': 'a-1-2', 'git_branch': 'f40'}),
    ('binary', {'git_branch': 'f40', 'yum_repourls': ['https://u:t@e.com/x.repo']}),
    ('binary', {'git_branch': 'f40', 'yum_repourls': ['https://t@e.com/x.repo']}),
    ('binary', {'git_branch': 'f40', 'isolated': True, 'release': '1',
                'operator_csv_modifications_url': 'https://u:t@e.com/x'}),
    ('binary', {'git_branch': 'f40', 'userdata': {'a': float('nan')}}),
    ('binary', {'git_branch': 'f40', 'userdata': {'a': [{'b': float('inf')}]}}),
    ('source', {'koji_build_id': 1, 'userdata': {'a': -float('inf')}}),
    ('source', {'koji_build_id': 1, 'userdata': {'a': 2 ** 63}}),
    ('source', {'koji_build_id': 1, 'userdata': {'a': options.MAX_FLOAT}}),
    ('source', {'koji_build_id': 1, 'userdata': {'a': 'nul\x00'}}),
    ('source', {'koji_build_id': 1, 'userdata': {'a\ud800': 1}}),
    ('source', {'koji_build_id': 2 ** 31}),
    ('binary', {'git_branch': 'f40', 'compose_ids': list(range(1, options.MAX_ITEMS + 2))}),
    ('binary', {'git_branch': 'f40', 'userdata': {'a': json.loads('[' * options.MAX_DEPTH + ']' * options.MAX_DEPTH)}}),
    ('binary', {'git_branch': '-x'}),
    ('binary', {'git_branch': 'a.lock'}),
    ('binary', {'git_branch': 'refs/heads/a'}),
    ('binary', {'git_branch': 'a' * 40}),
    ('binary', {'git_branch': 'f40', 'yum_repourls': ['ftp://e.com/x.repo']}),
    ('binary', {'git_branch': 'f40', 'yum_repourls': ['https://[::1/x.repo']}),
    ('binary', {'git_branch': 'f40', 'yum_repourls': ['https://e.com:99999/x.repo']}),
])
def test_schema_rejects_what_the_rules_reject(kind, opts):
    assert not hub_accepts(kind, opts)
    assert not jsonschema.Draft7Validator(options.json_schema(kind)).is_valid(opts)


@pytest.mark.parametrize('userdata', [
    {'i': 2 ** 63 - 1, 'j': -2 ** 63, 'f': 1.5e-300, 'n': -0.5, 'z': 0.0, 'm': -0.0},
    {'deep': [[{'a': [1.5, None, True, 'x']}]]},
])
def test_schema_accepts_finite_numbers_anywhere(userdata):
    opts = {'koji_build_id': 1, 'userdata': userdata}
    assert hub_accepts('source', opts)
    assert jsonschema.Draft7Validator(options.json_schema('source')).is_valid(opts)


# ------------------------------------------------------------------ CLI

IMAGE_FLAGS = {'--scratch', '--isolated', '--arch-override', '--replace-dependency',
               '--repo-url', '--git-branch', '--signing-intent', '--compose-id', '--userdata',
               '--operator-csv-modifications-url', '--release', '--koji-parent-build'}
SOURCE_FLAGS = {'--scratch', '--signing-intent', '--koji-build-id', '--koji-build-nvr',
                '--userdata'}


def parser_for(kind):
    parser = optparse.OptionParser(prog='koji %s-build' % kind)
    for flag, kwargs in options.cli_options(kind):
        parser.add_option(flag, **kwargs)
    return parser


@pytest.mark.parametrize('kind,flags', [('binary', IMAGE_FLAGS), ('flatpak', IMAGE_FLAGS),
                                        ('source', SOURCE_FLAGS)])
def test_cli_flags_map_one_to_one_to_options(kind, flags):
    cli = options.cli_options(kind)
    with_flag = [o for o in options.options_for(kind) if o.cli]
    assert [flag for flag, _ in cli] == [o.cli for o in with_flag]
    assert [kw['dest'] for _, kw in cli] == [o.name for o in with_flag]
    assert [kw['help'] for _, kw in cli] == [o.help for o in with_flag]
    assert set(flag for flag, _ in cli) == flags
    # Only what the CLI sets itself has no flag.
    assert set(o.name for o in options.options_for(kind) if not o.cli) == \
        ({'flatpak', 'skip_build'} if kind != 'source' else set())
    parser_for(kind)  # optparse accepts every definition


def to_argv(kind, opts):
    argv = []
    for opt in options.options_for(kind):
        value = opts.get(opt.name)
        if not opt.cli or not options.is_set(value):
            continue
        if opt.vtype == 'bool':
            argv.append(opt.cli)
        elif opt.vtype in ('list_text', 'list_int'):
            for item in value:
                argv += [opt.cli, str(item)]
        elif opt.vtype == 'object':
            argv += [opt.cli, json.dumps(value)]
        else:
            argv += [opt.cli, str(value)]
    return argv


@st.composite
def valid_cli_opts(draw, kind):
    opts = {}
    for opt in options.options_for(kind):
        if opt.cli and (kind in opt.required or opt.name == 'koji_build_id'
                        or draw(st.booleans())):
            if opt.vtype == 'bool':
                opts[opt.name] = draw(st.booleans())
            elif opt.vtype == 'int':
                opts[opt.name] = draw(st.integers(1, 10 ** 9))
            elif opt.vtype == 'list_int':
                opts[opt.name] = draw(st.lists(st.integers(1, 10 ** 9), max_size=3))
            elif opt.vtype == 'object':
                # NaN would not compare equal after the trip.
                opts[opt.name] = draw(st.dictionaries(st.text(max_size=5),
                                                      json_like(allow_nan=False), max_size=3))
            elif opt.vtype == 'list_text':
                opts[opt.name] = draw(st.lists(valid_text(opt), max_size=3))
            else:
                opts[opt.name] = draw(valid_text(opt))
    return opts


@pytest.mark.parametrize('kind', options.KINDS)
def test_cli_round_trip(kind):
    parser = parser_for(kind)
    seen = []

    @settings(max_examples=500, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(opts=valid_cli_opts(kind))
    def round_trip(opts):
        if opts.get('isolated') and not opts.get('release'):
            opts = dict(opts, release='1')      # isolated builds need a release
        if not hub_accepts(kind, opts):
            return
        values, args = parser.parse_args(to_argv(kind, opts))
        assert args == []
        back = options.opts_from_cli(kind, values)
        expected = dict((k, v) for k, v in opts.items() if options.is_set(v))
        if 'arch_override' in expected:
            expected['arch_override'] = ' '.join(options.arch_list(expected['arch_override']))
        if kind == options.FLATPAK:
            expected['flatpak'] = True
        assert back == expected
        # A whitespace-only arch list comes back as '', which is unset.
        assert options.validate(kind, back)[0] == dict(
            (k, v) for k, v in expected.items() if options.is_set(v))
        seen.append(opts)

    round_trip()
    assert len(seen) > 100, 'too few valid examples reached the CLI: %d' % len(seen)


@pytest.mark.parametrize('kind,argv,message', [
    ('source', '--koji-build-id abc', "--koji-build-id: 'abc' is not an integer"),
    ('binary', '--compose-id 1 --compose-id x', "--compose-id: 'x' is not an integer"),
    ('binary', '--userdata {bad', '--userdata: not valid JSON'),
    ('binary', '--userdata [1]', '--userdata: must be a JSON object'),
])
def test_cli_text_that_does_not_convert(kind, argv, message):
    values, _ = parser_for(kind).parse_args(shlex.split(argv))
    with pytest.raises(OptionError, match='Invalid value for ' + message):
        options.opts_from_cli(kind, values)


def test_cli_arch_override_commas_and_spaces():
    values, _ = parser_for('binary').parse_args(
        ['--scratch', '--arch-override', 'x86_64, aarch64  ppc64le', '--git-branch', 'f40'])
    opts = options.opts_from_cli('binary', values)
    assert opts == {'scratch': True, 'arch_override': 'x86_64 aarch64 ppc64le',
                    'git_branch': 'f40'}
    assert options.validate('binary', opts)[0] == opts


def test_cli_values_may_be_a_dict():
    assert options.opts_from_cli('source', {'koji_build_id': '7', 'scratch': False}) == \
        {'koji_build_id': 7}
