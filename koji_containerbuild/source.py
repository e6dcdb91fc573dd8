"""Source access and image identity for container builds (shared by both backends).

* make_scm, assert_scm_allowed, check_ref, check_module (the SCM URL rules) and
  fetch_source / fetch_full_tree (fetch one commit: only Dockerfile, additional-tags and
  container.yaml for the pre-build checks, or the whole tree for a native build
  context) live in source_fetch.py and stay importable from here.
* read_labels, read_container_yaml, read_additional_tags: read those files as hostile input.
* image_identity, check_tag_lengths, split_valid_tags: the naming rules (NVR, tags).

Every failure is an errors.SourceError (or ConfigError for builder set-up problems) whose
message names the problem and never contains credentials from the URL.
"""

import errno
import io
import os
import re
import stat

from koji_containerbuild import dockerfile, options as options_model
from koji_containerbuild.errors import ConfigError, SourceError

DOCKERFILE = 'Dockerfile'
ADDITIONAL_TAGS = 'additional-tags'
CONTAINER_YAML = 'container.yaml'
# What the pre-build checks read; nothing else is fetched.
CHECK_FILES = (DOCKERFILE, ADDITIONAL_TAGS, CONTAINER_YAML)
MAX_SMALL_FILE = 1024 * 1024          # additional-tags
# container.yaml: PyYAML's pure-Python loader takes seconds on 1 MiB (its C loader
# crashes the process on deep nesting, so it is not used); real files are a few KiB.
MAX_CONTAINER_YAML = 64 * 1024
MAX_YAML_FLOW_DEPTH = 100
_FLOW_BRACKET = re.compile(rb'[\[\]{}]')
MAX_TAG = 128                          # registry tag limit
MAX_ADDITIONAL_TAGS = 64               # each one is a registry PUT per build
CHECKOUT_DIR = 'source'

# Labels in order of preference (first found wins).
LABELS = (
    ('component', ('com.redhat.component', 'BZComponent')),
    ('version', ('version', 'Version')),
    ('release', ('release', 'Release')),
    ('name', ('name', 'Name')),
)
REQUIRED = ('component', 'version', 'name')   # release: optional (auto-release)

_COMPONENT_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.+-]*\Z', re.ASCII)
_VERSION_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.]*\Z', re.ASCII)
_REPO_PART = r'[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
_NAME_RE = re.compile(r'^%s(?:/%s)*\Z' % (_REPO_PART, _REPO_PART), re.ASCII)
_TAG_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.]{0,127}\Z', re.ASCII)
MAX_NAME = 255


class SourceCheckout(object):
    """One fetched commit.

    srcdir: directory holding the Dockerfile (the `?module` subdirectory if any);
    commit: full sha; url: the SCM URL as given; source: `<url without #ref>#<sha>`
    with credentials redacted; dockerfile_path: path or None (flatpak without one);
    repodir: the git work tree; git_uri: what git fetched from; complete: whole tree?
    """

    def __init__(self, srcdir, commit, url, source, dockerfile_path, repodir, git_uri,
                 module, complete):
        self.srcdir = srcdir
        self.commit = commit
        self.url = url
        self.source = source
        self.dockerfile_path = dockerfile_path
        self.repodir = repodir
        self.git_uri = git_uri
        self.module = module
        self.complete = complete

    def __repr__(self):
        return 'SourceCheckout(%r, commit=%r)' % (self.source, self.commit)


class ImageIdentity(object):
    """component/name/version/release of an image (a flatpak's may be None).

    nvr is None until component, version and release are all known.
    """

    def __init__(self, component, name, version, release):
        self.component = component
        self.name = name
        self.version = version
        self.release = release

    @property
    def nvr(self):
        if not (self.component and self.version and self.release):
            return None
        return '%s-%s-%s' % (self.component, self.version, self.release)

    def to_dict(self):
        return {'component': self.component, 'name': self.name, 'version': self.version,
                'release': self.release, 'nvr': self.nvr}

    def __eq__(self, other):
        return isinstance(other, ImageIdentity) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return 'ImageIdentity(%r)' % (self.to_dict(),)


# ------------------------------------------------------------------ fetching

# The SCM rules and the git fetching live in source_fetch (which imports this module's
# SourceCheckout and file checks); these names stay importable from here, looked up on
# first use to avoid the import cycle.
_FETCH_NAMES = ('make_scm', 'assert_scm_allowed', 'check_ref', 'check_module', '_secrets',
                '_git_uri', 'fetch_source', 'fetch_full_tree', 'BRANCH_DEPTHS',
                '_check_branch')


def __getattr__(name):
    if name in _FETCH_NAMES:
        from koji_containerbuild import source_fetch
        return getattr(source_fetch, name)
    raise AttributeError('module %r has no attribute %r' % (__name__, name))


# ------------------------------------------------------------------ reading files

def _inside(root, relpath, what):
    """root/relpath, refusing anything that resolves outside root (symlinks)."""
    path = os.path.join(root, relpath) if relpath else root
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise SourceError('%s leaves the repository (symbolic link)' % what)
    return path


def _regular_file(directory, name):
    """Path of `name` in `directory` if it is a regular file; None if absent."""
    path = os.path.join(directory, name)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SourceError('Cannot read %s: %s' % (name, exc.strerror))
    if stat.S_ISLNK(info.st_mode):
        raise SourceError('%s is a symbolic link; it must be a regular file' % name)
    if not stat.S_ISREG(info.st_mode):
        raise SourceError('%s is not a regular file' % name)
    return path


def read_file(path, limit, what=None):
    """Bytes of a regular file (not following symlinks), at most `limit` bytes."""
    what = what or os.path.basename(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SourceError('%s is a symbolic link; it must be a regular file' % what)
        raise SourceError('Cannot read %s: %s' % (what, exc.strerror))
    with os.fdopen(fd, 'rb') as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise SourceError('%s is not a regular file' % what)
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise SourceError('%s is larger than %d bytes' % (what, limit))
    return data


def read_labels(dockerfile_path, overrides=None, build_args=None):
    """Labels of the final stage after ENV/ARG expansion, then `overrides` applied on top.

    build_args: values for ARG instructions (like `--build-arg`).
    """
    data = read_file(dockerfile_path, dockerfile.MAX_DOCKERFILE, 'Dockerfile')
    labels = dockerfile.parse(data, build_args=build_args).labels
    for key, value in (overrides or {}).items():
        if value is not None:
            labels[key] = value
    return labels


def read_container_yaml(srcdir):
    """container.yaml as a dict ({} when absent)."""
    path = _regular_file(srcdir, CONTAINER_YAML)
    if path is None:
        return {}
    data = read_file(path, MAX_CONTAINER_YAML, CONTAINER_YAML)
    try:
        import yaml
    except ImportError:
        raise ConfigError('PyYAML is not installed on this builder; it is needed to read '
                          'container.yaml')
    if _flow_depth(data) > MAX_YAML_FLOW_DEPTH:
        # the parser would recurse that deep before failing (slowly)
        raise SourceError('container.yaml is not valid YAML: [ and { nested deeper than %d '
                          'levels' % MAX_YAML_FLOW_DEPTH)
    try:
        value = yaml.safe_load(data)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise SourceError('container.yaml is not valid YAML: %s' % _first_line(exc))
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SourceError('container.yaml must hold a mapping at the top level')
    return value


def _flow_depth(data):
    """Largest count of [ and { not yet closed, anywhere (quotes not considered: an
    over-estimate only for strings full of unbalanced brackets)."""
    depth = deepest = 0
    for match in _FLOW_BRACKET.finditer(data):
        depth = max(0, depth + (1 if match.group() in (b'[', b'{') else -1))
        deepest = max(deepest, depth)
    return deepest


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def read_additional_tags(srcdir, container_yaml=None):
    """Extra tags: container.yaml `tags:` if it has any, else the additional-tags file.

    Returns the tags in file order without duplicates, at most MAX_ADDITIONAL_TAGS
    (length and characters are checked by check_tag_lengths and split_valid_tags).
    """
    if container_yaml is None:
        container_yaml = read_container_yaml(srcdir)
    yaml_tags = container_yaml.get('tags') if isinstance(container_yaml, dict) else None
    if yaml_tags:
        if not isinstance(yaml_tags, list) or not all(isinstance(t, str) for t in yaml_tags):
            raise SourceError('container.yaml "tags" must be a list of strings')
        raw = yaml_tags
    else:
        path = _regular_file(srcdir, ADDITIONAL_TAGS)
        if path is None:
            return []
        data = read_file(path, MAX_SMALL_FILE, ADDITIONAL_TAGS)
        try:
            # lines end at \n only (as the OSBS tooling reads them); a tag holding another
            # separator (\x0c, \x85, \u2028...) is invalid and dropped by split_valid_tags
            # (one line at a time: no list of every line of a 1 MiB file)
            raw = io.StringIO(data.decode('utf-8'), newline='\n')
        except UnicodeDecodeError:
            raise SourceError('%s is not valid UTF-8' % ADDITIONAL_TAGS)
    # dict: insertion-ordered and linear (a list membership test was quadratic); stops
    # at the first tag over the limit
    seen = {}
    for item in raw:
        tag = item.strip()
        if tag and tag not in seen:
            seen[tag] = None
            if len(seen) > MAX_ADDITIONAL_TAGS:
                raise SourceError('More than %d additional tags (%s); at most %d are allowed'
                                  % (MAX_ADDITIONAL_TAGS, 'container.yaml "tags"' if yaml_tags
                                     else ADDITIONAL_TAGS, MAX_ADDITIONAL_TAGS))
    tags = list(seen)
    return tags


def check_tag_lengths(version, release, tags):
    """Reject `<version>-<release>` or any additional tag over the 128-character tag limit."""
    if version and not release and len(version) + 2 > MAX_TAG:
        raise SourceError('The version %r is too long for an image tag "<version>-<release>" '
                          '(at most %d characters)' % (version[:40] + '...', MAX_TAG))
    if version and release:
        primary = '%s-%s' % (version, release)
        if len(primary) > MAX_TAG:
            raise SourceError('The version-release %r is %d characters long; image tags may '
                              'have at most %d' % (primary[:40] + '...', len(primary), MAX_TAG))
    too_long = [t for t in tags if len(t) > MAX_TAG]
    if too_long:
        raise SourceError('Additional tag%s longer than %d characters: %s'
                          % ('s' if len(too_long) > 1 else '', MAX_TAG,
                             ', '.join(repr(t[:40] + '...') for t in too_long[:5])))


def split_valid_tags(tags):
    """(valid, invalid): tags a registry accepts without '-' (as OSBS, invalid are dropped)."""
    valid = [t for t in tags if _TAG_RE.match(t)]
    invalid = [t for t in tags if not _TAG_RE.match(t)]
    return valid, invalid


# ------------------------------------------------------------------ identity

def _label(labels, names):
    for name in names:
        value = labels.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def image_identity(labels, release_override=None, flatpak=False, container_yaml=None):
    """ImageIdentity from Dockerfile labels (or container.yaml for flatpaks).

    Missing required labels give one SourceError listing each with its alternatives;
    values are checked against Koji's NVR rules and the registry naming rules.
    Flatpak builds skip the label requirement: whatever container.yaml (or a Dockerfile,
    if any) does not tell stays None, and nvr is None; plan.prepare_binary refuses a
    non-scratch flatpak whose component is unknown (the package list needs it).
    """
    labels = labels or {}
    found = dict((key, _label(labels, names)) for key, names in LABELS)
    if flatpak:
        found = _flatpak_identity(found, container_yaml or {})
    else:
        missing = [key for key in REQUIRED if not found[key]]
        if missing:
            names = dict(LABELS)
            raise SourceError('Required Dockerfile label%s missing: %s' % (
                's are' if len(missing) > 1 else ' is',
                '; '.join('%s (label %s)' % (key, ' or '.join(repr(n) for n in names[key]))
                          for key in missing)))
    if release_override:
        found['release'] = release_override
    _check_identity(found)
    return ImageIdentity(found['component'], found['name'], found['version'],
                         found['release'])


def _yaml_mapping(container_yaml, key):
    value = container_yaml.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SourceError('%s: "%s" must be a mapping' % (CONTAINER_YAML, key))
    return value


def _yaml_text(mapping, section, key):
    value = mapping.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SourceError('%s: "%s.%s" must be a string' % (CONTAINER_YAML, section, key))
    return value.strip() or None


def _first_module(compose):
    """(name, stream) of the first `compose: modules:` entry (NAME:STREAM[:...][/PROFILE])."""
    modules = compose.get('modules')
    if modules is None:
        return None, None
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise SourceError('%s: "compose.modules" must be a list of "name:stream" strings'
                          % CONTAINER_YAML)
    if not modules:
        return None, None
    parts = modules[0].split('/', 1)[0].split(':')
    name = parts[0].strip() or None
    stream = parts[1].strip() if len(parts) > 1 and parts[1].strip() else None
    return name, stream


def _flatpak_identity(found, container_yaml):
    """Flatpak: container.yaml `flatpak: {component, name}`, else the first module.

    Labels (of a Dockerfile, when the repository has one) are the defaults; nothing is
    required here (OSBS generates the flatpak's Dockerfile and labels itself).
    """
    if not isinstance(container_yaml, dict):
        container_yaml = {}
    flatpak = _yaml_mapping(container_yaml, 'flatpak')
    module_name, stream = _first_module(_yaml_mapping(container_yaml, 'compose'))
    result = dict(found)
    for key in ('component', 'name'):
        value = _yaml_text(flatpak, 'flatpak', key)
        if value:
            result[key] = value
        elif not result[key]:
            result[key] = module_name
    if not result['name']:
        result['name'] = result['component']
    if not result['version'] and stream:
        result['version'] = stream.replace('-', '_')
    return result


def _check_identity(found):
    """Check the values that are known (a flatpak's may be None)."""
    component, name = found['component'], found['name']
    version, release = found['version'], found['release']
    if component is not None and (len(component) > MAX_NAME
                                  or not _COMPONENT_RE.match(component)):
        raise SourceError('Invalid component %r: use letters, digits and "_.+-" (at most %d)'
                          % (component[:80], MAX_NAME))
    # koji.check_NVR's rule (no "-" in version or release), without importing koji (0.1 s
    # of the local command's start-up)
    for key, value in (('version', version), ('release', release)):
        if value is not None and '-' in value:
            raise SourceError('Invalid %s %r: the "-" character is not allowed in the %s'
                              % (key, value[:80], key))
    if version is not None and not _VERSION_RE.match(version):
        raise SourceError('Invalid version %r: use letters, digits, "_" and "." (it is part '
                          'of an image tag)' % (version[:80],))
    if release is not None and not re.match(options_model.RELEASE_PATTERN, release):
        raise SourceError('Invalid release %r: it must start with a digit and be '
                          'alphanumeric groups joined by "." or "_"' % (release[:80],))
    if name is not None and (len(name) > MAX_NAME or not _NAME_RE.match(name)):
        raise SourceError('Invalid name %r: a registry repository name (lowercase letters, '
                          'digits, separators "._-", "/" between parts)' % (name[:80],))
    if name is not None and '/' in name and '.' in name.split('/', 1)[0]:
        raise SourceError('Invalid name %r: the first part must not contain "." (it would '
                          'be read as a registry host)' % (name[:80],))
