"""Registry wire formats for registry.py: media types, names, bounded reads, JSON.

The media types and size limits, the repository/tag/digest name rules, the manifest
list the native backend writes, and the reading side of every answer: bodies read in
bounded chunks within the call's deadline (_read_limited) and one JSON parser
(parse_json) that turns any bad shape into a BackendError. Kept apart from the Registry
client (registry.py), which does the HTTP and auth; everything here stays importable
from registry.
"""

import hashlib
import json
import re

from koji_containerbuild.errors import BackendError

MEDIA_V2S2 = 'application/vnd.docker.distribution.manifest.v2+json'
MEDIA_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
MEDIA_OCI = 'application/vnd.oci.image.manifest.v1+json'
MEDIA_OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
MEDIA_CONFIG = 'application/vnd.docker.container.image.v1+json'
ACCEPT_ALL = ', '.join((MEDIA_LIST, MEDIA_V2S2, MEDIA_OCI_INDEX, MEDIA_OCI))
LIST_TYPES = (MEDIA_LIST, MEDIA_OCI_INDEX)
MAX_MANIFEST = 4 * 1024 * 1024
MAX_BLOB = 64 * 1024 * 1024
MAX_SMALL = 64 * 1024          # token answers, error bodies
_REPO_RE = re.compile(r'^[a-z0-9]+(?:[._-][a-z0-9]+|__)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*\Z')
_TAG_RE = re.compile(r'^[\w][\w.-]{0,127}\Z')
_DIGEST_RE = re.compile(r'^sha256:[0-9a-f]{64}\Z')


def digest_of(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def check_repository(repo):
    if not isinstance(repo, str) or not _REPO_RE.match(repo) or len(repo) > 255:
        raise BackendError('Invalid registry repository name %r' % (repo,))
    return repo


def check_reference(ref):
    if not isinstance(ref, str) or not (_TAG_RE.match(ref) or _DIGEST_RE.match(ref)):
        raise BackendError('Invalid tag or digest %r' % (ref,))
    return ref


def manifest_list(entries):
    """Docker manifest list v2 bytes for [{digest, size, media_type, goarch}], sorted by arch."""
    manifests = []
    for entry in sorted(entries, key=lambda e: (e['goarch'], e['digest'])):
        manifests.append({
            'mediaType': entry.get('media_type') or MEDIA_V2S2,
            'size': int(entry['size']),
            'digest': entry['digest'],
            'platform': {'architecture': entry['goarch'], 'os': 'linux'},
        })
    body = {'schemaVersion': 2, 'mediaType': MEDIA_LIST, 'manifests': manifests}
    return json.dumps(body, indent=3, sort_keys=True).encode('utf-8')


def _read_limited(resp, limit, what):
    """The body of `resp`, read in chunks, refused once over `limit` bytes or past the
    call's deadline (the watchdog also cuts a read that blocks)."""
    # here, not at the top: the names and rules above are also used (local command, before
    # its first buildah call) where no HTTP is done, and requests costs 0.05 s to import
    import requests
    import urllib3.exceptions

    from koji_containerbuild import http_deadline
    chunks = []
    total = 0
    try:
        for chunk in resp.iter_content(65536):
            total += len(chunk)
            if total > limit:
                raise BackendError('Registry response too large for a %s (over %d bytes)'
                                   % (what, limit))
            chunks.append(chunk)
            http_deadline.raise_if_expired()
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
            OSError) as exc:
        http_deadline.raise_if_expired()
        raise BackendError('Registry connection broke while reading a %s: %s'
                           % (what, _short(exc)))
    return b''.join(chunks)


def parse_json(data, what, expect=None):
    """JSON bytes from a registry as Python data; `expect` (dict or list) the top-level
    type. Every malformed answer (bad UTF-8, bad JSON, nesting too deep for the parser,
    another type) is a BackendError naming `what`."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise BackendError('Registry sent an invalid %s: JSON nested too deeply' % what)
    except (ValueError, TypeError) as exc:
        raise BackendError('Registry sent an invalid %s: %s' % (what, _short(exc)[:120]))
    if expect is not None and not isinstance(value, expect):
        raise BackendError('Registry sent an invalid %s: expected a JSON %s, got %s'
                           % (what, 'object' if expect is dict else 'array',
                              type(value).__name__))
    return value


def _list_of(body, key, where):
    """body[key] as a list of objects (entries of another type are skipped)."""
    value = body.get(key)
    if not isinstance(value, list):
        raise BackendError('Image %s: manifest field %r is not a list' % (where, key))
    return [entry for entry in value if isinstance(entry, dict)]


def _field(entry, key, kind, where):
    value = entry.get(key)
    if not isinstance(value, kind):
        raise BackendError('Image %s: manifest field %r is missing or invalid' % (where, key))
    return value


def _error_text(resp):
    try:
        data = _read_limited(resp, MAX_SMALL, 'error answer')
    except BackendError:
        return '(error body unreadable or too large)'
    try:
        body = parse_json(data, 'error answer', dict)
        errors = body.get('errors')
        if not isinstance(errors, list):
            raise BackendError('no errors list')
        return '; '.join('%s: %s' % (e.get('code'), e.get('message'))
                         for e in errors[:5] if isinstance(e, dict))[:300]
    except BackendError:
        return data[:200].decode('utf-8', 'replace').replace('\n', ' ')


def _short(exc):
    # requests errors may quote URLs; the registry URL carries no credentials, but be safe.
    from koji_containerbuild.buildah import scrub
    return scrub(str(exc))[:300]
