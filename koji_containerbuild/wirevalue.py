"""Bounded checks of values that travel in a Koji request (XML-RPC, stored by the hub).

Request values are hostile: any size, any nesting. Everything here walks a value
iteratively (no recursion), stops at the first problem or as soon as a limit is passed,
and never builds a repr() or a JSON text of the whole value.
"""

import math
import re

from koji_containerbuild.errors import OptionError

INT64_MIN, INT64_MAX = -2 ** 63, 2 ** 63 - 1   # what XML-RPC (i8) carries
# Characters XML 1.0 cannot carry (the task request is stored XML-RPC encoded) and
# lone surrogates, which do not encode to UTF-8.
XML_BAD_CHARS_PATTERN = '[\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\ud800-\\udfff\\ufffe\\uffff]'
_XML_BAD = re.compile(XML_BAD_CHARS_PATTERN)
MAX_SHOWN = 80


def short_repr(value, limit=MAX_SHOWN):
    """A repr() of `value` cut to `limit` characters, built in bounded time."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        text = repr(value)
    elif isinstance(value, int):
        # int -> decimal is quadratic in the digits: show huge ones by size
        text = repr(value) if abs(value) < 10 ** 40 else '<integer of %d bits>' % (
            value.bit_length())
    elif isinstance(value, str):
        text = repr(value[:limit])
    elif isinstance(value, (list, tuple, dict)):
        kind = type(value).__name__
        items = list(value.items())[:3] if isinstance(value, dict) else list(value[:3])
        shown = ', '.join(short_repr(i, 24) for i in items)
        text = '<%s of %d: %s%s>' % (kind, len(value), shown, ', ...' if len(value) > 3 else '')
    else:
        text = '<%s>' % type(value).__name__
    return text if len(text) <= limit else text[:limit - 3] + '...'


def check_depth(value, where, max_depth):
    """Refuse values nested deeper than `max_depth` lists/dicts (no recursion)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, tuple, dict)):
            if depth >= max_depth:
                raise OptionError('Invalid %s: nested deeper than %d levels' % (where, max_depth))
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def check_json_value(value, where, max_depth, max_size=None):
    """Refuse what a JSON/XML-RPC request value cannot be: nesting over `max_depth`,
    integers outside 64 bits, NaN or Infinity, text XML cannot carry, non-text keys,
    other types; and (max_size) more than about `max_size` characters as compact JSON.
    One pass, stopped at the first problem or as soon as the size is passed."""
    size = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if item is None or isinstance(item, bool):
            size += 5
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                raise OptionError('Invalid %s: integer %s does not fit in 64 bits'
                                  % (where, short_repr(item)))
            size += 20
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise OptionError('Invalid %s: NaN and Infinity are not valid JSON numbers'
                                  % where)
            if item.is_integer() and not INT64_MIN <= item <= INT64_MAX:
                # a JSON schema reads 1e300 as an integer: whole numbers fit in 64 bits
                raise OptionError('Invalid %s: whole number %s does not fit in 64 bits'
                                  % (where, short_repr(item)))
            size += 24
        elif isinstance(item, str):
            size += len(item) + 2
            if max_size is not None and size > max_size:
                break
            if _XML_BAD.search(item):
                raise OptionError('Invalid %s: text contains control characters or invalid '
                                  'unicode' % where)
        elif isinstance(item, (list, dict)):
            if depth >= max_depth:
                raise OptionError('Invalid %s: nested deeper than %d levels' % (where, max_depth))
            size += 2 + len(item)
            if max_size is not None and size > max_size:
                break
            if isinstance(item, dict):
                for key in item:
                    if not isinstance(key, str):
                        raise OptionError('Invalid %s: object keys must be strings, got %s'
                                          % (where, short_repr(key)))
                    stack.append((key, depth + 1))
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)
        else:
            raise OptionError('Invalid %s: unsupported value %s (JSON values only)'
                              % (where, short_repr(item)))
        if max_size is not None and size > max_size:
            break
    if max_size is not None and size > max_size:
        raise OptionError('Invalid %s: larger than %d characters as JSON' % (where, max_size))
