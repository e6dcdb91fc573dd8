"""Native backend: remove the registry tags a build that did not complete left behind.

A failed, cancelled or orphaned build may have pushed per-arch images
(`<unique>-<arch>`, pushed by the createContainer subtasks) and, just before the import,
its manifest list by digest. Nothing else is published before a successful CGImport.
They are removed where the registry allows deletion (docker-distribution:
`storage: delete: enabled: true`), by deleting the manifest by digest (the registry API
has no "untag"): only digests this build pushed, found through its own unique tags.
Where the registry refuses (HTTP 405, deletion disabled) the tags are listed for the
admin in kojid's log (docs/native-koji.md, section 6 "Leftover tags").
"""

from koji_containerbuild import ownership, registry as registry_mod
from koji_containerbuild.backends.native_common import short
from koji_containerbuild.errors import BackendError


def arch_tags(unique, arches):
    return ['%s-%s' % (unique, arch) for arch in arches]


def delete_left(registry, repository, tags, logger, digests=()):
    """Delete the manifests `tags` (and `digests`) point at; returns the references that
    are still in the registry (deletion refused or failed). Never raises."""
    left = []
    targets = []
    for tag in tags:
        try:
            digest = registry.tag_digest(repository, tag)
        except BackendError:
            continue          # never pushed (or already gone)
        targets.append((tag, digest))
    targets += [(digest, digest) for digest in digests if digest]
    done = set()
    for ref, digest in targets:
        if digest in done:
            continue
        try:
            status = _delete_manifest(registry, repository, digest)
        except BackendError as exc:
            status = short(exc)
        if status in (202, 200, 404):
            done.add(digest)
            logger.info('removed %s from the registry', registry.pullspec(repository, ref))
        else:
            left.append(registry.pullspec(repository, ref))
            logger.warning('cannot remove %s from the registry (%s)',
                           registry.pullspec(repository, ref),
                           'deletion is disabled' if status == 405 else status)
    if left:
        logger.warning('registry references left by this build (remove them by hand, see '
                       'section 6 of docs/native-koji.md): %s', ', '.join(left))
    return left


def _delete_manifest(registry, repository, digest):
    """DELETE /v2/<repo>/manifests/<digest>; the HTTP status."""
    resp = registry._request('DELETE', '/v2/%s/manifests/%s' % (repository, digest),
                             'repository:%s:delete' % repository)
    with resp:
        return resp.status_code


def remove_earlier(handler, native, record, unique_too=False):
    """The per-arch tags a killed earlier run of this task may have pushed (from its
    reservation record; the re-run builds under a new unique tag), and with unique_too
    its unique tag (a scratch build's only result, lost with the killed run)."""
    tags = (record.get('tags') or {}).get('unique') or []
    if not (tags and record.get('repository') and record.get('arches')):
        return []
    registry = registry_mod.Registry(native.registry, **native.registry_kwargs())
    refs = arch_tags(tags[0], record['arches']) + (tags[:1] if unique_too else [])
    ownership.of_handler(handler).check('removing what the earlier run pushed')
    return delete_left(registry, record['repository'], refs, handler.logger)
