"""The model-server replicas behind one gRPC target, as the gateway itself resolves it.

gRPC's own channel resolves a DNS name once and again only when a connection fails, so behind a
headless Service it would go on sending calls to a pod that has left the endpoints until the
pod dies. The gateway therefore resolves the target itself at every refresh, the way gRPC does,
and sends its calls round robin over exactly the addresses it resolved (`RoundRobin`: a channel
over an `ipv4:`/`ipv6:` list, replaced when the set changes). It also keeps one small channel
per address (`Replicas`), to ask each replica for its versions and to send a call to a replica
known to hold the version it is pinned to. A channel that is replaced, or whose replica left,
closes only once the calls on it have ended (`Draining`): no call is cancelled by the switch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterable, Iterator
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

    @property
    def authority(self) -> str | None:
        """host:port, as gRPC names the server of a DNS target; None for fixed addresses."""
        if self.host is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


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


def address_list_target(addresses: Iterable[str]) -> str | None:
    """The gRPC target that connects to exactly these addresses ("ip:port", IPv6 in brackets),
    sorted; None when there is none: no address, or both families (gRPC's ipv4: and ipv6:
    lists take one family each)."""
    ordered = sorted(set(addresses))
    families = {address.startswith("[") for address in ordered}
    if len(families) != 1:
        return None
    return ("ipv6:" if families == {True} else "ipv4:") + ",".join(ordered)


@dataclass(eq=False)
class _Held:
    """A channel and how many calls are on it now."""

    channel: grpc.aio.Channel
    calls: int = 0
    retired: bool = False


class Draining:
    """Closes the channels that are no longer used once the calls on them have ended."""

    def __init__(self) -> None:
        self._retired: set[_Held] = set()
        self._closing: set[asyncio.Task[None]] = set()

    @contextlib.contextmanager
    def use(self, held: _Held) -> Iterator[grpc.aio.Channel]:
        """The channel for the length of one call (retries included)."""
        held.calls += 1
        try:
            yield held.channel
        finally:
            held.calls -= 1
            if held.retired and held.calls == 0:
                self._close(held)

    def retire(self, held: _Held) -> None:
        held.retired = True
        if held.calls == 0:
            self._close(held)
        else:
            self._retired.add(held)

    def _close(self, held: _Held) -> None:
        self._retired.discard(held)
        # No call is left on it, so closing at once cancels nothing.
        task = asyncio.ensure_future(held.channel.close(grace=None))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Closes every retired channel now, cancelling what is left on it (the gateway stops)."""
        for held in list(self._retired):
            self._close(held)
        await asyncio.gather(*self._closing, return_exceptions=True)


class RoundRobin:
    """The channel that calls go round robin on.

    It starts as gRPC's own channel on the target. Once the gateway has resolved the target
    (`follow`), it is a channel over exactly those addresses, replaced whenever the set changes,
    so that new calls stop going to a pod that left the endpoints within one refresh and start
    going to one that joined. An answer that no address list can carry (both IP families) goes
    back to gRPC's own channel. `connect` makes the channel of one gRPC target.
    """

    def __init__(self, target: str, connect: Callable[[str], grpc.aio.Channel]) -> None:
        self._target = target
        self._connect = connect
        self._draining = Draining()
        self._current = _Held(connect(target))
        self._addresses: frozenset[str] | None = None  # None: gRPC resolves the target

    @property
    def addresses(self) -> frozenset[str] | None:
        """The addresses calls go to now; None while gRPC resolves the target itself."""
        return self._addresses

    def lease(self) -> contextlib.AbstractContextManager[grpc.aio.Channel]:
        """The channel for one call; a channel replaced meanwhile closes after the call."""
        return self._draining.use(self._current)

    def follow(self, addresses: Iterable[str]) -> bool:
        """Moves new calls to these addresses; True when that replaced the channel."""
        wanted = frozenset(addresses)
        listed = address_list_target(wanted)
        if listed is None and self._addresses is None:
            return False
        if listed is not None and wanted == self._addresses:
            return False
        self._replace(listed or self._target)
        log.info(
            "model server calls go round robin to %s (were going to %s)",
            ", ".join(sorted(wanted)) if listed else f"{self._target}, as gRPC resolves it",
            ", ".join(sorted(self._addresses)) if self._addresses else self._target,
        )
        self._addresses = wanted if listed is not None else None
        return True

    def renew_if_failing(self) -> bool:
        """Replaces a channel in TRANSIENT_FAILURE with a new one, which connects at once: the
        old one would first wait out gRPC's reconnect backoff (up to two minutes after a long
        outage), failing every call while the replicas already answer status checks. True when
        it replaced the channel."""
        state = self._current.channel.get_state()
        if state is not grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            return False
        listed = None if self._addresses is None else address_list_target(self._addresses)
        self._replace(listed or self._target)
        log.info("model server calls reconnect: the replicas answer again")
        return True

    def _replace(self, target: str) -> None:
        channel = self._connect(target)
        # Connect to every replica now rather than on the first calls, which would otherwise all
        # go to whichever replica connected first (round robin picks only ready connections).
        channel.get_state(try_to_connect=True)
        self._draining.retire(self._current)
        self._current = _Held(channel)

    async def close(self) -> None:
        self._draining.retire(self._current)
        await self._draining.close()


class Replicas:
    """One channel per replica address, following the target's resolution.

    `channel_for` makes the channel of one address; the set is updated by `refresh`. The channel
    of an address that left (a pod that went away) closes once the calls on it have ended.
    """

    def __init__(self, target: str, channel_for: Callable[[str], grpc.aio.Channel]) -> None:
        self._target = parse_target(target)
        self._channel_for = channel_for
        self._channels: dict[str, _Held] = {}
        self._draining = Draining()

    @property
    def addressable(self) -> bool:
        """False for a target whose replicas cannot be told apart (a unix socket)."""
        return self._target is not None

    @property
    def follows_names(self) -> bool:
        """Whether the replicas come from resolving a name, and so may change."""
        return self._target is not None and self._target.host is not None

    @property
    def authority(self) -> str | None:
        return None if self._target is None else self._target.authority

    def addresses(self) -> list[str]:
        return list(self._channels)

    def __contains__(self, address: str) -> bool:
        return address in self._channels

    def use(self, address: str) -> contextlib.AbstractContextManager[grpc.aio.Channel]:
        """The channel of one replica for one call; KeyError for an address not (or no longer)
        resolved."""
        return self._draining.use(self._channels[address])

    async def refresh(self) -> list[str] | None:
        """Re-resolves the target and returns its addresses; keeps the last ones and returns None
        when resolution fails, and for a target that cannot be addressed one by one."""
        if self._target is None:
            return None
        try:
            addresses = await resolve(self._target)
        except OSError as exc:
            log.warning("cannot resolve the model server's replicas: %s", exc)
            return None
        for address in set(self._channels) - set(addresses):
            self._draining.retire(self._channels.pop(address))
        for address in addresses:
            if address not in self._channels:
                self._channels[address] = _Held(self._channel_for(address))
        return addresses

    async def close(self) -> None:
        for held in self._channels.values():
            self._draining.retire(held)
        self._channels.clear()
        await self._draining.close()
