"""The gateway listens on localhost unless told otherwise: its gRPC, health and metrics ports
are not reachable at another address of the machine until --host opens them."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
import pytest_asyncio
from addresses import OTHER_ADDRESS, tcp_connects
from grpc_health.v1 import health_pb2, health_pb2_grpc

from benchmarks.stack import free_port
from services.gateway.server import GatewayHandle, start_gateway
from services.gateway.settings import GatewaySettings

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def health_from(address: str, port: int) -> grpc.StatusCode:
    """The status of a health check at address:port (the gateway needs no model server to
    answer it: NOT_SERVING is an answer)."""
    async with grpc.aio.insecure_channel(f"{address}:{port}") as channel:
        try:
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=3
            )
        except grpc.RpcError as error:
            return error.code()
        return grpc.StatusCode.OK


def metrics_from(address: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/metrics", timeout=3) as response:
            return b"gateway_requests" in response.read()
    except (urllib.error.URLError, OSError):
        return False


@pytest_asyncio.fixture(loop_scope="session")
async def gateway_with(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Callable[..., Any]]:
    """Starts gateways with all three ports on free ports and the given settings; stops them."""
    # The defaults under test, not a GATEWAY_HOST this machine may have set.
    monkeypatch.delenv("GATEWAY_HOST", raising=False)
    started: list[GatewayHandle] = []

    async def start(**settings: Any) -> GatewayHandle:
        gateway = await start_gateway(
            GatewaySettings(
                port=0,
                metrics_port=0,
                health_port=0,
                model_server=f"localhost:{free_port()}",  # nothing there: not needed here
                **settings,
            )
        )
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        await gateway.stop(0)


async def test_by_default_only_this_machine_reaches_the_gateway(
    gateway_with: Callable[..., Any],
) -> None:
    gateway = await gateway_with()
    assert gateway.health_port is not None
    for port in (gateway.port, gateway.health_port):
        assert await health_from("localhost", port) == grpc.StatusCode.OK
        assert await health_from(OTHER_ADDRESS, port) == grpc.StatusCode.UNAVAILABLE
    assert metrics_from("localhost", gateway.metrics_port)
    assert not tcp_connects(OTHER_ADDRESS, gateway.metrics_port)


async def test_host_opens_every_port_to_every_interface(
    gateway_with: Callable[..., Any],
) -> None:
    gateway = await gateway_with(host="0.0.0.0")
    assert gateway.health_port is not None
    for port in (gateway.port, gateway.health_port):
        assert await health_from(OTHER_ADDRESS, port) == grpc.StatusCode.OK
    assert metrics_from(OTHER_ADDRESS, gateway.metrics_port)


async def test_host_accepts_ipv6_spelt_bare_or_in_brackets(
    gateway_with: Callable[..., Any],
) -> None:
    for host in ("::", "[::]"):
        gateway = await gateway_with(host=host)
        assert await health_from(OTHER_ADDRESS, gateway.port) == grpc.StatusCode.OK
        assert metrics_from(OTHER_ADDRESS, gateway.metrics_port)
