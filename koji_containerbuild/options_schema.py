"""The JSON schema (draft 7) of build options, derived from the options table.

json_schema(kind) is what the builder checks task parameters with (plan.py), so a hub
older than the builder cannot hand it opts the table does not allow. Kept apart from
options.py (the table and validate) because it is a second, declarative rendering of the
same rules; options.json_schema stays importable.
"""

from koji_containerbuild import wirevalue
from koji_containerbuild.options import (BAD_CHARS_PATTERN, BY_NAME, MAX_DEPTH, MAX_FLOAT,
                                         MAX_TEXT, options_for, rules_for)
from koji_containerbuild.wirevalue import XML_BAD_CHARS_PATTERN


def _int_schema(opt):
    schema = {'type': 'integer'}
    if opt.minimum is not None:
        schema['minimum'] = opt.minimum
    if opt.maximum is not None:
        schema['maximum'] = opt.maximum
    return schema


def _schema_for_value(opt):
    vtype = opt.vtype
    if vtype == 'bool':
        schema = {'type': 'boolean'}
    elif vtype == 'int':
        schema = _int_schema(opt)
    elif vtype == 'text':
        schema = _text_schema(opt)
    elif vtype == 'list_text':
        schema = {'type': 'array', 'items': _text_schema(opt), 'maxItems': opt.max_items}
    elif vtype == 'list_int':
        schema = {'type': 'array', 'items': _int_schema(opt), 'maxItems': opt.max_items}
    elif vtype == 'object':
        schema = _json_object(1)
    else:  # pragma: no cover
        raise ValueError(vtype)
    if opt.deprecated and vtype == 'bool':
        schema = {'enum': [False]}
    return {'anyOf': [schema, {'type': 'null'}], 'description': opt.help}


# userdata as the schema sees it (wirevalue.check_json_value is the same rule, plus the
# total size, which a schema cannot express): JSON values nested at most MAX_DEPTH deep,
# whole numbers within 64 bits, other numbers finite, text XML can carry.
# One definition per depth: json_value_<d> is a value at depth d (the object is depth 0).
_TEXT_SCHEMA = {'type': 'string', 'not': {'pattern': XML_BAD_CHARS_PATTERN}}
_SCALARS = [
    {'type': ['null', 'boolean']},
    _TEXT_SCHEMA,
    {'type': 'integer', 'minimum': wirevalue.INT64_MIN, 'maximum': wirevalue.INT64_MAX},
    # a number that is not whole: NaN passes every bound (comparisons with NaN are
    # false) and is the only number with both exclusive bounds 0, so 'not' refuses it
    {'type': 'number', 'minimum': -MAX_FLOAT, 'maximum': MAX_FLOAT,
     'not': {'anyOf': [{'type': 'integer'}, {'exclusiveMinimum': 0, 'exclusiveMaximum': 0}]}},
]


def _json_ref(depth):
    return {'$ref': '#/definitions/json_value_%d' % depth}


def _json_object(depth):
    return {'type': 'object', 'propertyNames': _TEXT_SCHEMA,
            'additionalProperties': _json_ref(depth)}


def _json_definitions():
    defs = {}
    for depth in range(1, MAX_DEPTH + 1):
        choices = list(_SCALARS)
        if depth < MAX_DEPTH:
            choices += [{'type': 'array', 'items': _json_ref(depth + 1)},
                        _json_object(depth + 1)]
        defs['json_value_%d' % depth] = {'anyOf': choices}
    return defs


def _text_schema(opt):
    schema = {'type': 'string', 'maxLength': MAX_TEXT, 'not': {'pattern': BAD_CHARS_PATTERN}}
    if opt.pattern:
        schema['pattern'] = opt.pattern
    return schema


def _set_schema(opt):
    """Schema matching a value that counts as set (see is_set)."""
    if opt.vtype == 'bool':
        return {'const': True}
    if opt.vtype in ('list_text', 'list_int'):
        return {'type': 'array', 'minItems': 1}
    if opt.vtype == 'object':
        return {'type': 'object', 'minProperties': 1}
    if opt.vtype == 'text':
        return {'type': 'string', 'minLength': 1}
    return {'not': {'type': 'null'}}


def _is_set_schema(name):
    opt = BY_NAME[name]
    return {'required': [name], 'properties': {name: _set_schema(opt)}}


def _rule_schema(rule):
    if rule.kind == 'exclusive':
        return {'not': {'allOf': [_is_set_schema(n) for n in rule.names]}}
    if rule.kind == 'requires':
        return {'if': {'anyOf': [_is_set_schema(n) for n in rule.names]},
                'then': {'anyOf': [_is_set_schema(n) for n in rule.others]}}
    if rule.kind == 'one_of':
        return {'anyOf': [_is_set_schema(n) for n in rule.names]}
    raise ValueError(rule.kind)  # pragma: no cover


def json_schema(kind):
    """JSON schema (draft 7) for the opts of a `kind` build, derived from the table."""
    opts = options_for(kind)
    all_of = [_rule_schema(r) for r in rules_for(kind)]
    for opt in opts:
        if kind in opt.required:
            all_of.append(_is_set_schema(opt.name))
    return {
        '$schema': 'http://json-schema.org/draft-07/schema#',
        'title': '%s container build options' % kind,
        'type': 'object',
        'properties': dict((o.name, _schema_for_value(o)) for o in opts),
        'additionalProperties': False,
        'required': sorted(o.name for o in opts if kind in o.required),
        'allOf': all_of,
        'definitions': _json_definitions(),
    }
