"""The SSRF guard at connection time: an aiohttp resolver that only returns allowed addresses.

aiohttp connects to exactly the addresses its resolver returns, so a connection
made through ``GuardedResolver`` goes to an address that was checked: there is
no second lookup for the socket to disagree with. aiohttp does not ask the
resolver about literal IP hosts; ``check_literal`` covers those. Behind a proxy
the connection goes to the proxy, which resolves the target itself: ``check``
then requires every address of the target to be allowed before the request.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from cms.webhooks.transport.urls import Network, address_allowed, literal_address


class RequestError(Exception):
    """The request failed before a complete response (message is safe to log)."""


class AddressRefused(RequestError):
    """The host's addresses are outside what webhooks may reach.

    Not an ``OSError``: aiohttp passes it through from the resolver untouched."""


class GuardedResolver(AbstractResolver):
    """Wraps aiohttp's default resolver; drops every address the SSRF policy refuses."""

    def __init__(self, allowed: Sequence[Network] = (), resolver: AbstractResolver | None = None) -> None:
        self.allowed = tuple(allowed)
        self._resolver = resolver or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        allowed = [info for info in found if address_allowed(info["host"], self.allowed)]
        if not allowed:
            raise AddressRefused(f"{host} is not publicly routable ({_shown(found)})")
        return allowed

    def check_literal(self, host: str) -> bool:
        """Raise ``AddressRefused`` if ``host`` is a refused IP literal; whether it is a literal."""
        literal = literal_address(host)
        if literal is None:
            return False
        if not address_allowed(literal, self.allowed):
            raise AddressRefused(f"{host} is not publicly routable")
        return True

    async def check(self, host: str, port: int) -> None:
        """Every address of ``host`` must be allowed (someone else, a proxy, picks one)."""
        if self.check_literal(host):
            return
        try:
            found = await self._resolver.resolve(host, port, socket.AF_UNSPEC)
        except OSError as exc:
            raise RequestError(f"cannot resolve {host}: {exc.strerror or exc}") from None
        refused = [info for info in found if not address_allowed(info["host"], self.allowed)]
        if refused or not found:
            raise AddressRefused(f"{host} is not publicly routable ({_shown(refused)})")

    async def close(self) -> None:
        await self._resolver.close()


def _shown(found: list[ResolveResult]) -> str:
    return ", ".join(dict.fromkeys(info["host"] for info in found))
