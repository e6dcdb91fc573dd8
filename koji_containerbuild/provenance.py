"""in-toto Statement v1 with a SLSA provenance v1 predicate for one per-arch image.

Pure: facts in, bytes out; the same facts give the same bytes (sorted keys, lists in a
fixed order, times taken from the build, never from the clock).

`image`: as for sbom.document (plus `started`). `build`:
  builder_id      the Koji hub and the buildContainer task ("<hub>#task=<id>"), or "local"
  invocation_id   what ran this arch (the createContainer task), or None
  source          the source URL pinned to the commit ("<url>#<sha>"), credentials removed
  commit          the commit sha, or None (a plain directory)
  target          the Koji build target (the local command: --target)
  dockerfile      the Dockerfile path inside the source
  options         the build options that change what is built (release, scratch, ...)
  internal        facts of the Koji side that are not inputs (nvr, task ids, build tag)
  tools           [{name, version}] of the buildroot (buildah, koji-containerbuild)
`parents`: as for sbom.document. `inputs`: {koji_repo: {url, repo_id, build_tag} | None,
yum_repos: [{url, sha256}]}.
"""

import json

from koji_containerbuild.sbom import iso_time, oci_purl

STATEMENT_TYPE = 'https://in-toto.io/Statement/v1'
PREDICATE_TYPE = 'https://slsa.dev/provenance/v1'
# Our build type: what externalParameters/internalParameters mean (docs/supply-chain.md).
BUILD_TYPE = 'urn:koji-containerbuild:buildtype:native-image:v1'
MEDIA_TYPE = 'application/vnd.in-toto+json'


def _subject_name(image):
    if image.get('registry'):
        return '%s/%s' % (image['registry'], image['name'])
    return image['name']


def _hex(digest):
    algorithm, _sep, value = digest.partition(':')
    return {algorithm: value}


def resolved_dependencies(build, parents, inputs, goarch):
    deps = []
    source = build.get('source')
    if source:
        dep = {'uri': source.split('#', 1)[0], 'name': 'source'}
        if build.get('commit'):
            dep['digest'] = {'gitCommit': build['commit']}
        deps.append(dep)
    for parent in parents:
        name = parent['repository'] or parent['from']
        dep = {'name': 'FROM %s' % parent['from'],
               'uri': oci_purl(name, parent.get('digest'), parent.get('registry'), goarch,
                               None if parent.get('digest') else parent.get('tag'))}
        if parent.get('digest'):
            dep['digest'] = _hex(parent['digest'])
        annotations = {'stage': 'final' if parent['final'] else 'build'}
        if parent.get('config_digest'):
            annotations['config_digest'] = parent['config_digest']
        if parent.get('koji_build'):
            annotations['koji_build'] = parent['koji_build']['nvr']
            annotations['koji_build_id'] = parent['koji_build']['id']
        dep['annotations'] = annotations
        deps.append(dep)
    repo = (inputs or {}).get('koji_repo')
    if repo:
        # mounted_from: a hermetic build's RUN steps read the repo from this builder path
        annotations = dict((k, repo[k]) for k in ('build_tag', 'repo_id', 'mounted_from')
                           if repo.get(k) is not None)
        deps.append({'name': repo.get('name') or 'koji-repo', 'uri': repo['url'],
                     'annotations': annotations})
    for number, entry in enumerate((inputs or {}).get('yum_repos') or []):
        deps.append({'name': 'yum_repourls[%d]' % number, 'uri': entry['url'],
                     'digest': {'sha256': entry['sha256']}})
    return deps


def statement(image, build, parents, inputs):
    """The in-toto statement as a dict."""
    external = {
        'source': build.get('source'),
        'target': build.get('target'),
        'arch': image['arch'],
        'dockerfile': build.get('dockerfile'),
        'options': dict(build.get('options') or {}),
    }
    metadata = {'startedOn': iso_time(image['started']),
                'finishedOn': iso_time(image['finished'])}
    if build.get('invocation_id'):
        metadata['invocationId'] = build['invocation_id']
    builder = {'id': build['builder_id']}
    tools = build.get('tools') or []
    if tools:
        builder['version'] = dict((t['name'], str(t['version'])) for t in tools)
    return {
        '_type': STATEMENT_TYPE,
        'subject': [{'name': _subject_name(image), 'digest': _hex(image['manifest_digest'])}],
        'predicateType': PREDICATE_TYPE,
        'predicate': {
            'buildDefinition': {
                'buildType': BUILD_TYPE,
                'externalParameters': external,
                'internalParameters': dict(build.get('internal') or {}),
                'resolvedDependencies': resolved_dependencies(build, parents, inputs,
                                                              image.get('goarch')),
            },
            'runDetails': {
                'builder': builder,
                'metadata': metadata,
                'byproducts': [{'name': 'image config', 'digest': _hex(image['config_digest']),
                                'mediaType': 'application/vnd.docker.container.image.v1+json'}],
            },
        },
    }


def dumps(doc):
    """Deterministic bytes of a statement."""
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + '\n').encode('utf-8')
