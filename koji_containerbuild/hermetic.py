"""Hermetic native builds: RUN steps see one yum repository and no network.

A hermetic build runs its RUN steps with `--network none`; the build tag's Koji repo
for the arch (on the Koji volume, `<topdir>/repos/<tag>/<repo id>/<arch>`; for the
local command a directory given by the user) is bind-mounted read-only at MOUNT_POINT,
and the only .repo file the RUN steps see points at it with a file:// URL. The parent
images are still pulled by buildah itself, outside RUN, pinned by digest.

One place for the rules: whether a build is hermetic (builder mode + container.yaml),
which request options it refuses, where the repo lives, what the .repo file says.
"""

import os
import re

from koji_containerbuild import safe_files
from koji_containerbuild.errors import BackendError, OptionError, SourceError

MODES = ('off', 'allow', 'force')
# Where RUN steps find the repo (a path no base image uses for anything else).
MOUNT_POINT = '/var/cache/koji-containerbuild/repo'
# Request options that make RUN steps (or buildah) reach the network.
NETWORK_OPTIONS = ('yum_repourls',)
YAML_KEY = 'hermetic'


def wanted(mode, container_yaml):
    """Whether a build is hermetic: `mode` is the builder's [native] hermetic setting,
    `container_yaml` the image's container.yaml (its `hermetic: true|false`)."""
    asked = (container_yaml or {}).get(YAML_KEY) if isinstance(container_yaml, dict) \
        else None
    if asked is not None and not isinstance(asked, bool):
        raise SourceError('container.yaml "hermetic" must be true or false, got %r'
                          % (str(asked)[:80],))
    if mode == 'force':
        return True
    if mode == 'allow':
        return bool(asked)
    if asked:
        raise OptionError('container.yaml asks for a hermetic build but this build system '
                          'does not offer them ([native] hermetic = off)')
    return False


def refuse_network_sources(opts):
    """OptionError for each request option a hermetic build cannot honour."""
    for name in NETWORK_OPTIONS:
        if (opts or {}).get(name):
            raise OptionError('Option %r is refused in a hermetic build: RUN steps see only '
                              'the build tag\'s repo and no network' % name)


def check_dockerfile(parsed, registry_host):
    """SourceError for what buildah itself would fetch unpinned in a hermetic build:
    an ADD of a URL, a FROM image outside the build registry without @digest (images
    in the build registry are pinned by digest before the build), a --from= image
    without @digest, RUN --network."""
    from koji_containerbuild.native_build import split_image

    if parsed.remote_adds:
        raise SourceError('Dockerfile line %d: ADD of a URL is refused in a hermetic build '
                          '(commit the file, or install it from the build tag\'s repo)'
                          % parsed.remote_adds[0])
    if parsed.run_networks:
        raise SourceError('Dockerfile line %d: RUN --network is refused in a hermetic build'
                          % parsed.run_networks[0])
    for image in parsed.from_images():
        host, _repo, _tag, digest = split_image(image)
        if image != 'scratch' and host is not None and host != registry_host \
                and not digest:
            raise SourceError('FROM %s: a hermetic build pulls parents from other '
                              'registries only by digest (FROM image@sha256:...)' % image)
    stages = set(name.lower() for name in parsed.stages if name)
    for lineno, ref in parsed.copy_froms:
        # a stage (by name or index) is built here; anything else is an image buildah
        # pulls as written, so only by digest
        if ref.lower() in stages or ref.isdigit() or '@sha256:' in ref:
            continue
        raise SourceError('Dockerfile line %d: --from=%s names an image, which a hermetic '
                          'build takes only by digest (image@sha256:...)' % (lineno, ref))


def koji_repo_dir(topdir, build_tag, repo_id, arch):
    """The build tag's repo for `arch` on the Koji volume (kojid's options.topdir)."""
    for part in (str(build_tag), str(repo_id), str(arch)):
        if not re.match(r'^[\w.+-]+\Z', part) or part in ('.', '..'):
            raise OptionError('Invalid repo path component %r' % part)
    return os.path.join(topdir or '/mnt/koji', 'repos', str(build_tag), str(repo_id),
                        str(arch))


def check_repo_dir(path):
    """A hermetic build fails at once, naming `path`, when the repo is not there (the
    Koji volume is not mounted, or the repo was removed): never a fall back to the
    network."""
    if not os.path.isabs(path):
        raise OptionError('Hermetic repo directory must be an absolute path, got %r' % path)
    if ':' in path or ',' in path:
        # buildah --volume splits on them
        raise OptionError('Hermetic repo directory %r: ":" and "," are not allowed' % path)
    if not os.path.isdir(path):
        raise BackendError('Hermetic build: repo directory %s does not exist on this '
                           'builder (is the Koji volume mounted?)' % path)
    if not os.path.isfile(os.path.join(path, 'repodata', 'repomd.xml')):
        raise BackendError('Hermetic build: %s holds no repodata/repomd.xml (not a yum '
                           'repository)' % path)
    return path


def repo_file(path, name, description):
    """Write the one .repo file RUN steps see (baseurl file://MOUNT_POINT); return it."""
    name = re.sub(r'[^\w.-]', '_', name)
    description = re.sub(r'[^\w .()/:+-]', '_', description)
    return safe_files.write_new(
        path, '[%s]\nname=%s\nbaseurl=file://%s\nenabled=1\ngpgcheck=0\n'
        'skip_if_unavailable=False\n' % (name, description, MOUNT_POINT))


def build_args(repo_dir):
    """buildah build arguments of a hermetic build: the repo mount (read-only; no
    SELinux relabel: the Koji volume is shared) and no network."""
    return ['--volume', '%s:%s:ro' % (repo_dir, MOUNT_POINT)]
