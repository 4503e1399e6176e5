"""Server-side request forgery guard for webhook URLs.

A subscription URL is checked when it is saved, and every address it resolves
to is checked again when a webhook is sent (DNS can change in between).
Only globally routable unicast addresses pass, unless an address falls in one
of the operator's allowed networks (``CMS_WEBHOOK_ALLOWED_NETWORKS``).
IPv6 forms that embed an IPv4 address (IPv4-mapped, 6to4, Teredo, NAT64) are
judged by the address they embed as well.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence

from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class UrlRefused(ValueError):
    """The URL or an address it resolves to may not receive webhooks."""


def parse_networks(spec: str | Iterable[str] | None) -> tuple[Network, ...]:
    """``"127.0.0.0/8, ::1/128"`` -> networks (an empty spec allows nothing extra)."""
    if not spec:
        return ()
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


def _judged_forms(ip: IPAddress) -> list[IPAddress]:
    """The addresses ``ip`` is judged by: the IPv4 addresses an IPv6 form carries
    (IPv4-mapped, 6to4, Teredo, NAT64), which is where packets really go, or else itself."""
    if isinstance(ip, ipaddress.IPv4Address):
        return [ip]
    embedded: list[IPAddress] = []
    if ip.ipv4_mapped is not None:
        embedded.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        embedded.append(ip.sixtofour)
    if ip.teredo is not None:
        embedded.extend(ip.teredo)
    if ip in NAT64:
        embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return embedded or [ip]


def _public(ip: IPAddress) -> bool:
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
    )


def address_allowed(address: str | IPAddress, allowed: Sequence[Network] = ()) -> bool:
    """Whether webhooks may be sent to ``address``."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    for form in _judged_forms(ip):
        if any(form.version == net.version and form in net for net in allowed):
            continue
        if not _public(form):
            return False
    return True


def literal_address(host: str) -> IPAddress | None:
    """The IP address a URL host names literally (``[::1]``, ``127.0.0.1``), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_url(
    url: str,
    *,
    allowed: Sequence[Network] = (),
    https_only: bool = False,
    resolve: bool = True,
) -> None:
    """Raise ``UrlRefused`` unless ``url`` may receive webhooks."""
    parts = _parse(url)
    _check_form(parts, https_only)
    host = parts.raw_host
    assert host is not None  # _check_form
    literal = literal_address(host)
    if literal is not None:
        if not address_allowed(literal, allowed):
            raise UrlRefused(f"the address {literal} is not publicly routable")
        return
    if resolve:
        _check_resolved(host, parts.port, allowed)


def _parse(url: str) -> URL:
    """Parsed as the sender will send it (yarl: IDNA host, percent-encoded path),
    so the host checked here is the host the webhooks go to."""
    try:
        parts = URL(url)
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError as exc:  # UnicodeError (IDNA) included
        raise UrlRefused(f"not a valid URL: {exc}") from None
    return parts


def _check_form(parts: URL, https_only: bool) -> None:
    """Scheme, host, no credentials, no fragment."""
    schemes = ("https",) if https_only else ("http", "https")
    if parts.scheme not in schemes:
        raise UrlRefused(f"the scheme must be {' or '.join(schemes)}")
    if not parts.raw_host:
        raise UrlRefused("the URL has no host")
    if parts.user is not None or parts.password is not None:
        raise UrlRefused("credentials in the URL are not allowed; use the subscription's headers")
    if parts.fragment:
        raise UrlRefused("the URL must not have a fragment")


def _check_resolved(host: str, port: int | None, allowed: Sequence[Network]) -> None:
    """Every address the host resolves to must be allowed (a name that resolves to both
    a public and a private address is refused)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UrlRefused(f"the host {host!r} does not resolve ({exc})") from None
    addresses = {info[4][0] for info in infos}
    refused = sorted(a for a in addresses if not address_allowed(a, allowed))
    if refused:
        raise UrlRefused(f"the host {host!r} resolves to a non-public address ({', '.join(refused)})")
