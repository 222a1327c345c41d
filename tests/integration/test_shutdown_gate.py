"""The shutdown gate both servers put in front of their services: once closed, new calls are
refused with UNAVAILABLE and the server's name while calls already taken run to their end, health
checks still pass, and the server learns when the calls it took are done."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from status_assertions import expect_status

from services.common.shutdown import SHUTTING_DOWN, ShutdownGate
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc

pytestmark = pytest.mark.asyncio(loop_scope="session")


class SlowService(gateway_pb2_grpc.GatewayServiceServicer):
    """ListModels and StreamForecast that take as long as the test lets them."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def ListModels(
        self, request: gateway_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ListModelsResponse:
        self.started.set()
        await self.release.wait()
        return gateway_pb2.ListModelsResponse()

    async def StreamForecast(
        self, request: gateway_pb2.StreamForecastRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[gateway_pb2.StreamForecastResponse]:
        for step in range(1, request.horizon + 1):
            self.started.set()
            await self.release.wait()
            yield gateway_pb2.StreamForecastResponse(step=step)


@dataclass
class Gated:
    gate: ShutdownGate
    service: SlowService
    stub: gateway_pb2_grpc.GatewayServiceStub
    health: health_pb2_grpc.HealthStub


@pytest_asyncio.fixture(loop_scope="session")
async def gated() -> AsyncIterator[Gated]:
    gate = ShutdownGate("test server")
    service = SlowService()
    server = grpc.aio.server(interceptors=[gate])
    gateway_pb2_grpc.add_GatewayServiceServicer_to_server(service, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_aio.HealthServicer(), server)
    port = server.add_insecure_port("localhost:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"localhost:{port}") as channel:
        yield Gated(
            gate,
            service,
            gateway_pb2_grpc.GatewayServiceStub(channel),
            health_pb2_grpc.HealthStub(channel),
        )
    await server.stop(None)


async def test_a_closed_gate_refuses_new_calls_and_lets_the_taken_ones_finish(
    gated: Gated,
) -> None:
    unary = asyncio.ensure_future(gated.stub.ListModels(gateway_pb2.ListModelsRequest()))
    await gated.service.started.wait()
    gated.service.started.clear()
    stream = gated.stub.StreamForecast(gateway_pb2.StreamForecastRequest(horizon=3))
    await gated.service.started.wait()

    gated.gate.close()
    await expect_status(
        gated.stub.ListModels(gateway_pb2.ListModelsRequest(), timeout=10),
        grpc.StatusCode.UNAVAILABLE,
        f"the test server is {SHUTTING_DOWN}",
    )
    answer = await gated.health.Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING

    waiting = asyncio.ensure_future(gated.gate.wait_for_calls(30.0))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # two calls still run
    gated.service.release.set()
    assert await unary == gateway_pb2.ListModelsResponse()
    assert [point.step async for point in stream] == [1, 2, 3]
    # The grace left for gRPC's own stop: the calls ended as soon as they were released, so
    # most of it (with slack for a loaded machine), not none.
    assert 20.0 < await waiting <= 30.0


async def test_calls_past_the_grace_are_given_up_on(gated: Gated) -> None:
    unary = asyncio.ensure_future(gated.stub.ListModels(gateway_pb2.ListModelsRequest()))
    await gated.service.started.wait()
    gated.gate.close()

    assert await gated.gate.wait_for_calls(0.3) == 0.0
    assert await gated.gate.wait_for_calls(None) is None  # None: wait for nothing
    gated.service.release.set()
    await unary
