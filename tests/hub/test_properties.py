"""Property-based: generated opts, sources, targets, priorities, channels and callers.

The only outcomes allowed: a created task holding exactly the validated request, or
a koji.GenericError subclass and no task. Never another exception.
Example counts are checked (not just requested): EXAMPLES sums to >= 10,000 and
is recorded in docs/hub.md.
"""

import functools
import koji
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from koji_containerbuild import hub_policy, options
from tests.hub.conftest import LOCKED_TARGET, SRC, TARGET
from tests.hub.test_options import TEXT_SAMPLES

EXAMPLES = {
    'hostile_container': 3000,
    'hostile_source': 2500,
    'valid_container': 3000,
    'valid_source': 2000,
}

CONFIGS = [hub_policy.HubConfig(),
           hub_policy.HubConfig(build_permission='container'),
           hub_policy.HubConfig(channel_override_permission='container-channel')]
PERMS = [[], ['admin'], ['container'], ['container-channel'], ['container', 'build']]

# ------------------------------------------------------------------ strategies

huge_int = st.integers(min_value=-2 ** 70, max_value=2 ** 70)
scalars = (st.none() | st.booleans() | st.integers(-3, 3) | huge_int | st.floats()
           | st.text(max_size=20)
           # huge strings, built cheaply (drawing thousands of characters is slow)
           | st.builds(lambda c, n: c * n, st.characters(), st.integers(1000, 5000))
           | st.sampled_from(['', ' ', '\x00', '\ud800', 'zoë 🐳', 'a\nb', '#', 'x' * 1025]))
hostile = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8) | st.integers() | st.booleans() | st.none(),
                      inner, max_size=4),
    max_leaves=12)

# XML 1.0 cannot carry U+FFFE/U+FFFF: the hub refuses them (covered by the hostile tests)
clean_chars = st.characters(codec='utf-8', exclude_categories=('Cc', 'Cs'),
                            exclude_characters='\ufffe\uffff')


@functools.lru_cache(maxsize=None)   # building a regex strategy is costly
def valid_text(opt):
    if not opt.pattern:
        return st.text(clean_chars, min_size=1, max_size=30)
    return st.sampled_from([TEXT_SAMPLES[opt.pattern]]) | st.from_regex(
        opt.pattern, fullmatch=True, alphabet=clean_chars).filter(
            lambda t: len(t) <= options.MAX_TEXT)


def valid_value(opt):
    """Values the table accepts for `opt` (None means unset)."""
    if opt.vtype == 'bool':
        value = st.just(False) if opt.deprecated else st.booleans()
    elif opt.vtype == 'int':
        value = st.integers(min_value=opt.minimum or 0, max_value=opt.maximum or 2 ** 63 - 1)
    elif opt.vtype == 'list_int':
        value = st.lists(st.integers(min_value=opt.minimum or 0,
                                     max_value=opt.maximum or 2 ** 63 - 1),
                         max_size=3)
    elif opt.vtype == 'text':
        value = valid_text(opt)
    elif opt.vtype == 'list_text':
        value = st.lists(valid_text(opt), max_size=3)
    else:
        json_leaf = (st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 63 - 1)
                     | st.floats(allow_nan=False, allow_infinity=False).filter(
                         # JSON numbers; whole ones within 64 bits
                         lambda f: not f.is_integer() or -2 ** 63 <= f <= 2 ** 63 - 1)
                     | st.text(clean_chars, max_size=10))
        value = st.dictionaries(st.text(clean_chars, max_size=8), st.recursive(
            json_leaf, lambda inner: st.lists(inner, max_size=3)
            | st.dictionaries(st.text(clean_chars, max_size=5), inner, max_size=3),
            max_leaves=6), max_size=3)
    return st.none() | value


def any_value(opt):
    return valid_value(opt) | hostile


def opts_dicts(kinds, value_of):
    names = sorted(set(o.name for k in kinds for o in options.options_for(k)))
    optional = dict((n, value_of(options.BY_NAME[n])) for n in names)
    return st.fixed_dictionaries({}, optional=optional)


def hostile_opts(kinds):
    other = st.dictionaries(st.text(max_size=10) | st.integers(), hostile, max_size=2)
    mixed = st.tuples(opts_dicts(options.KINDS, any_value), other).map(
        lambda pair: dict(pair[1], **pair[0]))
    return st.none() | hostile | opts_dicts(kinds, any_value) | mixed


def satisfy_rules(kind, opts):
    """Make `opts` meet the table's rules by dropping or adding options."""
    for _ in range(len(options.RULES) + 1):
        broken = [r for r in options.rules_for(kind) if r.violated(opts)]
        if not broken:
            return opts
        rule = broken[0]
        if rule.kind == 'exclusive':
            opts.pop(rule.names[-1])
        elif rule.kind == 'requires':
            opts.pop(rule.names[0])
        else:
            opts[rule.names[0]] = 1 if rule.names[0] == 'koji_build_id' else 'n-1-1'
    raise AssertionError('rules not satisfiable: %r' % opts)


sources = (st.sampled_from([SRC, 'git://h.example.com/r#main', 'git+ssh://u@h/p?mod#1',
                            'https://h/p#r', 'git://h/p', 'git://h/p#', 'git://h/p#a b'])
           | st.builds(lambda scheme, host, path, ref: '%s%s/%s#%s' % (scheme, host, path, ref),
                       st.sampled_from(['git://', 'git+https://', 'http://', 'svn://', '']),
                       st.text(max_size=15), st.text(max_size=15), st.text(max_size=15))
           | hostile)
targets = st.sampled_from([TARGET, LOCKED_TARGET, 'no-such-target', 1, 2, 999]) | hostile
priorities = st.none() | st.integers(-1500, 1500) | hostile
channels = (st.none() | st.sampled_from(['container-binary', 'container-source',
                                         'container-fast', 'container-off', 'nope']) | hostile)
callers = st.sampled_from(PERMS)
# built once: constructing strategies per example costs more than running the hub call
VALID_IMAGE_OPTS = st.one_of([
    st.tuples(st.just(kind), opts_dicts((kind,), valid_value),
              valid_text(options.BY_NAME['git_branch']))
    for kind in ('binary', 'flatpak')])
configs = st.sampled_from(CONFIGS)


# ------------------------------------------------------------------ checks

def run(hub, plugin, method, args, perms, config, must_succeed=False):
    plugin.CONFIG = hub_policy.LazyConfig('unused', loader=lambda path: config)
    hub.login('user', perms=perms)
    before = set(hub.tasks)
    try:
        task_id = hub.call(getattr(plugin, method), *args)
    except koji.GenericError as exc:
        assert not must_succeed, 'valid request refused: %s' % exc
        assert set(hub.tasks) == before, 'task left behind after %r' % exc
        fault = hub.fault_of(exc)
        assert fault.faultCode != 1 and fault.faultString
        return None
    assert type(task_id) is int
    assert set(hub.tasks) == before | {task_id}
    task = hub.tasks[task_id]
    opts = args[-3]
    kind = 'source' if method == 'buildSourceContainer' else options.kind_of(opts)
    expected = list(args[:-3]) + [options.validate(kind, opts)[0]]
    assert task['method'] == method
    assert task['arglist'] == expected
    # what kojid will read back is what was validated (repr: nan-safe equality)
    assert repr(hub.decoded_request(task_id)[0]) == repr(tuple(expected))
    assert koji.tasks.parse_task_params(method, list(expected))
    return task


class Counter(object):
    def __init__(self):
        self.n = 0


def prop_settings(name):
    return settings(max_examples=EXAMPLES[name], deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# ------------------------------------------------------------------ properties

def test_hostile_container_requests(hub, plugin):
    count = Counter()

    @prop_settings('hostile_container')
    @given(src=sources, target=targets, opts=hostile_opts(('binary', 'flatpak')),
           priority=priorities, channel=channels, perms=callers, config=configs)
    def prop(src, target, opts, priority, channel, perms, config):
        count.n += 1
        run(hub, plugin, 'buildContainer', [src, target, opts, priority, channel],
            perms, config)

    prop()
    assert count.n >= EXAMPLES['hostile_container']


def test_hostile_source_requests(hub, plugin):
    count = Counter()

    @prop_settings('hostile_source')
    @given(target=targets, opts=hostile_opts(('source',)), priority=priorities,
           channel=channels, perms=callers, config=configs)
    def prop(target, opts, priority, channel, perms, config):
        count.n += 1
        run(hub, plugin, 'buildSourceContainer', [target, opts, priority, channel],
            perms, config)

    prop()
    assert count.n >= EXAMPLES['hostile_source']


def test_valid_container_requests_create_tasks(hub, plugin):
    count = Counter()

    @prop_settings('valid_container')
    @given(request=VALID_IMAGE_OPTS, target=st.sampled_from([TARGET, 1]),
           priority=st.none() | st.integers(0, 1000), perms=callers)
    def prop(request, target, priority, perms):
        count.n += 1
        kind, opts, branch = request
        opts['git_branch'] = branch
        if kind == 'flatpak':
            opts['flatpak'] = True
        else:
            opts.pop('flatpak', None)
        opts = satisfy_rules(kind, opts)
        config = hub_policy.HubConfig(build_permission='container') \
            if 'container' in perms else hub_policy.HubConfig()
        task = run(hub, plugin, 'buildContainer', [SRC, target, opts, priority, None],
                   perms, config, must_succeed=True)
        assert task['channel'] == 'container-binary'

    prop()
    assert count.n >= EXAMPLES['valid_container']


def test_valid_source_requests_create_tasks(hub, plugin):
    count = Counter()

    @prop_settings('valid_source')
    @given(opts=opts_dicts(('source',), valid_value), target=st.sampled_from([TARGET, 1]),
           priority=st.none() | st.integers(0, 1000),
           channel=st.sampled_from([None, 'container-source']))
    def prop(opts, target, priority, channel):
        count.n += 1
        opts = satisfy_rules('source', opts)
        task = run(hub, plugin, 'buildSourceContainer', [target, opts, priority, channel],
                   [], hub_policy.HubConfig(), must_succeed=True)
        assert task['channel'] == 'container-source'

    prop()
    assert count.n >= EXAMPLES['valid_source']


def test_examples_total_recorded_in_docs():
    import os
    from tests.hub.conftest import ROOT
    total = sum(EXAMPLES.values())
    assert total >= 10000
    with open(os.path.join(ROOT, 'docs', 'hub.md')) as f:
        assert '{:,}'.format(total) in f.read()
