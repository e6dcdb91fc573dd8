"""osbs.conf.Configuration (double of osbs-client 2.8.0, contract section 1)."""

import configparser
import logging
import os

from .constants import (DEFAULT_CONFIGURATION_FILE, DEFAULT_CONFIGURATION_SECTION,
                            DEFAULT_NAMESPACE)

logger = logging.getLogger(__name__)


class Configuration(object):
    def __init__(self, conf_file=DEFAULT_CONFIGURATION_FILE,
                 conf_section=DEFAULT_CONFIGURATION_SECTION, cli_args=None, **kwargs):
        self.conf_file = conf_file
        self.conf_section = conf_section
        self.args = cli_args
        self.kwargs = kwargs
        self.scp = configparser.ConfigParser()
        if conf_file and os.access(conf_file, os.R_OK):
            self.scp.read(conf_file)  # a malformed file raises configparser errors
            if not self.scp.has_section(conf_section):
                logger.warning("Specified section '%s' not found in '%s'",
                               conf_section, conf_file)

    def _get_value(self, key, section, default=None, is_bool=False):
        value = self.kwargs.get(key)
        if value is None and self.args is not None:
            value = getattr(self.args, key, None)
        if value is None:
            try:
                value = self.scp.get(section, key)
            except (configparser.NoSectionError, configparser.NoOptionError):
                value = None
        if value is None:
            return default
        if is_bool:
            if isinstance(value, bool):
                return value
            try:
                return bool(int(value))
            except ValueError:
                return str(value).lower() == 'true'
        return value

    def _get(self, key, default=None, is_bool=False):
        return self._get_value(key, self.conf_section, default, is_bool)

    def get_openshift_base_uri(self):
        return self._get('openshift_url')

    def get_namespace(self):
        return self._get('namespace', DEFAULT_NAMESPACE)

    def get_verify_ssl(self):
        return self._get('verify_ssl', True, is_bool=True)

    def get_use_auth(self):
        return self._get('use_auth', None, is_bool=True)

    def get_oauth2_token(self):
        token = self._get('token')
        if token:
            return token
        token_file = self._get('token_file')
        if not token_file:
            candidate = os.path.expanduser('~/.osbs/%s.token' % self.conf_section)
            if os.path.exists(candidate):
                token_file = candidate
        if token_file:
            try:
                with open(token_file) as fobj:
                    return fobj.read().strip()
            except (IOError, OSError):
                return token_file  # upstream returns the path when unreadable
        return None

    def get_username(self):
        return self._get('username')

    def get_password(self):
        return self._get('password')

    def get_use_kerberos(self):
        return self._get('use_kerberos', None, is_bool=True)

    def get_kerberos_keytab(self):
        return self._get('kerberos_keytab')

    def get_kerberos_principal(self):
        return self._get('kerberos_principal')

    def get_kerberos_ccache(self):
        return self._get('kerberos_ccache')

    def get_client_cert(self):
        return self._get('client_cert')

    def get_client_key(self):
        return self._get('client_key')

    def get_verbosity(self):
        return self._get_value('verbose', DEFAULT_CONFIGURATION_SECTION, None, is_bool=True)

    def get_pipeline_run_path(self):
        return self._get('pipeline_run_path')

    def get_reactor_config_map(self):
        return self._get('reactor_config_map')

    def get_reactor_config_map_scratch(self):
        return self._get('reactor_config_map_scratch')

    def get_default_buildtime_limit(self):
        return int(self._get('default_buildtime_limit', 10800))

    def get_max_buildtime_limit(self):
        return int(self._get('max_buildtime_limit', 21600))

    def get_scratch(self, default):
        return self._get('scratch', default, is_bool=True)
