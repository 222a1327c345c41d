"""A model server that stops makes the gateway answer UNAVAILABLE at once, fail its health check,
and recover when the model server is back; one that hangs still leaves the client's deadline
in force."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from servers import Stack, start_model_server_for
from sklearn.datasets import load_wine
from status_assertions import expect_status

from services.gateway.server import start_gateway
from services.gateway.settings import GatewaySettings
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc

pytestmark = pytest.mark.asyncio(loop_scope="session")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _health_becomes(stack: Stack, status: int) -> None:
    health = health_pb2_grpc.HealthStub(stack.channel)
    async for answer in health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=30):
        if answer.status == status:
            return


async def test_backend_stopped_then_restarted(private_stack: Stack) -> None:
    request = gateway_pb2.ClassifyRequest()
    request.samples.add().ordered.values.extend(load_wine().data[0].tolist())
    await private_stack.stub.Classify(request, timeout=10)
    port = private_stack.model_server.port

    await private_stack.model_server.stop(0)
    # A generous deadline: the answer must be UNAVAILABLE, not a wait until the deadline.
    await expect_status(
        private_stack.stub.Classify(request, timeout=60),
        grpc.StatusCode.UNAVAILABLE,
        "model server is unavailable",
    )
    await expect_status(
        private_stack.stub.ListModels(gateway_pb2.ListModelsRequest(), timeout=60),
        grpc.StatusCode.UNAVAILABLE,
    )
    await _health_becomes(private_stack, NOT_SERVING)

    private_stack.model_server = await start_model_server_for(private_stack.repository, port)
    await _health_becomes(private_stack, SERVING)
    response = await private_stack.stub.Classify(request, timeout=10)
    assert response.model.version == 1


async def test_hung_model_server_leaves_the_clients_deadline_in_force() -> None:
    async def never_answer(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts the connection, never speaks HTTP/2

    hung = await asyncio.start_server(never_answer, "localhost", 0)
    hung_port = hung.sockets[0].getsockname()[1]
    gateway = await start_gateway(
        GatewaySettings(
            port=0,
            model_server=f"localhost:{hung_port}",
            backend_timeout_s=120,
            metrics_port=0,
        )
    )
    request = gateway_pb2.ClassifyRequest()
    request.samples.add().ordered.values.extend(load_wine().data[0].tolist())
    try:
        async with grpc.aio.insecure_channel(f"localhost:{gateway.port}") as channel:
            stub = gateway_pb2_grpc.GatewayServiceStub(channel)
            await expect_status(
                stub.Classify(request, timeout=1.0), grpc.StatusCode.DEADLINE_EXCEEDED
            )
    finally:
        await gateway.stop(0)
        hung.close()
