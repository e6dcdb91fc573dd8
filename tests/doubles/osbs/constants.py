"""osbs.constants (double of osbs-client 2.8.0): the names the plugin uses."""

DEFAULT_CONFIGURATION_FILE = "/etc/osbs.conf"
DEFAULT_CONFIGURATION_SECTION = "general"
DEFAULT_CONF_BINARY_SECTION = "default_binary"
DEFAULT_CONF_SOURCE_SECTION = "default_source"
DEFAULT_NAMESPACE = "default"
USER_WARNING_LEVEL = 25
USER_WARNING_LEVEL_NAME = "USER_WARNING"
