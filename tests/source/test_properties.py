"""Property tests: generated (often hostile) Dockerfiles give labels or SourceError only."""

import os

from hypothesis import HealthCheck, given, settings, strategies as st

from koji_containerbuild import dockerfile, source
from koji_containerbuild.errors import SourceError

EXAMPLES = int(os.environ.get('SOURCE_PROPERTY_EXAMPLES', '150'))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

NAMES = st.sampled_from(['com.redhat.component', 'BZComponent', 'name', 'Name', 'version',
                         'Version', 'release', 'Release', 'A', 'B', 'x.y', 'my key'])
VARS = st.sampled_from(['A', 'B', 'VERSION', 'NOPE', '1', 'a_b'])
ODD = st.text(alphabet=st.sampled_from(list('aZ9 .-_/:"\'\\$`{}=#\t[]()!~*?<>;|&\u00e9\u2603'
                                            '\U0001f600\x00\r')), max_size=40)
HUGE = st.integers(min_value=1, max_value=300000).map(lambda n: 'v' * n)


@st.composite
def substitution(draw):
    var = draw(VARS)
    form = draw(st.sampled_from(['$%s', '${%s}', '${%s:-%s}', '${%s:+%s}', '${%s-%s}',
                                 '${%s:?%s}', '${%s', '$', '${%s:-${%s}}', '\\$%s']))
    count = form.count('%s')
    args = ((var,) + tuple(draw(ODD) for _ in range(count - 1)))[:count]
    return form % args


@st.composite
def value(draw):
    parts = draw(st.lists(st.one_of(ODD, substitution(), HUGE.filter(lambda v: len(v) < 5000)),
                          max_size=5))
    text = ''.join(parts)
    quote = draw(st.sampled_from(['', '"', "'"]))
    return quote + text + quote


@st.composite
def instruction(draw):
    kind = draw(st.sampled_from(['LABEL', 'ENV', 'ARG', 'label', 'FROM', 'RUN', 'ONBUILD',
                                 '#', 'LABEL-JSON', 'LEGACY']))
    if kind == 'LABEL-JSON':
        return 'LABEL ["%s=%s"]' % (draw(NAMES), draw(ODD))
    if kind == 'LEGACY':
        return 'ENV %s %s' % (draw(VARS), draw(value()))
    if kind == 'FROM':
        return 'FROM %s%s' % (draw(st.one_of(st.just('img'), substitution())),
                              draw(st.sampled_from(['', ' AS stage', ' as Stage', ' x'])))
    if kind in ('RUN', '#'):
        return '%s %s' % (kind, draw(ODD))
    key = draw(st.one_of(NAMES, VARS)) if kind != 'ARG' else draw(VARS)
    pairs = draw(st.lists(st.tuples(st.just(key), value()), min_size=1, max_size=3))
    sep = draw(st.sampled_from([' ', ' \\\n  ', ' \\\n# c\n  ']))
    return kind + ' ' + sep.join('%s=%s' % p for p in pairs)


@st.composite
def dockerfile_bytes(draw):
    lines = draw(st.lists(instruction(), max_size=12))
    if draw(st.booleans()):
        lines.insert(0, 'FROM base')
    text = '\n'.join(lines).encode('utf-8', 'surrogatepass')
    garbage = draw(st.binary(max_size=20))
    where = draw(st.integers(min_value=0, max_value=len(text)))
    if draw(st.booleans()):
        text = text[:where] + garbage + text[where:]
    if draw(st.booleans()):
        text = b'# escape=`\n' + text
    return text


@SETTINGS
@given(dockerfile_bytes())
def test_parse_gives_labels_or_source_error(data):
    try:
        df = dockerfile.parse(data)
    except SourceError as exc:
        assert str(exc)
        return
    for key, val in df.labels.items():
        assert isinstance(key, str) and isinstance(val, str)
        key.encode('utf-8')   # never surrogates: invalid UTF-8 was refused
        val.encode('utf-8')
        assert len(val) <= dockerfile.MAX_VALUE


@SETTINGS
@given(dockerfile_bytes(), st.one_of(st.none(), st.text(max_size=10)))
def test_identity_pipeline_gives_identity_or_source_error(data, release):
    try:
        labels = dockerfile.parse(data).labels
        ident = source.image_identity(labels, release_override=release or None)
        source.check_tag_lengths(ident.version, ident.release, [])
    except SourceError:
        return
    assert '-' not in ident.version
    assert ident.release is None or '-' not in ident.release


@SETTINGS
@given(st.binary(max_size=4000))
def test_arbitrary_bytes(data):
    try:
        dockerfile.parse(data)
    except SourceError:
        pass


@SETTINGS
@given(st.dictionaries(st.sampled_from(['com.redhat.component', 'name', 'version',
                                        'release', 'Version']),
                       st.text(max_size=300), max_size=5))
def test_identity_from_arbitrary_label_values(labels):
    try:
        ident = source.image_identity(labels)
    except SourceError:
        return
    assert ident.component and ident.name and ident.version


@SETTINGS
@given(st.text(alphabet=st.characters(blacklist_categories=('Cs',)), max_size=200))
def test_label_value_round_trip(text):
    # A double-quoted value with ", $, \\ escaped reads back exactly.
    escaped = text.replace('\\', '\\\\').replace('"', '\\"').replace('$', '\\$')
    escaped = escaped.replace('\r', '').replace('\n', '').replace('\x00', '')
    expected = text.replace('\r', '').replace('\n', '').replace('\x00', '')
    data = ('FROM x\nLABEL v="%s"\n' % escaped).encode('utf-8')
    try:
        got = dockerfile.parse(data).labels
    except SourceError:
        # only separators splitting lines (\x0b, \x1c, \u2028...) may break the line
        assert any(c in text for c in '\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029')
        return
    if not any(c in text for c in '\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029'):
        assert got == {'v': expected}


@SETTINGS
@given(st.lists(st.text(max_size=150), max_size=8))
def test_additional_tags_file_round(tmp_path_factory, lines):
    d = str(tmp_path_factory.mktemp('tags'))
    with open(os.path.join(d, 'additional-tags'), 'w', encoding='utf-8',
              errors='surrogatepass') as handle:
        handle.write('\n'.join(lines))
    try:
        tags = source.read_additional_tags(d)
        source.check_tag_lengths('1', '1', tags)
    except SourceError:
        return
    valid, invalid = source.split_valid_tags(tags)
    assert sorted(valid + invalid) == sorted(tags)
    assert all(len(t) <= 128 for t in valid)
