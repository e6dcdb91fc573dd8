"""How to reach a registry: its URL, the transport rule and the credentials.

split_url reads a registry URL or bare host[:port]; check_transport is the one rule for
plain HTTP and unverified TLS (loopback registries only unless the site opts in);
load_auth reads a docker-style auth file ({"auths": {"host[:port]": {"auth":
b64(user:pw)}}}). Site configuration, checked before the Registry client (registry.py)
makes any call; these names stay importable from registry.
"""

import base64
import json
import re
from urllib.parse import urlsplit

from koji_containerbuild import netrules
from koji_containerbuild.errors import ConfigError


def check_transport(scheme, host, tls_verify, allow_insecure=False, option=None):
    """The one transport rule: plain http:// or an unverified https registry only on a
    loopback host (netrules.is_loopback_host), unless the site opts in explicitly
    (`option` names that opt-in for the message). ConfigError otherwise."""
    if scheme == 'https' and tls_verify:
        return
    if allow_insecure or netrules.is_loopback_host(urlsplit('//' + host).hostname or ''):
        return
    what = 'plain HTTP' if scheme == 'http' else 'unverified TLS'
    raise ConfigError('Refusing %s for registry %s: only loopback registries (127.0.0.0/8, '
                      '::1, localhost) may use it%s' % (
                          what, host, ' unless %s' % option if option else ''))


def split_url(url):
    """('https', 'host:port') for a registry URL or bare host[:port] (https by default)."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError('Registry URL is empty')
    match = re.match(r'^(?:(https?)://)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?/?\Z',
                     url.strip())
    if not match or (match.group(3) and not 0 < int(match.group(3)) < 65536):
        raise ConfigError('Invalid registry URL %r: expected [https://]host[:port]'
                          % (url,))
    host = match.group(2) + (':%s' % match.group(3) if match.group(3) else '')
    return match.group(1) or 'https', host


def load_auth(path, host):
    """(user, password) for `host` from a docker-style auth file, or None."""
    if not path:
        return None
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as exc:
        raise ConfigError('Cannot read registry credentials file %s: %s'
                          % (path, exc.strerror))
    except ValueError:
        raise ConfigError('Registry credentials file %s is not valid JSON' % path)
    auths = data.get('auths') if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        raise ConfigError('Registry credentials file %s has no "auths" object' % path)
    for key, entry in auths.items():
        name = re.sub(r'^https?://', '', str(key)).rstrip('/')
        if name.split('/')[0] != host or not isinstance(entry, dict):
            continue
        if entry.get('username') and entry.get('password') is not None:
            return str(entry['username']), str(entry['password'])
        try:
            user, _, password = base64.b64decode(entry.get('auth', '')).decode(
                'utf-8').partition(':')
        except (ValueError, TypeError):
            raise ConfigError('Registry credentials file %s: bad "auth" value for %s'
                              % (path, host))
        if user:
            return user, password
    return None
