"""The network rules every part of the package shares (one place each):

- is_loopback_host(): which registry hosts may use plain HTTP or unverified TLS without
  an explicit opt-in: an IP literal in 127.0.0.0/8 or ::1 (also IPv4-mapped), or the exact
  name `localhost`. Names are never matched by prefix: `localhost.attacker.example` and
  `127.0.0.1.nip.io` are ordinary remote hosts.
- is_internal_address(): addresses a task process must not fetch from on behalf of a
  build request (loopback, link-local, private, unique-local, unspecified, multicast,
  reserved), unless the site lists the network (allowed_networks()).
"""

import ipaddress

from koji_containerbuild.errors import ConfigError


def ip_literal(host):
    """ipaddress object for an IP literal host ('[::1]' accepted), else None."""
    if not isinstance(host, str):
        return None
    text = host[1:-1] if host.startswith('[') and host.endswith(']') else host
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _unmapped(addr):
    mapped = getattr(addr, 'ipv4_mapped', None)
    return mapped if mapped is not None else addr


def is_loopback_host(host):
    """True for 'localhost' exactly and IP literals in 127.0.0.0/8 or ::1."""
    if host == 'localhost':
        return True
    addr = ip_literal(host)
    return addr is not None and _unmapped(addr).is_loopback


def is_internal_address(addr):
    """True for an address the builder host can reach but a build request must not ask
    the task process to fetch from (see the module docstring)."""
    addr = _unmapped(ipaddress.ip_address(addr))
    return (addr.is_loopback or addr.is_link_local or addr.is_private or
            addr.is_unspecified or addr.is_multicast or addr.is_reserved or
            not addr.is_global)


def allowed_networks(text, what):
    """Parse a comma/space separated list of networks (CIDR) a site allows anyway."""
    networks = []
    for item in (text or '').replace(',', ' ').split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError('%s: %r is not a network (use CIDR, e.g. 10.1.0.0/16)'
                              % (what, item))
    return tuple(networks)


def refused_address(addr, allowed=()):
    """None if `addr` may be fetched from, else the reason it may not."""
    addr = ipaddress.ip_address(addr)
    plain = _unmapped(addr)
    if any(plain in net or addr in net for net in allowed
           if net.version == plain.version or net.version == addr.version):
        return None
    if is_internal_address(addr):
        kind = ('loopback' if plain.is_loopback else 'link-local' if plain.is_link_local
                else 'multicast' if plain.is_multicast else 'unspecified'
                if plain.is_unspecified else 'private or reserved')
        return '%s is a %s address' % (plain, kind)
    return None
