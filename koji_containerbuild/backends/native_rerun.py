"""Native backend: a re-run of a task whose build an earlier run already imported.

kojid killed after CGImport: the re-run of the same task id must not build (nor
auto-release) a second time. It publishes what the earlier run may not have, in the
first run's order: the unique and primary tags, the SBOM/provenance attachments
(native_reattach: the documents Koji imported, byte-identical), the same tagBuild
subtask (host.subtask returns the earlier run's child for the same label and
arguments), then the floating tags; and returns the result the earlier run would have
returned. Everything comes from the reservation record (repository, tags, destination
tag) and the imported build (the manifest list digest, extra.image.supply_chain).
"""

from koji_containerbuild import ownership, registry as registry_mod
from koji_containerbuild.backends import native_reattach
from koji_containerbuild.backends.native_children import Children
from koji_containerbuild.errors import BackendError

TAG_METHOD = 'tagBuild'
RECORD_KEYS = ('repository', 'tags', 'dest_tag')


def finish(handler, native, build, record):
    """Finish the imported `build` of this task; the task result."""
    logger = handler.logger
    missing = [k for k in RECORD_KEYS if k not in record]
    index = ((build.get('extra') or {}).get('image') or {}).get('index') or {}
    digest = (index.get('digests') or {}).get(registry_mod.MEDIA_LIST)
    if missing or not digest:
        raise BackendError('Build %s (id %s) was already imported by this task, but what '
                           'is needed to finish it is not recorded (%s): publish its tags '
                           'and tag it by hand' % (build['nvr'], build['id'],
                                                   ', '.join(missing) or 'index digest'))
    tags = record['tags']
    repository = registry_mod.check_repository(record['repository'])
    fence = ownership.of_handler(handler)
    registry = registry_mod.Registry(native.registry, **native.registry_kwargs())
    media, data, got = registry.get_manifest(repository, digest)
    if got != digest:
        raise BackendError('Manifest list %s of build %s is not in %s any more'
                           % (digest, build['nvr'], registry.pullspec(repository, digest)))

    def publish(stage):
        for tag in tags.get(stage) or []:
            try:
                if registry.tag_digest(repository, tag) == digest:
                    continue
            except BackendError:
                pass        # not there (yet)
            fence.check('tag %s' % tag)
            registry.put_manifest(repository, tag, media, data)
            logger.info('re-run: tagged %s', registry.pullspec(repository, tag))

    publish('unique')
    publish('primary')
    # fails before tagBuild, as the first run does when attaching fails
    native_reattach.reattach(handler, build, registry, repository, data, fence)
    fence.check('tagBuild of %s' % build['nvr'])
    children = Children(handler, native.poll_interval)
    args = [record['dest_tag'], build['id'], False, None, True]
    child = children.start(TAG_METHOD, args, label='tag', arch='noarch')
    try:
        children.wait({child: 'tagBuild of %s' % build['nvr']})
    except BackendError as exc:
        raise BackendError('Build %s was imported (id %s) but not tagged: %s'
                           % (build['nvr'], build['id'], exc))
    publish('floating')
    names = list(tags.get('unique') or []) + list(tags.get('primary') or []) \
        + list(tags.get('floating') or [])
    return {'repositories': [registry.pullspec(repository, t) for t in names],
            'koji_builds': [str(build['id'])]}
