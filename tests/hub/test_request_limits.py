"""Hub requests are bounded: sizes and list lengths refused before any task, with fault
messages of bounded length (timings: benchmarks/hostile_inputs/cases_parsing.py)."""

import pytest

from koji_containerbuild import options
from koji_containerbuild.errors import OptionError
from tests.hub.conftest import base_opts, submit


def refused(hub, plugin, kind, opts, match, **kwargs):
    with pytest.raises(OptionError, match=match) as info:
        submit(hub, plugin, kind, opts, **kwargs)
    assert hub.tasks == {}
    assert len(str(info.value)) < 600, 'fault message not bounded'
    return info.value


@pytest.mark.parametrize('name, item', [
    ('compose_ids', 1), ('yum_repourls', 'https://repos.example.com/x.repo'),
    ('dependency_replacements', 'gomod:a:b')])
def test_list_options_bounded(hub, plugin, name, item):
    items = [item] * options.MAX_ITEMS
    submit(hub, plugin, 'binary', dict(base_opts('binary'), **{name: items}))
    hub.tasks.clear()
    for count in (options.MAX_ITEMS + 1, 200000):
        refused(hub, plugin, 'binary', dict(base_opts('binary'), **{name: [item] * count}),
                'at most %d items' % options.MAX_ITEMS)


@pytest.mark.parametrize('userdata, match', [
    ({'a': 'x' * (50 * 1024 * 1024)}, 'larger than %d characters' % options.MAX_USERDATA),
    ({'k%d' % i: i for i in range(200000)}, 'larger than'),
    ({'a': [[]] * 100000}, 'larger than'),
    ({'a': 2 ** 64}, 'does not fit in 64 bits'),
    ({'a': 'nul\x00'}, 'control characters'),
])
def test_userdata_bounded(hub, plugin, userdata, match):
    refused(hub, plugin, 'binary', dict(base_opts('binary'), userdata=userdata), match)


def test_unknown_keys_fault_is_bounded(hub, plugin):
    opts = dict(base_opts('binary'))
    opts.update(('bogus%d' % i + 'x' * 1000, 1) for i in range(options.MAX_OPTS_KEYS - 5))
    error = refused(hub, plugin, 'binary', opts, 'Unknown options')
    assert '(and %d more)' % (options.MAX_OPTS_KEYS - 5 - options.MAX_UNKNOWN_SHOWN) \
        in str(error)
    many = dict(('k%d' % i, 1) for i in range(100000))
    refused(hub, plugin, 'binary', many, 'Invalid opts: 100000 keys')


def test_ids_are_32_bit(hub, plugin):
    refused(hub, plugin, 'source', {'koji_build_id': 2 ** 31}, 'koji_build_id')
    refused(hub, plugin, 'binary', dict(base_opts('binary'), compose_ids=[2 ** 40]),
            'compose_ids')


@pytest.mark.parametrize('src', [
    'git+https://TOKEN@scm.example.com/r.git#main',
    'git+ssh://-oProxyCommand=id/r.git#main',
    'git://scm.example.com/r.git#-oProxyCommand=id',
    'git://scm.example.com/r.git#a..b',
    'git://scm.example.com/r.git#@{-1}',
    'git://scm.example.com/r.git#main\n',
    'git://scm.example.com/r.git?../../..#main',
    'git://[::1/r.git#main',
    'git://scm.example.com:99999/r.git#main',
])
def test_hub_refuses_what_builders_refuse(hub, plugin, src):
    error = refused(hub, plugin, 'binary', base_opts('binary'), 'Invalid', src=src)
    assert 'TOKEN' not in str(error)


@pytest.mark.parametrize('branch', ['-x', '../../etc', 'a@{1}', 'a.lock', 'main\n'])
def test_hub_refuses_bad_git_branch(hub, plugin, branch):
    refused(hub, plugin, 'binary', dict(base_opts('binary'), git_branch=branch), 'git_branch')
