"""SBOM + provenance of a native build: produce them, list them as Koji outputs, attach
them to the images in the registry, write them next to the local command's metadata.

Per arch image two documents (sbom.py, provenance.py), from the ArchResult of
native_build.build_arch and the build's context; nothing here reads the clock or a
random source, so the same inputs give byte-identical documents.

Registry attachments follow the tag-schema convention for registries without the OCI
referrers API (docker-distribution): for the image manifest `sha256:<hex>` the tags
`sha256-<hex>.sbom` and `sha256-<hex>.att` hold OCI image manifests whose one layer is
the document and whose `subject` is the image manifest.
"""

import hashlib
import json
import os

from koji_containerbuild import provenance, rpmdb, sbom
from koji_containerbuild.errors import BackendError
from koji_containerbuild.native_build import split_image
from koji_containerbuild.registry import MEDIA_OCI, MEDIA_V2S2, digest_of

KINDS = ('sbom', 'provenance')
TAG_SUFFIX = {'sbom': 'sbom', 'provenance': 'att'}
MEDIA = {'sbom': sbom.MEDIA_TYPE, 'provenance': provenance.MEDIA_TYPE}
EMPTY_CONFIG = b'{}'
MEDIA_EMPTY = 'application/vnd.oci.empty.v1+json'
# Options of a build request that change what is built (recorded as parameters).
BUILD_OPTIONS = ('release', 'scratch', 'isolated', 'koji_parent_build', 'yum_repourls',
                 'arch_override', 'hermetic')


def filename(kind, arch):
    return ('sbom-%s.spdx.json' if kind == 'sbom' else 'provenance-%s.intoto.json') % arch


# ------------------------------------------------------------------ facts

def arch_inputs(koji_repo=None, yum_repourls=(), repo_files=()):
    """What an arch build resolved besides its parents, for ArchResult['supply_chain'].

    koji_repo: {url, repo_id, build_tag} or None; yum_repourls (redacted URLs) pair with
    repo_files (the fetched .repo files, same order), digested here.
    """
    repos = []
    for url, path in zip(yum_repourls, repo_files):
        digest = hashlib.sha256()
        with open(path, 'rb') as f:
            digest.update(f.read())
        repos.append({'url': url, 'sha256': digest.hexdigest()})
    return {'koji_repo': koji_repo, 'yum_repos': repos}


def image_facts(result, identity):
    get = identity.get if isinstance(identity, dict) else (lambda k: getattr(identity, k))
    return {
        'name': result['repository'], 'registry': result.get('registry'),
        'version': '%s-%s' % (get('version'), get('release')), 'nvr': get('nvr'),
        'arch': result['arch'], 'goarch': result.get('goarch'),
        'manifest_digest': result['manifest_digest'],
        'config_digest': result['config_digest'],
        'started': result.get('started', 0), 'finished': result.get('finished', 0),
    }


def parents_of(result, parent_image_builds=None, parent_build=None):
    """The parents of an ArchResult as sbom/provenance expect them (scratch left out)."""
    builds = parent_image_builds or {}
    pinned = result.get('parent_pinned') or {}
    tagged = result.get('parent_pullspecs') or {}
    images = [i for i in result.get('parent_images') or [] if i != 'scratch']
    final = (result.get('parent_images') or [None])[-1]
    parents = []
    for image in sorted(set(images), key=images.index):
        host, repo, tag, digest = split_image(pinned.get(image) or image)
        if image in pinned:
            # pinned by digest in the build registry: the tag is the one it was asked by
            tag = split_image(tagged.get(image) or image)[2]
        key = tagged.get(image) or _pullable(image)
        koji_build = builds.get(key)
        if image == final and parent_build:
            koji_build = {'id': parent_build['id'], 'nvr': parent_build['nvr']}
        parents.append({'from': image, 'registry': host, 'repository': repo, 'tag': tag,
                        'digest': digest, 'final': image == final,
                        'koji_build': koji_build or None,
                        # the base's image config digest (known even when not pinned)
                        'config_digest': result.get('parent_id') if image == final
                        else None})
    return parents


def _pullable(image):
    host, repo, tag, digest = split_image(image)
    ref = '%s/%s' % (host, repo) if host else repo
    return '%s@%s' % (ref, digest) if digest else '%s:%s' % (ref, tag or 'latest')


# ------------------------------------------------------------------ documents

def documents(arch_results, identity, build, parent_image_builds=None, parent_build=None):
    """[{arch, image (digest, media type, size), files: {kind: (filename, bytes)}}].

    build: the provenance build facts (provenance.py) common to all arches; its
    `arch_tasks` ({arch: task id}) gives each arch's invocation id.
    """
    import koji_containerbuild

    out = []
    for result in sorted(arch_results, key=lambda r: r['arch']):
        image = image_facts(result, identity)
        parents = parents_of(result, parent_image_builds, parent_build)
        facts = dict(build)
        facts['tools'] = [t for t in (result.get('buildroot') or {}).get('tools') or []]
        task = (build.get('arch_tasks') or {}).get(result['arch'])
        if task is not None and build.get('hub'):
            facts['invocation_id'] = '%s#task=%s' % (build['hub'], task)
        facts.pop('arch_tasks', None)
        facts.pop('hub', None)
        inputs = result.get('supply_chain') or {}
        licenses = result.get('rpm_licenses') or {}
        rpms = [dict(c, license=licenses.get(rpmdb.nvra(c)))
                for c in result.get('components') or []]
        sbom_doc = sbom.document(image, rpms, parents,
                                 koji_containerbuild.__version__)
        prov_doc = provenance.statement(image, facts, parents, inputs)
        out.append({
            'arch': result['arch'],
            'created': sbom_doc['creationInfo']['created'],
            'image': {'digest': result['manifest_digest'],
                      'media_type': result.get('manifest_media_type') or MEDIA_V2S2,
                      'size': result.get('manifest_size')},
            'files': {'sbom': (filename('sbom', result['arch']), sbom.dumps(sbom_doc)),
                      'provenance': (filename('provenance', result['arch']),
                                     provenance.dumps(prov_doc))},
        })
    return out


def files(docs):
    """[(filename, bytes)] of every document."""
    return [doc['files'][kind] for doc in docs for kind in KINDS]


def write(directory, docs):
    """Write the documents into `directory` (ours); returns their paths."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for name, data in files(docs):
        path = os.path.join(directory, name)
        with open(path, 'wb') as f:
            f.write(data)
        paths.append(path)
    return paths


def attachment_tag(image_digest, kind):
    algorithm, _sep, value = image_digest.partition(':')
    return '%s-%s.%s' % (algorithm, value, TAG_SUFFIX[kind])


# ------------------------------------------------------------------ Koji

def add_to_metadata(metadata, docs):
    """Add the documents as outputs of the CG import and name them in build.extra.image.

    Each is a `.json` archive (a type every hub has) of the `image` btype with
    extra.image.arch, on the buildroot of its arch's image output.
    """
    roots = dict((o['arch'], o['buildroot_id']) for o in metadata['output']
                 if o.get('type') == 'docker-image')
    named = {}
    for doc in docs:
        arch = doc['arch']
        if arch not in roots:
            raise BackendError('No image output for %s to attach its SBOM to' % arch)
        entry = {}
        for kind in KINDS:
            name, data = doc['files'][kind]
            metadata['output'].append({
                'buildroot_id': roots[arch], 'type': 'json', 'arch': arch,
                'filename': name, 'filesize': len(data),
                'checksum': hashlib.sha256(data).hexdigest(), 'checksum_type': 'sha256',
                'extra': {'image': {'arch': arch, 'supply_chain': kind,
                                    'media_type': MEDIA[kind]}},
            })
            entry[kind] = {'filename': name, 'media_type': MEDIA[kind],
                           'registry_tag': attachment_tag(doc['image']['digest'], kind)}
        named[arch] = entry
    metadata['build']['extra']['image']['supply_chain'] = named
    return metadata


# ------------------------------------------------------------------ registry

def artifact_manifest(kind, data, doc_name, image, created):
    """(bytes) of the OCI manifest attaching one document to `image`."""
    body = {
        'schemaVersion': 2,
        'mediaType': MEDIA_OCI,
        'artifactType': MEDIA[kind],
        'config': {'mediaType': MEDIA_EMPTY, 'digest': digest_of(EMPTY_CONFIG),
                   'size': len(EMPTY_CONFIG)},
        'layers': [{'mediaType': MEDIA[kind], 'digest': digest_of(data), 'size': len(data),
                    'annotations': {'org.opencontainers.image.title': doc_name}}],
        'subject': {'mediaType': image['media_type'], 'digest': image['digest'],
                    'size': image['size']},
        'annotations': {'org.opencontainers.image.created': created},
    }
    return json.dumps(body, indent=2, sort_keys=True).encode('utf-8')


def attach(registry, repository, docs, log_line=None):
    """Push every document as an artifact tagged `sha256-<hex>.sbom|.att`; read back."""
    registry.put_blob(repository, EMPTY_CONFIG)
    for doc in docs:
        for kind in KINDS:
            name, data = doc['files'][kind]
            registry.put_blob(repository, data)
            manifest = artifact_manifest(kind, data, name, doc['image'], doc['created'])
            tag = attachment_tag(doc['image']['digest'], kind)
            registry.put_manifest(repository, tag, MEDIA_OCI, manifest)
            served = registry.tag_digest(repository, tag)
            if served != digest_of(manifest):
                raise BackendError('Tag %s:%s serves %s, expected the %s artifact %s'
                                   % (repository, tag, served, kind, digest_of(manifest)))
            if log_line:
                log_line('Attached %s to %s' % (name, registry.pullspec(repository, tag)))


# ------------------------------------------------------------------ local command

def local_documents(results, identity, source, commit, target, options, repo_urls=(),
                    repo_files=(), repo_dir=None):
    """Documents of a `koji-containerbuild build` run (builder id `local`); repo_dir:
    the --hermetic --repo-dir directory."""
    from koji_containerbuild.scmurl import redact

    urls = [redact(u) for u in repo_urls]
    local_repo = None
    if repo_dir:
        local_repo = {'name': 'repo-dir', 'url': 'file://%s' % repo_dir,
                      'mounted_from': repo_dir}
    inputs = arch_inputs(local_repo, urls, repo_files)
    for result in results:
        result.setdefault('supply_chain', inputs)
    options = dict((k, v) for k, v in (options or {}).items() if v not in (None, False, [], ''))
    if 'yum_repourls' in options:
        options['yum_repourls'] = urls
    build = {'builder_id': 'local', 'source': redact(source), 'commit': commit,
             'target': target, 'dockerfile': 'Dockerfile', 'options': options}
    return documents(results, identity, build)


# ------------------------------------------------------------------ Koji builds

def koji_documents(hub, task_id, plan, dockerfile, arch_results, arch_tasks,
                   parent_build=None, parent_image_builds=None, build_id=None,
                   unique_tag=None, content_generator=None, hermetic=False):
    """Documents of a native buildContainer task (builder id: the hub and the task)."""
    from koji_containerbuild.scmurl import redact

    opts = dict(plan.opts or {})
    if hermetic:
        opts['hermetic'] = True
    opts['scratch'] = bool(plan.scratch)
    opts['isolated'] = bool(plan.isolated)
    options = {}
    for key in BUILD_OPTIONS:
        value = opts.get(key)
        if value in (None, [], '', {}):
            continue
        if key == 'yum_repourls':
            value = [redact(u) for u in value]
        options[key] = value
    internal = {'nvr': plan.identity.nvr, 'task_id': task_id,
                'build_tag': plan.target.get('build_tag_name'),
                'unique_tag': unique_tag, 'content_generator': content_generator}
    if build_id is not None:
        internal['build_id'] = build_id
    build = {'builder_id': '%s#task=%s' % (hub, task_id), 'hub': hub,
             'arch_tasks': dict(arch_tasks or {}), 'source': plan.checkout.source,
             'commit': plan.checkout.commit, 'target': plan.target['name'],
             'dockerfile': dockerfile, 'options': options,
             'internal': dict((k, v) for k, v in internal.items() if v is not None)}
    return documents(arch_results, plan.identity, build, parent_image_builds, parent_build)


def attach_with_retries(registry, repository, docs, log_line, delays=(2, 5, 15, 30),
                        sleep=None):
    """attach(), retrying registry errors (PUTs of the same bytes are idempotent)."""
    import time

    sleep = sleep or time.sleep
    for delay in tuple(delays) + (None,):
        try:
            return attach(registry, repository, docs, log_line)
        except BackendError as exc:
            if delay is None:
                raise
            log_line('attaching SBOM/provenance failed, retrying in %ss: %s' % (delay, exc))
            sleep(delay)
