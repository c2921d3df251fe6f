"""Which URLs monitor may fetch: a guard against server-side request forgery.

Image and feed URLs come from strangers' posts. A URL that resolves to a loopback, private, link-local
or otherwise non-public address is refused unless the configuration allows private hosts (tests and
feeds on a LAN turn that on explicitly).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from monitor.exceptions import ImageURLRefusedError

Resolver = Callable[[str], list[str]]


def resolve_host(host: str) -> list[str]:
    """All addresses a host name resolves to (an empty list when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url_allowed(
    url: str,
    *,
    allow_private: bool,
    allow_file: bool = False,
    resolver: Resolver = resolve_host,
) -> str:
    """Return the URL's scheme if monitor may fetch it; raise ``ImageURLRefusedError`` otherwise."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if not allow_file:
            raise ImageURLRefusedError(f"file URLs are not allowed: {url}")
        return scheme
    if scheme not in ("http", "https"):
        raise ImageURLRefusedError(f"not an http(s) URL: {url[:200]}")
    host = parts.hostname
    if not host:
        raise ImageURLRefusedError(f"URL has no host: {url[:200]}")
    if allow_private:
        return scheme
    addresses = resolver(host)
    if not addresses:
        # Unresolvable hosts fail later with a clear network error; nothing to protect here.
        return scheme
    for address in addresses:
        if not is_public_address(address):
            raise ImageURLRefusedError(
                f"refused {host}: it resolves to the non-public address {address} "
                "(set MONITOR_ALLOW_PRIVATE_IMAGE_HOSTS=true to allow)"
            )
    return scheme
