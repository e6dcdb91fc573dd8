"""The builder plugin's configuration file.

kojid exits on unknown options in kojid.conf, so the plugin keeps its settings in
/etc/kojid/plugins/builder_containerbuild.conf, read with koji.read_config_files the
way Koji's own builder plugins read theirs. A missing file means "all defaults".

    [containerbuild]
    backend = osbs                 ; osbs | native
    osbs_conf_file = /etc/osbs.conf
    osbs_binary_section = default_binary
    osbs_source_section = default_source
    retry_timeout = 300            ; seconds transient OSBS/hub errors are retried
    poll_interval = 5              ; seconds between run status checks
    hub_check_interval = 30        ; seconds between "do I still own this task" checks
    cancel_timeout = 4.5           ; seconds (at most 4.6) for cancelling the run when kojid kills us
    log_flush_interval = 0.5       ; seconds between log uploads

    [native]                       ; read by the native backend from .parser
"""

import configparser
import os

import koji

from koji_containerbuild.errors import ConfigError

DEFAULT_CONFIG_FILE = '/etc/kojid/plugins/builder_containerbuild.conf'
SECTION = 'containerbuild'
BACKENDS = ('osbs', 'native')

# key -> (kind, default, minimum); one place for every key's rule.
_KEYS = {
    'backend': ('choice', 'osbs', None),
    'osbs_conf_file': ('path', '/etc/osbs.conf', None),
    'osbs_binary_section': ('name', 'default_binary', None),
    'osbs_source_section': ('name', 'default_source', None),
    'retry_timeout': ('seconds', 300.0, 0.0),
    'poll_interval': ('seconds', 5.0, 0.05),
    'hub_check_interval': ('seconds', 30.0, 0.05),
    'cancel_timeout': ('seconds', 4.5, 0.1),
    'log_flush_interval': ('seconds', 0.5, 0.01),
}


class BuilderConfig(object):
    """Parsed settings; attribute per key of the [containerbuild] section."""

    def __init__(self, parser, path, values):
        self.parser = parser
        self.path = path
        for key, value in values.items():
            setattr(self, key, value)

    def osbs_section(self, kind):
        """The osbs.conf section for a build kind ('binary', 'flatpak' or 'source')."""
        if kind == 'source':
            return self.osbs_source_section
        return self.osbs_binary_section


def _convert(path, key, raw):
    kind, default, minimum = _KEYS[key]
    where = '%s: [%s] %s' % (path, SECTION, key)
    value = raw.strip()
    if kind == 'choice':
        if value not in BACKENDS:
            raise ConfigError('%s must be one of %s, got %r' % (where, ', '.join(BACKENDS), value))
        return value
    if kind == 'path':
        if not value or not os.path.isabs(value):
            raise ConfigError('%s must be an absolute path, got %r' % (where, value))
        return value
    if kind == 'name':
        if not value or any(c.isspace() for c in value):
            raise ConfigError('%s must be a section name without spaces, got %r' % (where, value))
        return value
    try:
        number = float(value)
    except ValueError:
        raise ConfigError('%s must be a number of seconds, got %r' % (where, value))
    if number != number or number < minimum or number > 86400:
        raise ConfigError('%s must be between %s and 86400 seconds, got %r'
                          % (where, minimum, value))
    return number


def load_builder_config(path=DEFAULT_CONFIG_FILE):
    """Read the plugin config; ConfigError (a koji.ConfigurationError) on any bad value."""
    try:
        parser = koji.read_config_files([(path, False)], raw=True)
    except configparser.Error as exc:
        raise ConfigError('%s is not a valid configuration file: %s'
                          % (path, str(exc).replace('\n', ' ')))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError('cannot read %s: %s' % (path, exc))
    values = dict((key, spec[1]) for key, spec in _KEYS.items())
    if parser.has_section(SECTION):
        unknown = sorted(k for k in parser.options(SECTION) if k not in _KEYS)
        if unknown:
            raise ConfigError('%s: unknown option%s in [%s]: %s (known: %s)' % (
                path, 's' if len(unknown) > 1 else '', SECTION, ', '.join(unknown),
                ', '.join(sorted(_KEYS))))
        for key in parser.options(SECTION):
            values[key] = _convert(path, key, parser.get(SECTION, key))
    return BuilderConfig(parser, path, values)
