"""Hostile request, URL, Dockerfile and tag inputs at the size limits the code enforces.

CASES = [(name, size_text, func)]: benchmarks/hostile_inputs/run.py runs each func() in
a child process and prints its time and peak RSS over idle (goal: <= 1 s, <= 64 MiB).
Inputs are built inside func (their construction counts: it is what the parser is
handed). Run this file directly for a quick in-process timing of each row.
"""

import optparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from koji_containerbuild import dockerfile, options, scmurl, source  # noqa: E402
from koji_containerbuild.errors import OptionError, SourceError  # noqa: E402

LOG_LINE = 1024 * 1024     # a build log line of 1 MiB (the relay bounds lines below this)


def _refused(func, *args, **kwargs):
    try:
        func(*args, **kwargs)
    except (OptionError, SourceError):
        return
    raise AssertionError('accepted: %s' % func.__name__)


# ------------------------------------------------------------------ redaction (item 9)

def redact_colons():
    scmurl.redact('://' + ':' * LOG_LINE)


def redact_many_schemes():
    scmurl.redact('https://a:' * (LOG_LINE // 10))


def redact_many_userinfos():
    scmurl.redact('https://a@' * (LOG_LINE // 10))


def mask_userinfo_run():
    options.mask_userinfo('a' * LOG_LINE)


# ------------------------------------------------------------------ Dockerfile (4, 11)

def _df(body_line, count, head=b'FROM scratch\n', tail=b''):
    room = dockerfile.MAX_DOCKERFILE - len(head) - len(tail)
    return head + body_line * min(count, room // len(body_line)) + tail


def dockerfile_stages_at_limit():
    # MAX_FROM stages, each inheriting the previous one's MAX_KEYS ENV names, then
    # FROM lines until the file limit (refused at the first one over MAX_FROM)
    env = b''.join(b'ENV K%d=v\n' % i for i in range(dockerfile.MAX_KEYS))
    chain = b'FROM scratch AS s0\n' + env + b''.join(
        b'FROM s%d AS s%d\nENV K%d=1\n' % (i, i + 1, i) for i in range(dockerfile.MAX_FROM - 1))
    dockerfile.parse(chain)
    _refused(dockerfile.parse, _df(b'FROM s0 AS s1\n', 10 ** 7, head=chain))


def dockerfile_env_lines_at_limit():
    line = b'ENV V%d=x\n'
    body = b''.join(line % (i % dockerfile.MAX_KEYS) for i in range(
        (dockerfile.MAX_DOCKERFILE - 100) // len(line % 9999)))
    dockerfile.parse(b'FROM scratch\n' + body + b'LABEL a=$V1\n')


def dockerfile_short_lines_at_limit():
    dockerfile.parse(_df(b'#\n', 10 ** 7, tail=b'LABEL a=1\n'))


def dockerfile_expansion_at_limit():
    # one 256 KiB value, referenced until the total expansion budget is spent
    big = b'ENV A=' + b'x' * (dockerfile.MAX_VALUE - 10) + b'\n'
    _refused(dockerfile.parse, _df(b'LABEL b=$A\n', 10 ** 6, head=b'FROM scratch\n' + big))


def dockerfile_formfeed_line():
    dockerfile.parse(_df(b'# n\x0cLABEL release=4 ', 10 ** 6, tail=b'\nLABEL release=3\n'))


# ------------------------------------------------------------------ additional-tags (12)

def _tags_file(srcdir, make_line):
    """A MAX_SMALL_FILE additional-tags file, written in chunks (the input itself must
    not be what fills the memory)."""
    with open(os.path.join(srcdir, 'additional-tags'), 'wb') as handle:
        written = index = 0
        while written < source.MAX_SMALL_FILE:
            chunk = b''.join(make_line(index + i) for i in range(1000))
            chunk = chunk[:source.MAX_SMALL_FILE - written]
            handle.write(chunk)
            written += len(chunk)
            index += 1000


def additional_tags_at_limit():
    with tempfile.TemporaryDirectory() as srcdir:
        _tags_file(srcdir, lambda i: b't%d\n' % (i % source.MAX_ADDITIONAL_TAGS))
        source.read_additional_tags(srcdir, container_yaml={})


def additional_tags_too_many():
    with tempfile.TemporaryDirectory() as srcdir:
        _tags_file(srcdir, lambda i: b't%d\n' % i)
        _refused(source.read_additional_tags, srcdir, container_yaml={})


def _container_yaml(data):
    with tempfile.TemporaryDirectory() as srcdir:
        with open(os.path.join(srcdir, 'container.yaml'), 'wb') as handle:
            handle.write(data[:source.MAX_CONTAINER_YAML])
        return source.read_container_yaml(srcdir)


def container_yaml_flat_at_limit():
    _container_yaml(b'tags:\n' + b''.join(b'- t%d\n' % i for i in range(20000)))


def container_yaml_deep_at_limit():
    _refused(_container_yaml, b'a: ' + b'[' * source.MAX_CONTAINER_YAML)


# ------------------------------------------------------------------ requests (15)

def _max_opts():
    # ~17,000 JSON nodes, just under MAX_USERDATA by the options model's count
    userdata = {'k%d' % i: [{}] * 20 for i in range(800)}
    return {
        'git_branch': 'b' * scmurl.MAX_REF,
        'yum_repourls': ['https://repos.example.com/%s.repo' % ('r' * 990)] * options.MAX_ITEMS,
        'dependency_replacements': ['gomod:%s:v1' % ('n' * 1000)] * options.MAX_ITEMS,
        'compose_ids': list(range(1, options.MAX_ITEMS + 1)),
        'userdata': userdata,
    }


def hub_request_at_limits():
    options.validate('binary', _max_opts())
    scmurl.check_source_url('git+https://h.example.com/%s#%s' % ('p' * 1900, 'r' * 100))


def builder_check_at_limits():
    from koji_containerbuild import plan
    plan.validate_opts('binary', _max_opts())


def hub_request_oversized():
    _refused(options.validate, 'binary', {'git_branch': 'f40',
                                          'compose_ids': list(range(1, 200001))})
    _refused(options.validate, 'binary', {'git_branch': 'f40',
                                          'userdata': {'a': 'x' * (50 * 1024 * 1024)}})
    _refused(options.validate, 'binary', dict(('k%d' % i, 1) for i in range(100000)))


def builder_check_oversized():
    from koji_containerbuild import plan
    _refused(plan.validate_opts, 'binary', {'git_branch': 'f40',
                                            'compose_ids': list(range(1, 200001))})


# ------------------------------------------------------------------ CLI (16)

def cli_userdata_nesting():
    values = optparse.Values({'userdata': '[' * options.MAX_USERDATA})
    _refused(options.opts_from_cli, 'binary', values)
    deep = '{"a":' * 15 + '1' + '}' * 15
    opts = options.opts_from_cli('binary', optparse.Values({'userdata': deep}))
    options.validate('binary', dict(opts, git_branch='f40'))


CASES = [
    ('redact: "://" + ":" * N', '1 MiB line', redact_colons),
    ('redact: "https://a:" repeated', '1 MiB line', redact_many_schemes),
    ('redact: "https://a@" repeated', '1 MiB line', redact_many_userinfos),
    ('mask_userinfo: one long run', '1 MiB', mask_userinfo_run),
    ('Dockerfile: 64 inheriting stages, then FROM lines', '1 MiB, 4096 ENV names',
     dockerfile_stages_at_limit),
    ('Dockerfile: ENV lines', '1 MiB', dockerfile_env_lines_at_limit),
    ('Dockerfile: 2-byte comment lines', '1 MiB', dockerfile_short_lines_at_limit),
    ('Dockerfile: $A expansion of a 256 KiB value', '4 Mi chars budget',
     dockerfile_expansion_at_limit),
    ('Dockerfile: form-feed comment line', '1 MiB line', dockerfile_formfeed_line),
    ('additional-tags: duplicates', '1 MiB, 64 tags', additional_tags_at_limit),
    ('additional-tags: distinct tags', '1 MiB, refused', additional_tags_too_many),
    ('container.yaml: flat list', '64 KiB', container_yaml_flat_at_limit),
    ('container.yaml: nesting', '64 KiB of "["', container_yaml_deep_at_limit),
    ('hub: opts at every limit', '64 items, 64 KiB userdata', hub_request_at_limits),
    ('builder: opts at every limit (+schema)', '64 items, 64 KiB userdata',
     builder_check_at_limits),
    ('hub: oversized opts', '200k ids, 50 MB userdata', hub_request_oversized),
    ('builder: oversized opts', '200k ids', builder_check_oversized),
    ('CLI: --userdata nesting', '64 KiB of "["', cli_userdata_nesting),
]


if __name__ == '__main__':
    for name, size, func in CASES:
        started = time.perf_counter()
        func()
        print('%-50s %-28s %7.3f s' % (name, size, time.perf_counter() - started))
