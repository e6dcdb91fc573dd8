"""The Dockerfile reader: LABEL/ENV/ARG, substitution, continuations, hostile input."""

import pytest

from koji_containerbuild import dockerfile
from koji_containerbuild.errors import SourceError


def labels(text, **kwargs):
    if isinstance(text, str):
        text = text.encode('utf-8')
    return dockerfile.parse(text, **kwargs).labels


def test_label_forms_and_quotes():
    got = labels('FROM x\n'
                 'LABEL a=1 "b"=two c="three words" d=\'$NOPE\' e=f\\ g\n'
                 'label lower=case\n'
                 'LABEL legacy value with  spaces\n')
    assert got == {'a': '1', 'b': 'two', 'c': 'three words', 'd': '$NOPE', 'e': 'f g',
                   'lower': 'case', 'legacy': 'value with  spaces'}


def test_env_substitution_forms():
    got = labels('FROM x\n'
                 'ENV A=1 EMPTY=\n'
                 'LABEL plain=$A braced=${A} def=${NOPE:-dflt} alt=${A:+yes} '
                 'noalt=${NOPE:+yes} emptydef=${EMPTY:-d} emptydash=${EMPTY-d} '
                 'nested=${NOPE:-${A}x} dollar=\\$A lone=$ dq="$A" mixed=a"$A"\'$A\'\n')
    assert got == {'plain': '1', 'braced': '1', 'def': 'dflt', 'alt': 'yes', 'noalt': '',
                   'emptydef': 'd', 'emptydash': '', 'nested': '1x', 'dollar': '$A',
                   'lone': '$', 'dq': '1', 'mixed': 'a1$A'}


def test_one_instruction_sees_previous_environment():
    got = labels('FROM x\nENV A=hello\nENV A=bye B=$A\nLABEL a=$A b=$B\n')
    assert got == {'a': 'bye', 'b': 'hello'}


def test_continuations_comments_and_escape_directive():
    got = labels('# escape=`\n'
                 'FROM x\n'
                 'LABEL a=1 `\n'
                 '# a comment inside\n'
                 '\n'
                 '      b=c:\\path `\n'
                 '      c=3\n')
    assert got == {'a': '1', 'b': 'c:\\path', 'c': '3'}


def test_backslash_continuation():
    got = labels('FROM x\nLABEL com.redhat.component="demo" \\   \n   version="1.0"\n')
    assert got == {'com.redhat.component': 'demo', 'version': '1.0'}


def test_arg_scopes_and_build_args():
    text = ('ARG BASE=img\nARG V=1\n'
            'FROM $BASE AS first\n'
            'LABEL v=$V\n'                       # global ARG not in scope without ARG V
            'ARG V\nLABEL w=$V\n'
            'ARG LOCAL=loc\nENV LOCAL=env\nLABEL l=$LOCAL\n')
    df = dockerfile.parse(text.encode())
    assert df.base_image == 'img'
    assert df.labels == {'v': '', 'w': '1', 'l': 'env'}
    assert dockerfile.parse(text.encode(), build_args={'V': '9', 'BASE': 'o'}).labels['w'] == '9'
    assert dockerfile.parse(text.encode(), build_args={'BASE': 'other'}).base_image == 'other'


def test_final_stage_and_stage_inheritance():
    got = labels('FROM a AS Builder\nLABEL x=1\nENV E=e\n'
                 'FROM b\nLABEL y=2\n'
                 'FROM builder\nLABEL z=$E\n')
    assert got == {'x': '1', 'z': 'e'}
    df = dockerfile.parse(b'FROM a AS base\nLABEL x=1\nFROM other\nLABEL y=2\n')
    assert df.labels == {'y': '2'}
    assert df.stages == ['base', None]


def test_from_flags_and_onbuild_ignored():
    df = dockerfile.parse(b'FROM --platform=linux/amd64 img:1 AS a\nONBUILD LABEL no=1\n'
                          b'LABEL yes=1\n')
    assert df.labels == {'yes': '1'}
    assert df.base_image == 'img:1'


def test_heredoc_bodies_are_not_instructions():
    got = labels('FROM x\nRUN <<EOT bash\necho LABEL evil=1\nEOT\n'
                 'COPY <<-"END" /f\n\tRUN evil2=1\n\tEND\nLABEL good=1\n')
    assert got == {'good': '1'}
    # a body line a builder without heredoc support would apply (buildah 1.28 here):
    # refused (tests/security/test_inputs_dockerfile.py)
    with pytest.raises(SourceError, match='heredoc'):
        labels('FROM x\nRUN <<EOT bash\nLABEL evil=1\nEOT\n')


def test_bom_and_crlf():
    assert labels(b'\xef\xbb\xbfFROM x\r\nLABEL a=1\r\n') == {'a': '1'}


def test_invalid_utf8_only_matters_where_used():
    assert labels(b'# caf\xe9\nFROM x\nRUN echo \xff\nLABEL a=1\n') == {'a': '1'}
    with pytest.raises(SourceError, match='line 2: LABEL a is not valid UTF-8'):
        labels(b'FROM x\nLABEL a=\xff\n')
    with pytest.raises(SourceError, match='not valid UTF-8'):
        labels(b'FROM x\nLABEL \xfe=1\n')


@pytest.mark.parametrize('text, message', [
    (b'', 'no FROM'),
    (b'# only a comment\n', 'no FROM'),
    (b'LABEL a=1\nFROM x\n', 'line 1: LABEL before the first FROM'),
    (b'FROM x\nLABEL ["a=1"]\n', 'not a JSON array'),
    (b'FROM x\nLABEL a\n', 'needs a value'),
    (b'FROM x\nLABEL\n', 'at least one argument'),
    (b'FROM x\nLABEL a=1 b\n', 'can\'t find "="'),
    (b'FROM x\nLABEL =1\n', 'can not be blank'),
    (b'FROM x\nLABEL a="unterminated\n', 'unterminated " quote'),
    (b"FROM x\nLABEL a='unterminated\n", "unterminated ' quote"),
    (b'FROM x\nLABEL a=${B\n', 'missing "}"'),
    (b'FROM x\nLABEL a=${}\n', 'bad variable substitution'),
    (b'FROM x\nLABEL a=${B/x/y}\n', 'unsupported variable modifier'),
    (b'FROM x\nLABEL a="${B:?must be set}"\n', 'variable B: must be set'),
    (b'FROM x\nLABEL a=${B?}\n', 'variable B: is not set'),
    (b'FROM\n', 'FROM needs an image'),
    (b'FROM a b\n', 'FROM takes'),
    (b'# escape=x\nFROM a\n', 'invalid escape directive'),
    (b'FROM x\nLABEL a=\x00\n', 'NUL'),
])
def test_errors_name_the_problem(text, message):
    with pytest.raises(SourceError, match=message):
        dockerfile.parse(text)


def test_size_limits():
    with pytest.raises(SourceError, match='larger than'):
        dockerfile.parse(b'FROM x\n' + b'#' * dockerfile.MAX_DOCKERFILE)
    big = b'x' * (dockerfile.MAX_VALUE + 1)
    with pytest.raises(SourceError, match='longer than'):
        dockerfile.parse(b'FROM x\nLABEL a=' + big + b'\n')
    # doubling chains stop at the per-value limit, not at memory exhaustion
    chain = b'FROM x\nENV a=0123456789abcdef\n' + b'ENV a=$a$a$a$a\n' * 40
    with pytest.raises(SourceError, match='longer than'):
        dockerfile.parse(chain)


def test_total_expansion_budget():
    value = b'v' * (dockerfile.MAX_VALUE // 2)
    text = b'FROM x\nENV a=' + value + b'\n' + b'LABEL l=$a$a\n' * 80
    with pytest.raises(SourceError, match='in total'):
        dockerfile.parse(text)


def test_nesting_limit():
    deep = b'${A:-' * (dockerfile.MAX_NESTING + 2) + b'x' + b'}' * (dockerfile.MAX_NESTING + 2)
    with pytest.raises(SourceError, match='nested too deeply'):
        dockerfile.parse(b'FROM x\nLABEL a=' + deep + b'\n')


def test_froms_expand_global_args_like_docker():
    text = (b'ARG REG=registry.example.com\nARG TAG\nARG NS=${REG}/ns\n'
            b'FROM ${NS}/base:${TAG:-1.0} AS Build\n'
            b'ARG LATE=nope\n'
            b'FROM --platform=$BUILDPLATFORM $REG/tool:$LATE\n'
            b'FROM build\n')
    df = dockerfile.parse(text)
    assert [(f['image'], f['alias'], f['flags'], f['stage_ref']) for f in df.froms] == [
        ('registry.example.com/ns/base:1.0', 'build', [], False),
        # ARGs after the first FROM are not in scope for FROM; flags are kept as written
        ('registry.example.com/tool:', None, ['--platform=$BUILDPLATFORM'], False),
        ('build', None, [], True),
    ]
    assert df.from_images() == ['registry.example.com/ns/base:1.0',
                                'registry.example.com/tool:']
    assert df.base_image == 'registry.example.com/ns/base:1.0'
    over = dockerfile.parse(text, build_args={'TAG': '2.0', 'REG': 'r.example.org'})
    assert over.from_images() == ['r.example.org/ns/base:2.0', 'r.example.org/tool:']


def test_froms_line_positions_span_continuations():
    text = (b'# syntax comment\n'
            b'FROM a:1 \\\n'
            b'# a comment inside the continuation\n'
            b'  AS one\n'
            b'RUN <<EOT\necho FROM not-an-instruction\nEOT\n'
            b'FROM scratch\n')
    froms = dockerfile.parse(text).froms
    assert [(f['first'], f['last'], f['image']) for f in froms] == [
        (1, 3, 'a:1'), (7, 7, 'scratch')]
    lines = text.decode().splitlines()
    assert lines[froms[0]['first']].startswith('FROM a:1')
    assert lines[froms[1]['first']] == 'FROM scratch'


@pytest.mark.parametrize('text, message', [
    (b'FROM a AS b extra\n', 'FROM takes'),
    (b'FROM a b\n', 'FROM takes'),
    (b'ARG NOTHING\nFROM $NOTHING\n', 'empty after ARG expansion'),
    (b'FROM --platform=linux/amd64\n', 'FROM needs an image'),
])
def test_bad_from_lines(text, message):
    with pytest.raises(SourceError, match=message):
        dockerfile.parse(text)
