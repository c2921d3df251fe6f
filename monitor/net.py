"""Which URLs monitor may fetch: a guard against server-side request forgery.

Image and feed URLs come from strangers' posts. A URL whose host is, or resolves to, a loopback,
private, link-local or otherwise non-public address is refused unless the configuration allows
private hosts (tests and feeds on a LAN turn that on explicitly). The guard fails closed: a name that
does not resolve is refused too, since nothing can be said about where it would lead.

The guard hands back the addresses it checked, so the transport connects to exactly those (the
name is resolved once; a DNS answer that changes between the check and the connection cannot take
the connection elsewhere).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from monitor.exceptions import TransportConnectError, URLNotAllowedError

Resolver = Callable[[str], list[str]]
AddressPolicy = Callable[[str], bool]

PRIVATE_HOSTS_HINT = "set MONITOR_ALLOW_PRIVATE_IMAGE_HOSTS=true to allow"


TEMPORARY_RESOLVER_ERRORS = frozenset({socket.EAI_AGAIN})
"""``getaddrinfo`` errors that say "not now" (the resolver is down), not "no such name"."""


def resolve_host(host: str, *, lookup: Callable[..., Any] = socket.getaddrinfo) -> list[str]:
    """All addresses a host name resolves to (an empty list when it does not resolve).

    A resolver that cannot answer now (``EAI_AGAIN``: a DNS outage, not an unknown name) is a
    ``TransportConnectError``, retried like a connection that failed: an outage of a few minutes
    must not fail every image that was waiting for it.
    """
    try:
        infos = lookup(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        if exc.errno in TEMPORARY_RESOLVER_ERRORS:
            raise TransportConnectError(
                f"cannot resolve {host} now ({exc.strerror}); another try may work"
            ) from exc
        return []
    except (UnicodeError, OSError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address (a scope suffix such as ``%eth0`` ignored)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def normalise_host(host: str) -> str:
    """The host as the guard and the connection both key it: lower case, no trailing dots.

    ``localhost.`` and ``169.254.169.254.`` are the same hosts as without the dot; treating them as
    different names is how they slipped past guards that only compare strings.
    """
    return host.strip().strip("[]").rstrip(".").lower()


def _ip_literal(host: str) -> str | None:
    """``host`` when it is an IP address written out (IPv6 scope allowed), else None."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    return host


@dataclass(frozen=True)
class CheckedURL:
    """A URL that passed the guard: its scheme, host and the addresses a connection may use."""

    scheme: str
    host: str
    addresses: tuple[str, ...]


def check_scheme(url: str, *, allow_file: bool = False) -> tuple[str, str]:
    """The URL's (scheme, host) if its form may be fetched; ``URLNotAllowedError`` otherwise.

    File URLs come back with an empty host (their checks belong to whoever reads files).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # a port that is not a number is a malformed URL
    except ValueError as exc:
        raise URLNotAllowedError(f"malformed URL ({exc}): {url[:200]}") from exc
    scheme = parts.scheme.lower()
    if scheme == "file":
        if not allow_file:
            raise URLNotAllowedError(f"file URLs are not allowed: {url[:200]}")
        return scheme, ""
    if scheme not in ("http", "https"):
        raise URLNotAllowedError(f"not an http(s) URL: {url[:200]}")
    if not host or not normalise_host(host):
        raise URLNotAllowedError(f"URL has no host: {url[:200]}")
    return scheme, normalise_host(host)


def check_host(
    host: str,
    *,
    allow_private: bool,
    resolver: Resolver = resolve_host,
    address_allowed: AddressPolicy = is_public_address,
) -> tuple[str, ...]:
    """The addresses ``host`` stands for, every one allowed; ``URLNotAllowedError`` otherwise."""
    literal = _ip_literal(host)
    addresses = [literal] if literal is not None else resolver(host)
    if not addresses:
        raise URLNotAllowedError(
            f"refused {host}: the name does not resolve, so where it leads cannot be checked"
        )
    if not allow_private:
        for address in addresses:
            if not address_allowed(address):
                raise URLNotAllowedError(
                    f"refused {host}: it resolves to the non-public address {address} "
                    f"({PRIVATE_HOSTS_HINT})"
                )
    return tuple(addresses)


def check_url(
    url: str,
    *,
    allow_private: bool,
    allow_file: bool = False,
    resolver: Resolver = resolve_host,
    address_allowed: AddressPolicy = is_public_address,
) -> CheckedURL:
    """Check a URL's form and every address its host stands for; the checked URL comes back."""
    scheme, host = check_scheme(url, allow_file=allow_file)
    if scheme == "file":
        return CheckedURL(scheme=scheme, host="", addresses=())
    addresses = check_host(
        host, allow_private=allow_private, resolver=resolver, address_allowed=address_allowed
    )
    return CheckedURL(scheme=scheme, host=host, addresses=addresses)
