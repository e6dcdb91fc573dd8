"""The `[native]` section of the builder plugin config (backend = native).

Read from the ConfigParser that `config.load_builder_config` exposes as `.parser`.
Every key has a safe production default except `registry`, which a native builder
cannot work without. Bad values raise errors.ConfigError naming the key.
"""

import os
import re
import shutil
import string
from urllib.parse import urlsplit

from koji_containerbuild import buildah, hermetic, netrules, registry as registry_mod
from koji_containerbuild.backends import native_cache, native_storage
from koji_containerbuild.errors import BackendError, ConfigError

SECTION = 'native'

NETWORKS = ('host', 'none', 'private')
ISOLATIONS = ('oci', 'chroot', 'rootless')
PULL_POLICIES = ('always', 'missing', 'never', 'newer')
# Registry repository path components (distribution spec), joined by '/'.
_REPO_PART = r'[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
REPOSITORY_RE = re.compile(r'^%s(?:/%s)*\Z' % (_REPO_PART, _REPO_PART))
TAG_RE = re.compile(r'^[\w][\w.-]{0,127}\Z')
# An OCI runtime: a plain program name looked up on PATH, or an absolute path.
RUNTIME_RE = re.compile(r'^(?:[A-Za-z0-9][\w.+-]{0,63}|/[\w./+-]{1,255})\Z')
UNIQUE_TAG_FIELDS = frozenset(('target', 'random', 'timestamp', 'task_id'))

# key: (default, kind, help). kind: 'text', 'bool', 'float', 'path', 'choice:<a|b>'.
KEYS = (
    ('registry', '', 'text',
     'Registry base URL images are pushed to, e.g. https://registry.example.com (required)'),
    ('registry_tls_verify', 'true', 'bool',
     'Verify the registry TLS certificate of an https:// registry (never turn off in '
     'production); an http:// registry is spoken to in plain HTTP whatever this says'),
    ('registry_allow_insecure', 'false', 'bool',
     'Allow a plain-HTTP (http://) or unverified-TLS registry on a host that is not '
     'loopback (127.0.0.0/8, ::1, localhost); credentials and images then travel '
     'unprotected, so only for closed test networks'),
    ('registry_ca_cert', '', 'path', 'CA bundle for the registry certificate (empty: system CAs)'),
    ('registry_credentials', '', 'path',
     'Docker auth JSON file ({"auths": {...}}) for pushing; keep it mode 0600, owner kojid'),
    ('registry_namespace', '', 'text',
     'Organization prepended to every repository: name label "a/b" becomes "<ns>/a-b"'),
    ('repository_binding', 'none', 'choice',
     'Bind registry repositories to Koji components: none (any name label; tags are still '
     'guarded by the com.redhat.component label of the image they hold) or component '
     '(the last part of the name label must be the component, or the component without '
     'its -container suffix)'),
    ('content_generator', 'koji-containerbuild', 'text',
     'Content generator name used for CGInitBuild/CGImport (grant it to every builder user)'),
    ('channel', 'container-native', 'text',
     'Koji channel of the per-arch createContainer subtasks (hosts with buildah, per arch; '
     'not the parent\'s container-binary, so OSBS builders never get them)'),
    ('network', 'private', 'choice', 'buildah --network for RUN steps: private (own network '
     'namespace: builds reach repos but not the builder\'s loopback services), host or none'),
    ('hermetic', 'off', 'choice', 'Hermetic builds (RUN steps get no network and only the '
     'build tag\'s repo, bind-mounted read-only from <topdir>/repos/<tag>/<repo id>/<arch> '
     'on the Koji volume; yum_repourls refused): off (never; a container.yaml asking for '
     'one is refused), allow (when container.yaml says hermetic: true) or force (every '
     'build)'),
    ('isolation', 'oci', 'choice', 'buildah --isolation for RUN steps: oci, chroot or rootless'),
    ('runtime', '', 'text', 'OCI runtime for isolation = oci (buildah --runtime): a name on '
     'PATH such as runc or crun, or an absolute path (empty: buildah\'s default, usually '
     'crun; use runc on hosts with hybrid cgroups, where crun cannot start containers)'),
    ('pull', 'always', 'choice', 'Base image pull policy: always, missing, never or newer'),
    ('storage_root', '', 'path', 'Folder under which each createContainer task gets its own '
     'buildah storage (<storage_root>/task-<id>/<pid>-<start>/), removed when the task ends '
     '(empty: containerbuild-storage next to kojid\'s task work directories)'),
    ('image_cache', '', 'text', 'Folder of this builder\'s parent image cache: each pinned '
     'parent (FROM) is pulled once into it and used read-only by every task that needs it '
     '(empty: image-cache beside the task-<id> storage folders, see storage_root; off: '
     'no cache, each '
     'task pulls its parents into its own storage)'),
    ('image_cache_size', '20G', 'text', 'Size bound of the parent image cache (K, M, G, '
     'T suffixes): least recently used parents are removed beyond it, never one a '
     'running task uses'),
    ('storage_runroot', '', 'path', 'Ignored: each task keeps its runroot inside its own '
     'storage (accepted so that older configs still load)'),
    ('storage_driver', '', 'text', 'buildah --storage-driver: overlay or vfs (empty: default)'),
    ('unique_tag_format', '{target}-{random}-{timestamp}', 'text',
     'Unique tag; fields {target} {random} (5 digits) {timestamp} (UTC) {task_id}'),
    ('poll_interval', '30', 'float',
     'Seconds between subtask state polls (kojid also wakes the task when a subtask ends)'),
    ('yum_repourl_timeout', '60', 'float', 'Seconds to fetch each yum_repourls .repo file '
     '(the whole fetch, redirects included)'),
    ('yum_repourl_allowed_networks', '', 'text', 'Networks (CIDR, comma separated) from which '
     'yum_repourls may be fetched although they are loopback, link-local or private, e.g. '
     'an internal mirror 10.20.0.0/16 (empty: public addresses only)'),
)
CHOICES = {'network': NETWORKS, 'hermetic': hermetic.MODES, 'isolation': ISOLATIONS, 'pull': PULL_POLICIES,
           'repository_binding': ('none', 'component')}
DEFAULTS = dict((k, d) for k, d, _kind, _help in KEYS)


class NativeConfig(object):
    """Parsed [native] settings; attribute per key (see KEYS)."""

    def __init__(self, values):
        for key, value in values.items():
            setattr(self, key, value)

    @property
    def registry_host(self):
        """host[:port] used in pull specs."""
        return urlsplit(self.registry).netloc

    def build_settings(self, storage):
        """Settings handed to the image pipeline (native_build.build_arch); `storage`
        is the task's own buildah.Storage (task_storage())."""
        return {
            'network': self.network,
            'isolation': self.isolation,
            'pull': self.pull,
            'runtime': self.runtime or None,
            'storage': storage,
        }

    def image_cache(self, task_id, workdir):
        """The builder's native_cache.ParentCache, or None when image_cache = off."""
        if self.image_cache_dir == 'off':
            return None
        root = self.image_cache_dir or os.path.join(
            native_storage.base_dir(self.storage_root, task_id, workdir),
            native_storage.CACHE_DIR)
        try:
            return native_cache.ParentCache(root, self.image_cache_bytes,
                                            self.storage_driver or 'overlay')
        except OSError as exc:
            raise BackendError('[native] image_cache %s: cannot create it: %s'
                               % (root, exc.strerror))

    def task_storage_parent(self, task_id, workdir):
        """This process's folder for one task's buildah storage (native_storage)."""
        return native_storage.attempt_dir(self.storage_root, task_id, workdir)

    def task_storage(self, task_id, workdir):
        """A fresh private buildah storage for one createContainer task.

        Why private: a shared storage can only be cleaned by diffing containers, which
        also removes other tasks' containers on a busy builder, and pulled parents pile
        up. Folders of processes that died without cleaning up are removed first; an
        orphan's folder is left to the orphan (native_storage). Call
        destroy_task_storage(task_storage_parent(...)) in a finally.
        """
        parent = self.task_storage_parent(task_id, workdir)
        native_storage.sweep_dead(native_storage.base_dir(self.storage_root, task_id,
                                                          workdir))
        destroy_task_storage(parent)
        for _try in range(3):
            try:
                os.makedirs(parent)
                break
            except FileNotFoundError:   # a sweep removed the empty task folder meanwhile
                continue
        return buildah.Storage.temporary(parent, driver=self.storage_driver or 'overlay')

    def registry_kwargs(self):
        """Keyword arguments for registry.Registry (credentials stay a file path)."""
        return {'tls_verify': self.registry_tls_verify,
                'ca_cert': self.registry_ca_cert or None,
                'credentials_file': self.registry_credentials or None,
                'allow_insecure': self.registry_allow_insecure,
                'insecure_option': '[native] registry_allow_insecure = true'}

    def registry_client(self):
        """A registry.Registry for the configured registry."""
        return registry_mod.Registry(self.registry, **self.registry_kwargs())

    def check_runtime(self):
        """The configured OCI runtime exists on this builder (BackendError otherwise):
        found before the checkout, not when the first RUN step starts."""
        if not self.runtime or self.isolation != 'oci':
            return
        found = (os.access(self.runtime, os.X_OK) if os.path.isabs(self.runtime)
                 else shutil.which(self.runtime))
        if not found:
            raise BackendError('[native] runtime %s: no such executable on this builder '
                               '(install it, e.g. the runc package, or change runtime)'
                               % self.runtime)

    def check_registry(self):
        """Preflight before anything is reserved or built: the registry answers with the
        configured scheme, TLS settings and credentials (BackendError in seconds)."""
        self.registry_client().check_access()

    def __repr__(self):
        # Only paths and names here, but keep the repr short and credential-free anyway.
        return '<NativeConfig registry=%s cg=%s>' % (self.registry, self.content_generator)


def destroy_task_storage(parent):
    """Remove a task's storage folder: unmount what a killed build left, delete it."""
    native_storage.destroy(parent)


def _bool(key, text):
    value = text.strip().lower()
    if value in ('1', 'yes', 'true', 'on'):
        return True
    if value in ('0', 'no', 'false', 'off'):
        return False
    raise ConfigError('[native] %s: expected true or false, got %r' % (key, text))


def _check_registry(text):
    if not text:
        raise ConfigError('[native] registry is required for backend = native '
                          '(e.g. registry = https://registry.example.com)')
    parts = urlsplit(text)
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        raise ConfigError('[native] registry: expected an http(s):// URL, got %r' % text)
    if parts.username or parts.password or '@' in parts.netloc:
        raise ConfigError('[native] registry: credentials are not allowed in the URL; '
                          'use registry_credentials')
    if parts.path not in ('', '/') or parts.query or parts.fragment:
        raise ConfigError('[native] registry: give only scheme://host[:port], got %r' % text)
    return '%s://%s' % (parts.scheme, parts.netloc)


def _check_runtime(text, isolation):
    if not text:
        return ''
    if not RUNTIME_RE.match(text):
        raise ConfigError('[native] runtime: expected a program name (runc, crun) or an '
                          'absolute path, got %r' % text)
    if isolation != 'oci':
        raise ConfigError('[native] runtime = %s is only used with isolation = oci '
                          '(isolation is %s)' % (text, isolation))
    return text


def _check_unique_format(text):
    fields = set()
    for _literal, field, spec, conv in string.Formatter().parse(text):
        if field is None:
            continue
        if field not in UNIQUE_TAG_FIELDS or spec or conv:
            raise ConfigError('[native] unique_tag_format: unknown field {%s}; use %s'
                              % (field, ', '.join('{%s}' % f for f in sorted(UNIQUE_TAG_FIELDS))))
        fields.add(field)
    if not fields & set(('random', 'timestamp', 'task_id')):
        raise ConfigError('[native] unique_tag_format must contain {random}, {timestamp} '
                          'or {task_id} so each build gets its own tag')
    sample = text.format(target='t', random='12345', timestamp='20240101000000', task_id='1')
    if not TAG_RE.match(sample + '-aarch64'):
        raise ConfigError('[native] unique_tag_format %r does not give a valid registry tag'
                          % text)
    return text


def parse(parser):
    """NativeConfig from a ConfigParser (or None: all defaults, which fails on registry)."""
    raw = dict(DEFAULTS)
    if parser is not None and parser.has_section(SECTION):
        known = set(DEFAULTS)
        for key, value in parser.items(SECTION, raw=True):
            if key not in known:
                if parser.defaults() and key in parser.defaults():
                    continue
                raise ConfigError('[native] unknown key %r (known: %s)'
                                  % (key, ', '.join(sorted(known))))
            raw[key] = value.strip()
    values = {}
    for key, _default, kind, _help in KEYS:
        text = raw[key]
        if kind == 'bool':
            values[key] = _bool(key, text)
        elif kind == 'float':
            try:
                number = float(text)
            except ValueError:
                number = -1.0
            if not number > 0:
                raise ConfigError('[native] %s: expected a positive number, got %r' % (key, text))
            values[key] = number
        elif kind == 'choice':
            if text not in CHOICES[key]:
                raise ConfigError('[native] %s: expected one of %s, got %r'
                                  % (key, ', '.join(CHOICES[key]), text))
            values[key] = text
        elif kind == 'path':
            if text and not os.path.isabs(text):
                raise ConfigError('[native] %s: expected an absolute path, got %r' % (key, text))
            values[key] = text
        else:
            values[key] = text
    values['registry'] = _check_registry(values['registry'])
    scheme, host = registry_mod.split_url(values['registry'])
    registry_mod.check_transport(scheme, host, values['registry_tls_verify'],
                                 values['registry_allow_insecure'],
                                 '[native] registry_allow_insecure = true')
    namespace = values['registry_namespace'].strip('/')
    if namespace and not REPOSITORY_RE.match(namespace):
        raise ConfigError('[native] registry_namespace: %r is not a valid repository path'
                          % namespace)
    values['registry_namespace'] = namespace
    if not re.match(r'^[\w.+-]+\Z', values['content_generator']):
        raise ConfigError('[native] content_generator: %r is not a valid name'
                          % values['content_generator'])
    if not values['channel'] or not re.match(r'^[\w.+-]+\Z', values['channel']):
        raise ConfigError('[native] channel: %r is not a valid channel name' % values['channel'])
    if values['storage_driver'] not in ('', 'overlay', 'vfs'):
        raise ConfigError('[native] storage_driver: expected overlay or vfs, got %r'
                          % values['storage_driver'])
    cache = values.pop('image_cache')
    if cache not in ('', 'off') and not os.path.isabs(cache):
        raise ConfigError('[native] image_cache: expected an absolute path, empty or off, '
                          'got %r' % cache)
    values['image_cache_dir'] = cache
    try:
        values['image_cache_bytes'] = native_cache.parse_size(values.pop('image_cache_size'))
    except ValueError as exc:
        raise ConfigError(str(exc))
    values['unique_tag_format'] = _check_unique_format(values['unique_tag_format'])
    values['runtime'] = _check_runtime(values['runtime'], values['isolation'])
    values['yum_repourl_networks'] = netrules.allowed_networks(
        values['yum_repourl_allowed_networks'], '[native] yum_repourl_allowed_networks')
    if values['isolation'] == 'chroot' and values['network'] != 'host':
        # chroot isolation has no network namespace of its own: RUN steps always get the
        # host network, so any other setting would be silently wrong.
        raise ConfigError('[native] isolation = chroot runs RUN steps in the host network: '
                          'set network = host, or use isolation = oci for network = %s'
                          % values['network'])
    if values['isolation'] == 'chroot' and values['hermetic'] != 'off':
        raise ConfigError('[native] hermetic = %s needs RUN steps without network: use '
                          'isolation = oci or rootless' % values['hermetic'])
    return NativeConfig(values)


def from_builder_config(config):
    """NativeConfig from a config.BuilderConfig (its raw `.parser`)."""
    return parse(getattr(config, 'parser', None))


def sample_section():
    """The [native] section with defaults and help, for the sample config file."""
    lines = ['[native]']
    for key, default, _kind, help_text in KEYS:
        lines.append('# %s' % help_text)
        lines.append('%s = %s' % (key, default))
    return '\n'.join(lines) + '\n'
