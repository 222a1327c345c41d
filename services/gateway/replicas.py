"""The model-server replicas behind one gRPC target, each reachable on a channel of its own.

Calls go through one round-robin channel over every address the target resolves to, so the
gateway never knows which replica answered. Versions are a property of each replica, though:
replicas poll the model volume on their own clocks and disagree for up to a poll interval. So
the gateway also resolves the target itself, the way gRPC does, and keeps one small channel per
address, to ask each replica for its versions and to send a call to a replica known to hold the
version it is pinned to.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

import grpc

log = logging.getLogger(__name__)

# gRPC's default port when a target names none.
_DEFAULT_PORT = "443"
# Resolvers of gRPC's whose endpoints are not IP addresses, or not known to the gateway.
_OPAQUE_SCHEMES = frozenset({"unix", "unix-abstract", "vsock", "xds", "google-c2p"})


@dataclass(frozen=True)
class Target:
    """A parsed gRPC target: fixed addresses, or a host name resolved through DNS."""

    addresses: tuple[str, ...] = ()  # "ip:port", IPv6 in brackets
    host: str | None = None
    port: str = _DEFAULT_PORT


def parse_target(target: str) -> Target | None:
    """What gRPC would connect to for `target` (its naming doc: ipv4:, ipv6:, dns:, and a bare
    host:port, which gRPC reads as dns:///host:port); None for schemes whose endpoints cannot be
    addressed one by one (unix:, vsock:, xds:, ...)."""
    scheme, colon, rest = target.partition(":")
    if not colon:
        return _host_target(target)
    if scheme in ("ipv4", "ipv6"):
        return Target(addresses=tuple(_with_port(a) for a in rest.split(",") if a))
    if scheme == "dns":
        # dns:[//authority/]host[:port]
        if rest.startswith("//"):
            rest = rest[2:].partition("/")[2]
        return _host_target(rest)
    if scheme in _OPAQUE_SCHEMES:
        return None
    return _host_target(target)


def _host_target(host_port: str) -> Target:
    if host_port.startswith("["):
        host, _, rest = host_port[1:].partition("]")
        return Target(host=host, port=rest.lstrip(":") or _DEFAULT_PORT)
    host, _, port = host_port.rpartition(":") if ":" in host_port else (host_port, "", "")
    return Target(host=host, port=port or _DEFAULT_PORT)


def _with_port(address: str) -> str:
    if address.startswith("["):
        return address if "]:" in address else f"{address}:{_DEFAULT_PORT}"
    if address.count(":") > 1:  # a bare IPv6 address
        return f"[{address}]:{_DEFAULT_PORT}"
    return address if ":" in address else f"{address}:{_DEFAULT_PORT}"


async def resolve(target: Target) -> list[str]:
    """The target's addresses now: its fixed ones, or what DNS answers for its host."""
    if target.host is None:
        return list(target.addresses)
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    addresses = []
    for family, _type, _proto, _name, sockaddr in infos:
        ip, port = str(sockaddr[0]), int(sockaddr[1])
        address = f"[{ip}]:{port}" if family == socket.AF_INET6 else f"{ip}:{port}"
        if address not in addresses:
            addresses.append(address)
    return addresses


class Replicas:
    """One channel per replica address, following the target's resolution.

    `channel_for` makes the channel of one address; the set is updated by `refresh`, which
    closes the channels of addresses that left (a pod that went away).
    """

    def __init__(self, target: str, channel_for: Callable[[str], grpc.aio.Channel]) -> None:
        self._target = parse_target(target)
        self._channel_for = channel_for
        self._channels: dict[str, grpc.aio.Channel] = {}

    @property
    def addressable(self) -> bool:
        """False for a target whose replicas cannot be told apart (a unix socket)."""
        return self._target is not None

    def channels(self) -> dict[str, grpc.aio.Channel]:
        return dict(self._channels)

    async def refresh(self) -> None:
        """Re-resolves the target; keeps the last addresses when resolution fails."""
        if self._target is None:
            return
        try:
            addresses = await resolve(self._target)
        except OSError as exc:
            log.warning("cannot resolve the model server's replicas: %s", exc)
            return
        for address in set(self._channels) - set(addresses):
            await self._channels.pop(address).close(grace=None)
        for address in addresses:
            if address not in self._channels:
                self._channels[address] = self._channel_for(address)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close(grace=None)
        self._channels.clear()
