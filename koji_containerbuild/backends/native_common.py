"""Native backend: small shared helpers of the parent and per-arch flows."""

import json

import koji

MAX_RESULT_TEXT = 300
FINISHED = (koji.TASK_STATES['CLOSED'], koji.TASK_STATES['FAILED'],
            koji.TASK_STATES['CANCELED'])


def json_norm(value):
    return json.dumps(value, sort_keys=True, default=str)


def is_fault(result):
    return isinstance(result, dict) and set(result) == set(('faultCode', 'faultString'))


def short(text):
    text = str(text)
    return text if len(text) <= MAX_RESULT_TEXT else text[:MAX_RESULT_TEXT - 3] + '...'
