"""Which addresses the worker may send a request to, and a socket that goes only there.

A connection's base URL reaches the network from inside the worker, which usually sits next to
things a team never meant to expose: the cloud's metadata service (which hands out the machine's
credentials), the database, Redis, internal dashboards. So before any request:

- The host is resolved once per connection (`socket.getaddrinfo`) and every address it resolves
  to is checked; the text of the URL is never trusted, because `2852039166`,
  `0xa9.0xfe.0xa9.0xfe` and `[::ffff:169.254.169.254]` all name the metadata service. IPv4
  addresses inside IPv6 ones (IPv4-mapped, NAT64, 6to4) are checked as the IPv4 address they
  carry.
- Link-local, cloud metadata, unspecified, multicast, broadcast and reserved addresses are
  refused always, even when the allow-list covers them: no model server lives there, the
  metadata services answer any process on the machine with its cloud credentials, and an
  allow-list written broadly (`0.0.0.0/0`, a whole /8) must not open them by accident.
- Loopback, private (RFC 1918, fc00::/7), shared (100.64/10) and every other address that is
  not global are refused unless the allow-list the caller passes in lists the network or the
  host name (the operator's `SHIKOMI_OUTBOUND_ALLOW`, read by curation/connections/outbound.py;
  by default loopback on a single machine, no Redis, and nothing otherwise).
- The connection then goes to the addresses that were checked (`connect`), never to a second
  lookup of the name: between a check and a second lookup, a DNS answer with a short life could
  change to 127.0.0.1 (DNS rebinding). llm/outbound_http.py puts both under an httpx client, so
  every connection it opens (each attempt, each host) is checked; HTTPS there still checks the
  certificate and sends SNI for the host name, and environment proxies are not used (a proxy
  would resolve the name again, on its own side).

Everything here happens before a socket connects to the target, so a refused address sees no
packet from us (the DNS lookup goes to the resolver, not to the target).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from text.i18n import gettext as _

log = logging.getLogger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud metadata services (AWS, GCP, Azure, OpenStack, DigitalOcean and others share the first;
# AWS ECS task credentials, AWS over IPv6, Alibaba, Azure's wire server and Oracle's IMDS).
# Some are not link-local, so they are named one by one.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(text)
    for text in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "168.63.129.16", "192.0.0.192")
)
# IPv6 prefixes that carry an IPv4 address in their last 32 bits and reach it through a gateway.
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_HOST_NAME = re.compile(
    r"(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?"
)


class OutboundRefused(ValueError):
    """The worker will not send a request to this URL; str() is the message for the user."""


@dataclass(frozen=True)
class AllowList:
    networks: tuple[Network, ...]
    hosts: frozenset[str]


# Public addresses only.
NOTHING_ALLOWED = AllowList((), frozenset())


def parse_allow_list(entries: list[str]) -> AllowList:
    """`entries` are networks (`10.0.0.0/8`, `::1`) or host names (`gpu-box.internal`); ValueError
    naming the first entry that is neither."""
    networks: list[Network] = []
    hosts: set[str] = set()
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        if not _HOST_NAME.fullmatch(entry.lower()) or entry.replace(".", "").isdigit():
            raise ValueError(f"{entry!r} is neither a network (10.0.0.0/8, ::1) nor a host name.")
        hosts.add(entry.lower().rstrip("."))
    return AllowList(tuple(networks), frozenset(hosts))


def carried_ipv4(address: Address) -> Address:
    """The IPv4 address an IPv6 one stands for (mapped, NAT64, 6to4), else `address` itself."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def never_reason(address: Address) -> str | None:
    """Why no allow-list can open `address`, or None."""
    if address in METADATA_ADDRESSES:
        return _("a cloud metadata address")
    if address.is_link_local:
        return _("a link-local address")
    # 0.0.0.0/8 is "this network": Linux connects 0.0.0.0 to the machine itself.
    if address.is_unspecified or address in _THIS_NETWORK:
        return _("an unspecified address")
    if address.is_multicast:
        return _("a multicast address")
    # Also 255.255.255.255 (in 240.0.0.0/4); ::1 lies in the reserved ::/8 but is loopback.
    if address.is_reserved and not address.is_loopback:
        return _("a reserved address")
    return None


def address_problem(address: Address, *, host: str, allowed: AllowList) -> str | None:
    """Why the worker must not connect to `address` (resolved from `host`), or None."""
    # An IPv6 address that carries an IPv4 one reaches that IPv4 address: judge that one alone
    # (the wrapper itself, ::ffff:0:0/96 for one, counts as reserved).
    address = carried_ipv4(address)
    if (reason := never_reason(address)) is not None:
        return reason
    if address.is_global:
        return None
    if host in allowed.hosts or any(address in network for network in allowed.networks):
        return None
    if address.is_loopback:
        return _("a loopback address, which the operator has not allowed")
    return _("a private or internal address, which the operator has not allowed")


def vetted_addresses(url: str, allowed: AllowList) -> list[tuple[Any, ...]]:
    """The addresses the host of `url` resolves to, each one allowed (public, or in `allowed`);
    OutboundRefused otherwise."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host.rstrip("."):
        raise OutboundRefused(_("%(url)s is not an http:// or https:// address with a host.") % {"url": url})
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OutboundRefused(_("%(url)s has a port that is not a number.") % {"url": url}) from None
    return checked_addresses(host, port, allowed)


def checked_addresses(host: str, port: int, allowed: AllowList) -> list[tuple[Any, ...]]:
    """The addresses `host` resolves to, each one allowed (public, or in `allowed`); OutboundRefused
    otherwise.

    Each item is a `getaddrinfo` result (family, type, proto, canonname, sockaddr) to connect to.
    """
    host = host.rstrip(".")
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as error:
        raise OutboundRefused(
            _("The host name %(host)s could not be resolved (%(error)s); check the base URL.")
            % {"host": host, "error": error}
        ) from None
    results = []
    for family, kind, proto, canonname, sockaddr in found:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        # sockaddr[0] of an IPv6 link-local address may end in a %scope.
        address = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if (problem := address_problem(address, host=host.lower(), allowed=allowed)) is not None:
            log.warning("outbound connection to %s:%s refused: it resolves to %s (%s)", host, port, address, problem)
            raise OutboundRefused(
                _(
                    "Shikomi does not send requests to %(host)s: it resolves to %(kind)s. An operator can "
                    "allow private networks or host names in SHIKOMI_OUTBOUND_ALLOW; link-local and cloud "
                    "metadata addresses are never allowed."
                )
                % {"host": host, "kind": problem}
            )
        results.append((family, kind, proto, canonname, sockaddr))
    if not results:
        raise OutboundRefused(_("The host name %(host)s has no IPv4 or IPv6 address.") % {"host": host})
    return results


def check_url(url: str, allowed: AllowList) -> None:
    """Raise OutboundRefused unless every address the host of `url` resolves to is allowed."""
    vetted_addresses(url, allowed)


def connect(addresses: list[tuple[Any, ...]], timeout: float | None, source_address: Any = None) -> socket.socket:
    """`socket.create_connection`, but to checked addresses instead of a fresh lookup: the first
    that answers, else the last error."""
    error: OSError | None = None
    for family, kind, proto, _canonname, sockaddr in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not None:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as failure:
            error = failure
            sock.close()
    assert error is not None  # checked_addresses never returns an empty list
    raise error
