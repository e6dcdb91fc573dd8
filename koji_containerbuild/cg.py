"""Content-generator metadata for a native image build, and the manifest list.

Shapes follow docs/shared container-image-metadata.md section 2 (what OSBS imports):
only `build.extra.image` (the hub derives typeinfo), one buildroot and one
`docker-image` output per arch, each arch's log as a `log` output of that arch's
buildroot. Each image output is backed by a small placeholder tar.gz naming its pull
spec: the image itself lives in the registry, and uploading it to Koji as well would
store every layer twice and make each import as slow as a full image upload. The
placeholder's name (`registry-pointer-<config digest>.<arch>.tar.gz`) says so: OSBS's
`docker-image-*.tar.gz` archives are `docker load`-able images, these are not.
Output is deterministic: the same inputs give byte-identical placeholders and metadata.
"""

import gzip
import hashlib
import io
import json
import os
import random
import re
import shutil
import tarfile
import time

from koji_containerbuild import tag_guard
from koji_containerbuild.errors import BackendError
# registry_parse, not registry: no requests import for the local command's pre-build steps
from koji_containerbuild.registry_parse import MEDIA_LIST, MEDIA_V2S2, digest_of, manifest_list

CG_NAME = 'koji-containerbuild'
PLACEHOLDER_PREFIX = 'registry-pointer-'
OS_RELEASE = '/etc/os-release'
MAX_OS_RELEASE = 64 * 1024
OSBS_BUILD = {'kind': 'container_build', 'engine': 'buildah', 'subtypes': []}
_CONTROL_RE = re.compile('[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')


def unique_tag(target, now=None, rand=None, fmt='{target}-{random}-{timestamp}',
               task_id=None):
    """`<target>-<5 random digits>-<UTC %Y%m%d%H%M%S>` (the OSBS unique tag)."""
    now = time.gmtime(now if now is not None else time.time())
    rand = rand if rand is not None else random.SystemRandom().randint(0, 99999)
    return fmt.format(target=target, random='%05d' % rand,
                      timestamp=time.strftime('%Y%m%d%H%M%S', now), task_id=task_id)


def tag_plan(identity, scratch=False, isolated=False, additional_tags=(), unique=None):
    """{'unique': [...], 'primary': [...], 'floating': [...]} for a build."""
    primary = ['%s-%s' % (_get(identity, 'version'), _get(identity, 'release'))]
    if scratch:
        return {'unique': [unique], 'primary': [], 'floating': []}
    if isolated:
        return {'unique': [unique], 'primary': primary, 'floating': []}
    floating = ['latest', _get(identity, 'version')]
    for tag in additional_tags or ():
        if tag not in floating and tag not in primary:
            floating.append(tag)
    return {'unique': [unique], 'primary': primary, 'floating': floating}


def _get(obj, key):
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)


# ------------------------------------------------------------------ manifest list

def list_entries(arch_results):
    return [{'digest': r['manifest_digest'], 'size': r['manifest_size'],
             'media_type': r.get('manifest_media_type') or MEDIA_V2S2,
             'goarch': r['goarch']} for r in arch_results]


def manifest_list_for(arch_results):
    """(bytes, digest) of the Docker manifest list of the per-arch images."""
    data = manifest_list(list_entries(arch_results))
    return data, digest_of(data)


def index_info(registry_host, repository, list_digest, tags, scratch=False):
    """build.extra.image.index for a manifest list at `list_digest` with `tags`."""
    pull = ['%s/%s@%s' % (registry_host, repository, list_digest)]
    if tags['primary']:
        pull.append('%s/%s:%s' % (registry_host, repository, tags['primary'][0]))
    return {
        'pull': pull,
        'digests': {MEDIA_LIST: list_digest},
        'tags': list(tags['unique'] + tags['primary'] + tags['floating']) if scratch
        else list(tags['primary']),
        'floating_tags': list(tags['floating']),
        'unique_tags': list(tags['unique']),
    }


def publish_manifest_list(registry, repository, arch_results, tags, stages=None,
                          log_line=None, scratch=False, component=None):
    """PUT the manifest list to the unique and primary tags, then the floating tags.

    Every tag is read back and must serve the list digest. `stages` limits what is
    published (('unique', 'primary') before an import, ('floating',) after it).
    One tag at a time: with concurrent PUTs of the same list under several tags,
    docker-distribution (filesystem storage) answered a read-back with HTTP 500.
    With `component`, every tag of the plan is checked first (tag_guard): nothing is
    PUT when any tag belongs to another component or the NVR tag holds another build.
    Returns the index info.
    """
    data, digest = manifest_list_for(arch_results)
    if component is not None:
        tag_guard.check_tags(registry, repository, tags, component, list_digest=digest)
    order = ('unique', 'primary', 'floating')
    for stage in order:
        if stages is not None and stage not in stages:
            continue
        for tag in tags.get(stage) or []:
            got = registry.put_manifest(repository, tag, MEDIA_LIST, data)
            served = registry.tag_digest(repository, tag)
            if got != digest or served != digest:
                raise BackendError('Tag %s:%s serves %s, expected the manifest list %s'
                                   % (repository, tag, served, digest))
            if log_line:
                log_line('Tagged %s' % registry.pullspec(repository, tag))
    return index_info(registry.host, repository, digest, tags, scratch=scratch)


# ------------------------------------------------------------------ placeholders

def placeholder_filename(arch_result):
    """Not `docker-image-...`: that name is OSBS's for a loadable image archive."""
    return '%s%s.%s.tar.gz' % (PLACEHOLDER_PREFIX, arch_result['config_digest'],
                               arch_result['arch'])


def placeholder_archive(arch_result):
    """(filename, bytes): a tar.gz with a README naming where the image really is."""
    where = arch_result['repositories'] or ['(not pushed: %s)' % arch_result.get('image_dir')]
    text = ('This is not a container image and cannot be loaded (docker/podman load).\n'
            'The %s image %s is stored in a container registry; pull it from:\n%s\n'
            % (arch_result['arch'], arch_result['config_digest'],
               '\n'.join('  %s' % r for r in where))).encode('utf-8')
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode='w', format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo('README')
        info.size = len(text)
        info.mtime = 0
        info.mode = 0o644
        info.uname = info.gname = 'root'
        tar.addfile(info, io.BytesIO(text))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode='wb', mtime=0, filename='') as gz:
        gz.write(raw.getvalue())
    return placeholder_filename(arch_result), packed.getvalue()


def _file_facts(data):
    return {'filesize': len(data), 'checksum': hashlib.sha256(data).hexdigest(),
            'checksum_type': 'sha256'}


def _path_facts(path):
    digest = hashlib.sha256()
    size = 0
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
            size += len(chunk)
    return {'filesize': size, 'checksum': digest.hexdigest(), 'checksum_type': 'sha256'}


# ------------------------------------------------------------------ buildroot facts

def host_os(path=OS_RELEASE):
    """The builder host's OS for buildroot `host.os`, from os-release(5): PRETTY_NAME,
    else `NAME VERSION_ID`; the kernel's name when the file is missing or says nothing."""
    fields = {}
    try:
        with open(path, 'rb') as f:
            data = f.read(MAX_OS_RELEASE).decode('utf-8', 'replace')
    except OSError:
        data = ''
    for line in data.splitlines():
        key, sep, value = line.partition('=')
        if sep and key.strip() in ('PRETTY_NAME', 'NAME', 'VERSION_ID'):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in '"\'':
                value = value[1:-1]
            fields[key.strip()] = value[:200]
    text = fields.get('PRETTY_NAME') or ' '.join(
        v for v in (fields.get('NAME'), fields.get('VERSION_ID')) if v)
    return text or os.uname().sysname


def buildroot_container(arch, settings):
    """Buildroot `container`: the build's RUN steps ran in buildah containers with the
    configured isolation (oci, chroot or rootless), not on the bare host."""
    return {'type': 'buildah', 'arch': arch}


def buildroot_extra(settings):
    """Buildroot `extra`: how buildah isolated the build."""
    buildah_facts = dict((k, settings[k]) for k in ('isolation', 'network') if settings.get(k))
    if settings.get('hermetic_repo'):
        buildah_facts['hermetic'] = True
    return {'buildah': buildah_facts}


# ------------------------------------------------------------------ metadata

def build_metadata(identity, source, owner, task_id, start_time, end_time, arch_results,
                   index=None, parent_build=None, logs=(), isolated=False, submitter=None,
                   build_id=None, yum_repourls=None, parent_image_builds=None,
                   user_metadata=None, cg_name=CG_NAME, cg_version=None, flatpak=False,
                   hermetic=False):
    """The CGImport metadata dict (metadata_version 0).

    arch_results: native_build.build_arch results. index: index_info(...) or None
    (no registry). parent_build: the Koji build dict of the final parent, or None.
    logs: [(local path, filename)]; an arch's log (its `log_file`, else `<arch>.log`) is
    an output of that arch's buildroot, any other log one of the first buildroot, noarch.
    """
    import koji_containerbuild

    if not arch_results:
        raise BackendError('No architecture was built, nothing to import')
    results = sorted(arch_results, key=lambda r: r['arch'])
    cg_version = cg_version or koji_containerbuild.__version__
    image = {'isolated': bool(isolated)}
    parents = results[0].get('parent_images') or []
    image['parent_images'] = list(parents)
    if parent_build:
        image['parent_build_id'] = int(parent_build['id'])
    if parent_image_builds is not None:
        image['parent_image_builds'] = parent_image_builds
    if index:
        image['index'] = index
    image['media_types'] = sorted(set([MEDIA_LIST] if index else []) |
                                  set(r.get('manifest_media_type') or MEDIA_V2S2
                                      for r in results))
    if yum_repourls:
        image['yum_repourls'] = list(yum_repourls)
    if flatpak:
        image['flatpak'] = True
    if hermetic:
        image['hermetic'] = True
    extra = {
        'image': image,
        'container_koji_task_id': int(task_id) if task_id is not None else None,
        'osbs_build': dict(OSBS_BUILD, subtypes=['flatpak'] if flatpak else []),
        'submitter': submitter or owner,
    }
    if extra['container_koji_task_id'] is None:
        del extra['container_koji_task_id']
    if user_metadata:
        extra['custom_user_metadata'] = user_metadata
    build = {
        'name': _get(identity, 'component'),
        'version': _get(identity, 'version'),
        'release': _get(identity, 'release'),
        'source': source,
        'start_time': int(start_time),
        'end_time': int(end_time),
        'extra': extra,
    }
    if owner:
        build['owner'] = owner
    if build_id is not None:
        build['build_id'] = int(build_id)
    buildroots = []
    outputs = []
    for result in results:
        root = dict(result['buildroot'])
        root['content_generator'] = {'name': cg_name, 'version': cg_version}
        buildroots.append(root)
        filename, data = placeholder_archive(result)
        docker = {
            'id': result['config_digest'],
            'repositories': list(result['repositories']),
            'digests': {result.get('manifest_media_type') or MEDIA_V2S2:
                        result['manifest_digest']},
            'config': result['config'],
            'layer_sizes': result['layer_sizes'],
            'tags': list(result['tags']),
        }
        if result.get('parent_id'):
            docker['parent_id'] = result['parent_id']
        output = {
            'buildroot_id': root['id'],
            'type': 'docker-image',
            'arch': result['arch'],
            'filename': filename,
            'components': result['components'],
            'extra': {'image': {'arch': result['arch']}, 'docker': docker},
        }
        output.update(_file_facts(data))
        outputs.append(output)
    ids = [b['id'] for b in buildroots]
    if len(set(ids)) != len(ids):
        raise BackendError('Two arches report the same buildroot id: %s' % ', '.join(ids))
    seen = set(o['filename'] for o in outputs)
    log_of = dict((r.get('log_file') or '%s.log' % r['arch'], (b['id'], r['arch']))
                  for r, b in zip(results, buildroots))
    for path, filename in logs:
        if filename in seen or '/' in filename:
            raise BackendError('Log name %r is not unique or not a plain name' % filename)
        seen.add(filename)
        root_id, arch = log_of.get(filename, (ids[0], 'noarch'))
        out = {'buildroot_id': root_id, 'type': 'log', 'arch': arch, 'filename': filename}
        out.update(_path_facts(path))
        outputs.append(out)
    return _clean({'metadata_version': 0, 'build': build, 'buildroots': buildroots,
                   'output': outputs})


def _clean(value):
    """Escape control characters (other than \\n \\t \\r) in every string."""
    if isinstance(value, str):
        return _CONTROL_RE.sub(lambda m: '\\x%02x' % ord(m.group()), value)
    if isinstance(value, dict):
        return dict((_clean(k), _clean(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def dumps(metadata):
    """Deterministic JSON text of the metadata (sorted keys)."""
    return json.dumps(metadata, indent=2, sort_keys=True) + '\n'


def write_import_dir(directory, metadata, arch_results, logs=()):
    """Write metadata.json, the placeholders and the logs into `directory`.

    Returns the file names written (what must be uploaded before CGImport).
    """
    os.makedirs(directory, exist_ok=True)
    names = []
    for result in arch_results:
        filename, data = placeholder_archive(result)
        with open(os.path.join(directory, filename), 'wb') as f:
            f.write(data)
        names.append(filename)
    for path, filename in logs:
        target = os.path.join(directory, filename)
        if os.path.abspath(path) != os.path.abspath(target):
            shutil.copyfile(path, target)
        names.append(filename)
    with open(os.path.join(directory, 'metadata.json'), 'w') as f:
        f.write(dumps(metadata))
    names.append('metadata.json')
    return names


__all__ = ['build_metadata', 'placeholder_archive', 'publish_manifest_list', 'index_info',
           'manifest_list_for', 'tag_plan', 'unique_tag', 'write_import_dir', 'dumps']
