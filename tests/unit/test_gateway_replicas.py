"""The gateway's channels to the model-server replicas follow its own resolution of the target:
calls go round robin over exactly the addresses it resolved, and a channel that is replaced, or
whose replica left, closes only once the calls on it have ended."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]

from benchmarks.stack import free_port
from services.gateway import replicas
from services.gateway.replicas import Replicas, RoundRobin, address_list_target


class FakeChannel:
    """Stands in for a grpc.aio channel: remembers its target and whether it was closed."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.closed = False

    async def close(self, grace: float | None = None) -> None:
        self.closed = True

    def get_state(self, try_to_connect: bool = False) -> None:
        return None


class Channels:
    def __init__(self) -> None:
        self.made: list[FakeChannel] = []

    def __call__(self, target: str) -> FakeChannel:
        self.made.append(FakeChannel(target))
        return self.made[-1]


async def settled() -> None:
    """Lets the closes scheduled so far run."""
    for _ in range(3):
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("addresses", "target"),
    [
        (["10.0.0.2:8500", "10.0.0.1:8500"], "ipv4:10.0.0.1:8500,10.0.0.2:8500"),
        (["[fd00::1]:8500", "[fd00::2]:8500"], "ipv6:[fd00::1]:8500,[fd00::2]:8500"),
        # gRPC's ipv4: and ipv6: lists take one family each: a mixed answer has no list.
        (["10.0.0.1:8500", "[fd00::1]:8500"], None),
        ([], None),
    ],
)
def test_an_address_list_becomes_the_target_grpc_would_resolve_to_it(
    addresses: list[str], target: str | None
) -> None:
    assert address_list_target(addresses) == target


async def test_calls_move_to_the_new_addresses_and_the_old_channel_closes_after_its_calls() -> None:
    channels = Channels()
    round_robin = RoundRobin("dns:///tfserving:8500", channels)  # type: ignore[arg-type]
    with round_robin.lease() as first:
        assert first is channels.made[0] and channels.made[0].target == "dns:///tfserving:8500"
        assert round_robin.follow(["10.0.0.1:8500", "10.0.0.2:8500"])
        with round_robin.lease() as second:
            assert second.target == "ipv4:10.0.0.1:8500,10.0.0.2:8500"  # type: ignore[attr-defined]
        await settled()
        assert not channels.made[0].closed  # a call is still on it
    await settled()
    assert channels.made[0].closed and not channels.made[1].closed

    # The same set in another order changes nothing; a pod that left or joined does.
    assert not round_robin.follow(["10.0.0.2:8500", "10.0.0.1:8500"])
    assert round_robin.follow(["10.0.0.2:8500"])
    await settled()
    assert channels.made[1].closed  # no call was on it: closed at once
    assert round_robin.follow(["10.0.0.2:8500", "10.0.0.3:8500"])
    assert [c.target for c in channels.made[2:]] == [
        "ipv4:10.0.0.2:8500",
        "ipv4:10.0.0.2:8500,10.0.0.3:8500",
    ]

    # An answer that no address list can carry goes back to gRPC's own resolution.
    assert round_robin.follow(["10.0.0.2:8500", "[fd00::1]:8500"])
    assert channels.made[-1].target == "dns:///tfserving:8500"
    assert not round_robin.follow(["10.0.0.3:8500", "[fd00::1]:8500"])
    await round_robin.close()
    assert all(channel.closed for channel in channels.made)


async def test_a_replica_channel_closes_once_its_calls_have_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer = ["10.0.0.1:8500", "10.0.0.2:8500"]

    async def resolve(_target: object) -> list[str]:
        return list(answer)

    monkeypatch.setattr(replicas, "resolve", resolve)
    channels = Channels()
    fleet = Replicas("dns:///tfserving:8500", channels)  # type: ignore[arg-type]
    assert await fleet.refresh() == answer
    assert fleet.follows_names and fleet.addresses() == answer
    with fleet.use("10.0.0.1:8500") as leaving:
        answer.remove("10.0.0.1:8500")
        assert await fleet.refresh() == ["10.0.0.2:8500"]
        assert "10.0.0.1:8500" not in fleet
        await settled()
        assert not leaving.closed  # type: ignore[attr-defined]
    await settled()
    assert leaving.closed  # type: ignore[attr-defined]
    await fleet.close()
    assert all(channel.closed for channel in channels.made)


async def test_fixed_and_opaque_targets_have_nothing_to_follow() -> None:
    channels = Channels()
    assert not Replicas("ipv4:10.0.0.1:8500,10.0.0.2:8500", channels).follows_names  # type: ignore[arg-type]
    opaque = Replicas("unix:/tmp/model.sock", channels)  # type: ignore[arg-type]
    assert not opaque.addressable and not opaque.follows_names
    assert await opaque.refresh() is None


async def test_a_channel_waiting_out_its_reconnect_backoff_is_renewed_when_replicas_answer() -> (
    None
):
    port = free_port()
    options = [
        # A long backoff, so that the old channel surely still waits when the server is back.
        ("grpc.initial_reconnect_backoff_ms", 20_000),
        ("grpc.min_reconnect_backoff_ms", 20_000),
        # As the gateway's call channels: a new one must not share the old one's subchannel.
        ("grpc.use_local_subchannel_pool", 1),
    ]
    round_robin = RoundRobin(
        f"ipv4:127.0.0.1:{port}", lambda target: grpc.aio.insecure_channel(target, options=options)
    )
    with round_robin.lease() as failing:
        failing.get_state(try_to_connect=True)
        await asyncio.wait_for(
            _state_becomes(failing, grpc.ChannelConnectivity.TRANSIENT_FAILURE), timeout=10
        )

    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health_aio.HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    try:
        # The server answers, but the channel waits out its backoff and fails calls meanwhile.
        assert failing.get_state() is grpc.ChannelConnectivity.TRANSIENT_FAILURE
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await health_pb2_grpc.HealthStub(failing).Check(health_pb2.HealthCheckRequest())
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE

        assert round_robin.renew_if_failing()
        with round_robin.lease() as channel:
            answer = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        assert not round_robin.renew_if_failing()  # a working channel stays
    finally:
        await round_robin.close()
        await server.stop(None)


async def _state_becomes(channel: grpc.aio.Channel, state: grpc.ChannelConnectivity) -> None:
    while (now := channel.get_state()) is not state:
        await channel.wait_for_state_change(now)
