"""One architecture of a native image build: Dockerfile in, pushed image + facts out.

build_arch() is what the Koji `createContainer` task and the local command both run:
pin the parent images, buildah build with the Koji labels, push by the unique arch tag
(v2s2), then collect what the content-generator metadata needs (config, digests, layer
sizes, RPM components, parent config digest). The result is a JSON-safe dict.

Parent images: a FROM without a registry host (e.g. `FROM acme/base:1.0-1`), or one on
the build registry, is resolved in the build registry and pinned by digest for the
arch being built, as OSBS does with its source registry. Other FROM images are pulled
as written.
"""

import contextlib
import json
import os
import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import koji_containerbuild
from koji_containerbuild import (buildah, cg, dockerfile as dockerfile_reader, hermetic,
                                 rpmdb, safe_files, source)
from koji_containerbuild.errors import BackendError, SourceError
# registry_parse, not registry: no requests import where no registry is used (local command)
from koji_containerbuild.registry_parse import MEDIA_V2S2, check_repository, parse_json

# The settings build_arch understands, with the defaults used when a key is missing.
# network/isolation: chroot isolation runs RUN steps without a container runtime and
# shares the host network (see docs/native.md for the trade-offs).
DEFAULT_SETTINGS = {
    'network': 'host',
    'isolation': 'chroot',
    'runtime': None,        # OCI runtime for isolation oci (buildah --runtime); None: default
    'pull': 'missing',
    'storage_root': None,
    'storage_runroot': None,
    'storage_driver': None,
    'keep_image': False,
    'build_host': None,
    'image_dir': None,
    # fence(what, hub=True): raises when this process may no longer act for its task
    # (koji_containerbuild.ownership); called during the build and right before the push.
    'fence': None,
    # hermetic.py: the yum repo directory bind-mounted into RUN steps (network none)
    'hermetic_repo': None,
    # backends/native_cache.ParentCache: the builder's shared parent image cache
    'image_cache': None,
}
HUB_WATCH_INTERVAL = 10.0   # seconds between hub checks of `fence` while buildah runs
# Pull policy names (config) -> buildah 1.28's --pull values.
PULL_VALUES = {'always': 'always', 'missing': 'false', 'never': 'never', 'newer': 'true'}
MAX_FROM = dockerfile_reader.MAX_FROM
MAX_DOCKERFILE = dockerfile_reader.MAX_DOCKERFILE


def settings_with_defaults(settings):
    merged = dict(DEFAULT_SETTINGS)
    merged.update(settings or {})
    if merged['pull'] not in PULL_VALUES:
        raise BackendError('Unknown pull policy %r (use one of %s)'
                           % (merged['pull'], ', '.join(sorted(PULL_VALUES))))
    return merged


def storage_from_settings(settings):
    """The buildah Storage to use: settings['storage'] if given, else the configured paths."""
    if settings.get('storage') is not None:
        return settings['storage']
    return buildah.Storage(settings.get('storage_root'), settings.get('storage_runroot'),
                           settings.get('storage_driver'))


def _ident(identity, key):
    if isinstance(identity, dict):
        return identity[key]
    return getattr(identity, key)


def koji_labels(identity, arch, vcs_url=None, vcs_ref=None, build_host=None, build_date=None):
    """The labels every Koji-built image carries (added with --label)."""
    labels = {
        'com.redhat.component': _ident(identity, 'component'),
        'name': _ident(identity, 'name'),
        'version': _ident(identity, 'version'),
        'release': _ident(identity, 'release'),
        'architecture': arch,
        'build-date': build_date or time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
        'com.redhat.build-host': build_host or socket.gethostname(),
    }
    if vcs_url:
        labels['vcs-url'] = vcs_url
        labels['vcs-type'] = 'git'
    if vcs_ref:
        labels['vcs-ref'] = vcs_ref
    return labels


# ------------------------------------------------------------------ FROM lines

def parse_dockerfile(data, build_args=None):
    """dockerfile.parse() of Dockerfile bytes (at most dockerfile.MAX_FROM FROM lines,
    bounded while parsing)."""
    return dockerfile_reader.parse(data, build_args=build_args)


def from_instructions(text, build_args=None):
    """[{first, last, start, end, image, flags, alias, stage_ref}] for every FROM of
    `text` (bytes or str).

    Images have the global ARGs (and `build_args`) expanded, as docker/buildah do.
    """
    if isinstance(text, str):
        text = text.encode('utf-8', 'surrogateescape')
    return parse_dockerfile(text, build_args).froms


def replace_froms(text, replacements):
    """`text` (bytes or str, as parsed) with the character range of each FROM entry in
    `replacements` ([(entry, new instruction text)]) replaced; every other byte is kept
    as committed (line endings, comments, form feeds, invalid UTF-8)."""
    as_bytes = isinstance(text, bytes)
    decoded = text.decode('utf-8', 'surrogateescape') if as_bytes else text
    pieces = []
    done = 0
    for entry, new in sorted(replacements, key=lambda r: r[0]['start']):
        pieces += [decoded[done:entry['start']], new]
        done = entry['end']
    pieces.append(decoded[done:])
    out = ''.join(pieces)
    return out.encode('utf-8', 'surrogateescape') if as_bytes else out


def from_text(entry, image):
    """One FROM instruction for `entry` with `image`, its flags and alias kept."""
    words = ['FROM'] + entry['flags'] + [image]
    if entry['alias']:
        words += ['AS', entry['alias']]
    return ' '.join(words)


def split_image(ref):
    """(registry host or None, repository, tag or None, digest or None) of an image ref."""
    rest = ref
    digest = None
    if '@' in rest:
        rest, digest = rest.split('@', 1)
    host = None
    first, sep, remainder = rest.partition('/')
    if sep and ('.' in first or ':' in first or first == 'localhost'):
        host, rest = first, remainder
    tag = None
    if ':' in rest.rsplit('/', 1)[-1]:
        rest, tag = rest.rsplit(':', 1)
    return host, rest, tag, digest


def resolve_parents(images, registry, arch):
    """Pin the parent `images` (Dockerfile.from_images()) that live in the build registry.

    Returns {from value: {'pullspec': host/repo@digest, 'tag_pullspec': host/repo:tag,
    'manifest_digest', 'config_digest'}} for the images resolved in `registry`.
    """
    resolved = {}
    for image in images:
        if image == 'scratch':
            continue
        host, repo, tag, digest = split_image(image)
        if host is not None and (registry is None or host != registry.host):
            continue
        if registry is None:
            raise SourceError('FROM %s names no registry: give a registry to build against'
                              % image)
        try:
            check_repository(repo)
        except BackendError:
            raise SourceError('FROM %s: invalid repository name %r' % (image, repo))
        ref = digest or tag or 'latest'
        manifest_digest, manifest = registry.arch_manifest(repo, ref, buildah.goarch(arch))
        resolved[image] = {
            'pullspec': registry.pullspec(repo, manifest_digest),
            'tag_pullspec': registry.pullspec(repo, tag or 'latest') if not digest
            else registry.pullspec(repo, digest),
            'manifest_digest': manifest_digest,
            'config_digest': manifest['config']['digest'],
        }
    return resolved


def pinned_dockerfile(text, froms, resolved):
    """Dockerfile text (bytes or str) with resolved FROM instructions replaced by their
    by-digest pull specs; nothing else changes."""
    replacements = []
    for entry in froms:
        pin = None if entry['stage_ref'] else resolved.get(entry['image'])
        if pin:
            replacements.append((entry, from_text(entry, pin['pullspec'])))
    return replace_froms(text, replacements)


# ------------------------------------------------------------------ the build

def build_arch(srcdir, dockerfile, arch, identity, labels_extra, repo_files, registry,
               repository, unique_tag, workdir, log_line, settings=None, build_args=None):
    """Build, push and describe one arch. Returns the ArchResult dict (JSON-safe).

    registry: a registry.Registry, or None to keep the image as a `dir:` layout in
    settings["image_dir"] or `workdir` (local builds without a registry).
    repository: the registry repository
    (the `name` label, after any namespace rule). labels_extra: extra labels, usually
    koji_labels(...); every label here overrides the Dockerfile's.
    """
    settings = settings_with_defaults(settings)
    extra_args = runtime_args(settings)
    if settings['hermetic_repo']:
        # before anything else: a missing repo never falls back to the network
        extra_args += hermetic.build_args(hermetic.check_repo_dir(settings['hermetic_repo']))
        settings['network'] = 'none'   # also what the buildroot metadata records
        log_line('Hermetic build: RUN steps get no network and the repo %s at %s'
                 % (settings['hermetic_repo'], hermetic.MOUNT_POINT))
    storage = storage_from_settings(settings)
    check_repository(repository)
    arch_tag = '%s-%s' % (unique_tag, arch)
    os.makedirs(workdir, exist_ok=True)
    data = _read_dockerfile(srcdir, dockerfile)
    try:
        data.decode('utf-8')   # the native build takes UTF-8 only
    except UnicodeDecodeError as exc:
        raise SourceError('Cannot read %s: %s' % (dockerfile, exc))
    parsed = parse_dockerfile(data, build_args)
    parents = parsed.from_images()
    if settings['hermetic_repo']:
        hermetic.check_dockerfile(parsed, registry.host if registry is not None else None)
    log_line('Resolving parent images for %s: %s' % (arch, ', '.join(parents)))
    resolved = resolve_parents(parents, registry, arch)
    # bytes in, bytes out: every byte but the FROM instructions' stays as committed
    build_file = safe_files.write_new(os.path.join(workdir, 'Dockerfile.%s' % arch),
                                      pinned_dockerfile(data, parsed.froms, resolved))
    tls_verify = registry.buildah_tls_verify if registry is not None else True
    authfile = registry.credentials_file if registry is not None else None
    cert_dir = registry_cert_dir(registry, workdir)
    started = time.time()
    settings['watch'] = fence_watch(settings.get('fence'))
    pull = PULL_VALUES[settings['pull']]
    with contextlib.ExitStack() as in_use:
        cache = settings.get('image_cache')
        if cache is not None and storage.owned:
            # the builder's parent cache (backends/native_cache.py): the pinned parents
            # are read from its stores, held in use until the push and inspection end
            stores = in_use.enter_context(cache.use(
                cacheable_pins(data, parsed, resolved), log_line,
                fill=settings['pull'] != 'never', tls_verify=tls_verify,
                authfile=authfile, cert_dir=cert_dir, watch=settings['watch']))
            if stores:
                storage = storage.with_image_stores(sorted(set(stores.values())))
                if settings['pull'] != 'never':
                    # the pins were just resolved in the registry (pull = always checked
                    # each tag's digest there); buildah's --pull=always would download
                    # the cached layers again. Anything else is missing from the
                    # task's fresh storage, so it is still pulled.
                    pull = PULL_VALUES['missing']
        image_id = buildah.build_image(
            srcdir, build_file, arch, dict(labels_extra or {}), repo_files, workdir,
            log_line, network=settings['network'], isolation=settings['isolation'],
            pull=pull, storage=storage, tls_verify=tls_verify,
            authfile=authfile, cert_dir=cert_dir, build_args=build_args,
            watch=settings['watch'], extra_args=extra_args)
        try:
            return _describe(image_id, arch, arch_tag, parsed, resolved, registry,
                             repository, workdir, log_line, storage, settings, started,
                             cert_dir)
        finally:
            # An owned (private, temporary) storage is deleted as a whole afterwards.
            if not settings.get('keep_image') and not storage.owned:
                buildah.remove_image(image_id, storage)


def cacheable_pins(text, parsed, resolved):
    """The pinned pull specs the parent cache may serve.

    Left out: an image that is also the base of a non-final stage without instructions
    (`FROM x AS a` then `FROM y`): buildah 1.28 removes such a stage's image at the end
    of the build and fails on one in a read-only store ("identifier is not an image");
    the build pulls those into its own storage as before.
    """
    if isinstance(text, bytes):
        text = text.decode('utf-8', 'surrogateescape')
    lines = text.split('\n')
    froms = parsed.froms
    empty_stage = set()
    for entry, following in zip(froms, froms[1:]):
        body = lines[entry['last'] + 1:following['first']]
        if not any(line.strip() and not line.strip().startswith('#') for line in body):
            empty_stage.add(entry['image'])
    pins = []
    for entry in froms:
        pin = None if entry['stage_ref'] else resolved.get(entry['image'])
        if pin and entry['image'] not in empty_stage and pin['pullspec'] not in pins:
            pins.append(pin['pullspec'])
    return pins


def fence_watch(fence, hub_interval=HUB_WATCH_INTERVAL):
    """A buildah.stream watch from a fence: the process check at every call, the hub
    (task still OPEN) every `hub_interval` s; None without a fence."""
    if fence is None:
        return None
    state = {'next_hub': time.monotonic() + hub_interval}

    def watch():
        hub = time.monotonic() >= state['next_hub']
        if hub:
            state['next_hub'] = time.monotonic() + hub_interval
        try:
            fence('buildah', hub=hub)
        except Exception:
            # a hub hiccup must not end a build: the next check, or the one right before
            # the push, decides. (TaskLost/TaskCanceled are SystemExit: they go through.)
            pass
    return watch


def _read_dockerfile(srcdir, dockerfile):
    """Bytes of the Dockerfile: `dockerfile` relative to the checkout `srcdir` (read
    without following symlinks, inside the checkout), or an absolute path to a file the
    task wrote itself (the koji_parent_build rewrite)."""
    if os.path.isabs(dockerfile):
        return source.read_file(dockerfile, dockerfile_reader.MAX_DOCKERFILE, 'Dockerfile')
    return safe_files.read_in_tree(srcdir, dockerfile, dockerfile_reader.MAX_DOCKERFILE,
                                   dockerfile)


def runtime_args(settings):
    """buildah build arguments naming the OCI runtime (isolation oci only)."""
    runtime = settings.get('runtime')
    if not runtime or settings.get('isolation') != 'oci':
        return []
    return ['--runtime', runtime]


def registry_cert_dir(registry, workdir):
    """A buildah --cert-dir holding the registry's CA bundle as ca.crt, or None.

    buildah reads CAs from a directory (*.crt), not from a bundle file.
    """
    if registry is None or not registry.ca_cert:
        return None
    cert_dir = os.path.join(workdir, 'registry-certs')
    os.makedirs(cert_dir, exist_ok=True)
    try:
        shutil.copyfile(registry.ca_cert, os.path.join(cert_dir, 'ca.crt'))
    except OSError as exc:
        raise BackendError('Cannot read the registry CA bundle %s: %s'
                           % (registry.ca_cert, exc.strerror))
    return cert_dir


def _describe(image_id, arch, arch_tag, parsed, resolved, registry, repository,
              workdir, log_line, storage, settings, started, cert_dir=None):
    if registry is not None:
        dest = 'docker://%s' % registry.pullspec(repository, arch_tag)
    else:
        image_dir = settings.get('image_dir') or workdir
        os.makedirs(image_dir, exist_ok=True)
        dest = 'dir:%s' % os.path.join(image_dir, 'image-%s' % arch)
        if os.path.exists(dest[len('dir:'):]):
            shutil.rmtree(dest[len('dir:'):])
    host = settings.get('build_host') or socket.gethostname()
    # What needs only the image in local storage (RPMs through a mount, the parent's
    # id, the buildroot's tool versions) runs while the image is pushed.
    with ThreadPoolExecutor(max_workers=3) as pool:
        local = pool.submit(_local_facts, image_id, parsed, resolved, storage)
        buildroot = pool.submit(buildroot_info, arch, host, settings)
        if settings.get('fence') is not None:
            # the last moment a cancelled or orphaned task can keep the image private
            settings['fence']('the push of %s' % arch_tag)
        log_line('Pushing %s to %s' % (image_id, dest))
        manifest_digest = buildah.push_image(
            image_id, dest, workdir, log_line, storage=storage,
            tls_verify=registry.buildah_tls_verify if registry is not None else True,
            authfile=registry.credentials_file if registry is not None else None,
            cert_dir=cert_dir, watch=settings.get('watch'))
        manifest_bytes, config_bytes = _read_pushed(registry, repository, manifest_digest,
                                                    dest, image_id, pool)
        components, licenses, parent_id = local.result()
        buildroot = buildroot.result()
    manifest = parse_json(manifest_bytes, 'pushed manifest', dict)
    pushed_config = manifest.get('config')
    if not isinstance(pushed_config, dict) or pushed_config.get('digest') != image_id:
        raise BackendError('Pushed image config %s differs from the built image %s'
                           % (str((pushed_config or {}).get('digest') if isinstance(
                               pushed_config, dict) else pushed_config)[:80], image_id))
    config = parse_json(config_bytes, 'image config', dict)
    config.pop('container_config', None)
    rootfs = config.get('rootfs')
    diff_ids = rootfs.get('diff_ids') if isinstance(rootfs, dict) else None
    diff_ids = [d for d in diff_ids if isinstance(d, str)] if isinstance(diff_ids, list) else []
    sizes = buildah.layer_sizes(set(diff_ids), storage)
    missing = [d for d in diff_ids if d not in sizes]
    if missing:
        raise BackendError('Cannot find the size of layers %s in buildah storage'
                           % ', '.join(missing))
    repositories = []
    if registry is not None:
        repositories = [registry.pullspec(repository, arch_tag),
                        registry.pullspec(repository, manifest_digest)]
    log_line('Built %s for %s: %d RPMs, manifest %s' % (image_id, arch, len(components),
                                                       manifest_digest))
    return {
        'arch': arch,
        'goarch': buildah.goarch(arch),
        'image_id': image_id,
        'config_digest': image_id,
        'manifest_digest': manifest_digest,
        'manifest_media_type': manifest.get('mediaType') or MEDIA_V2S2,
        'manifest_size': len(manifest_bytes),
        'config': config,
        'layer_sizes': [{'diff_id': d, 'size': sizes[d]} for d in diff_ids],
        'components': components,
        'rpm_licenses': licenses,
        'registry': registry.host if registry is not None else None,
        'repository': repository,
        'repositories': repositories,
        'tags': [arch_tag],
        'image_dir': None if registry is not None else dest[len('dir:'):],
        'parent_id': parent_id,
        'parent_images': parsed.from_images(),
        'parent_pullspecs': dict((k, v['tag_pullspec']) for k, v in resolved.items()),
        'parent_pinned': dict((k, v['pullspec']) for k, v in resolved.items()),
        'build_host': host,
        'buildroot': buildroot,
        'log_file': '%s.log' % arch,
        'build_seconds': round(time.time() - started, 3),
        'started': int(started),
        'finished': int(time.time()),
    }


def _local_facts(image_id, parsed, resolved, storage):
    """(RPM components, their licenses, parent config digest) from the local image."""
    # A private storage is deleted as a whole afterwards: no need to remove the
    # inspection container one by one.
    with buildah.MountedImage(image_id, storage, remove=not storage.owned) as rootfs:
        components, licenses = rpmdb.rpm_components_and_licenses(rootfs)
    base = parsed.base_image
    if base == 'scratch':
        parent_id = None
    elif base in resolved:
        parent_id = resolved[base]['config_digest']
    else:
        parent_id = buildah.image_id_of(base, storage)
    return components, licenses, parent_id


def _read_pushed(registry, repository, manifest_digest, dest, config_digest, pool):
    """(manifest bytes, config bytes) as stored at the push destination.

    The config is fetched by the built image's id (the caller checks that the manifest
    names it), concurrently with the manifest.
    """
    if registry is not None:
        config = pool.submit(registry.get_blob, repository, config_digest)
        _media, manifest_bytes, _digest = registry.get_manifest(repository, manifest_digest)
        return manifest_bytes, config.result()
    path = dest[len('dir:'):]
    with open(os.path.join(path, 'manifest.json'), 'rb') as f:
        manifest_bytes = f.read()
    config_digest = json.loads(manifest_bytes)['config']['digest']
    with open(os.path.join(path, config_digest.split(':', 1)[1]), 'rb') as f:
        return manifest_bytes, f.read()


def buildroot_info(arch, host, settings):
    """Buildroot facts (without the content generator, which cg.py adds)."""
    return {
        'id': '%s-%s' % (arch, host),
        'host': {'os': cg.host_os(), 'arch': arch},
        'container': cg.buildroot_container(arch, settings),
        'extra': cg.buildroot_extra(settings),
        'tools': [
            {'name': 'buildah', 'version': buildah.version(
                (settings.get('storage') or buildah.Storage()).buildah)},
            {'name': 'koji-containerbuild', 'version': koji_containerbuild.__version__},
        ],
        'components': rpmdb.host_components(),
    }
