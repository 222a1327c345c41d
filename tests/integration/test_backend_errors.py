"""Every status a model server can answer reaches the gateway's client as the code its table
says, with the gateway's own fixed message: never the model server's text, which goes to the
gateway's log. A real gateway in front of a fake TensorFlow Serving that answers Predict with
the status under test."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from fake_model_server import RunningFake, serve_fake
from status_assertions import expect_status

from services.gateway.server import GatewayHandle, start_gateway
from services.gateway.settings import GatewaySettings
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc

pytestmark = pytest.mark.asyncio(loop_scope="session")

Code = grpc.StatusCode
SUBJECT = "model classifier version 1"
# What TensorFlow Serving or TensorFlow would say; none of it may reach the client.
BACKEND_TEXT = "backend-only text: Expects arg[0] to be float but double is provided"

# model server code -> (code the client gets, what its message says)
MAPPING: dict[grpc.StatusCode, tuple[grpc.StatusCode, str]] = {
    Code.CANCELLED: (Code.UNAVAILABLE, "model server is unavailable (it is shutting down)"),
    Code.UNKNOWN: (Code.INTERNAL, f"model server failed (UNKNOWN) for {SUBJECT}"),
    Code.INVALID_ARGUMENT: (
        Code.FAILED_PRECONDITION,
        f"{SUBJECT} refused the inputs the gateway built from its metadata",
    ),
    Code.DEADLINE_EXCEEDED: (
        Code.DEADLINE_EXCEEDED,
        f"passed while waiting for the model server to answer for {SUBJECT}",
    ),
    Code.NOT_FOUND: (Code.NOT_FOUND, f"{SUBJECT} is not loaded in the model server"),
    Code.ALREADY_EXISTS: (Code.INTERNAL, f"model server failed (ALREADY_EXISTS) for {SUBJECT}"),
    Code.PERMISSION_DENIED: (
        Code.INTERNAL,
        f"model server failed (PERMISSION_DENIED) for {SUBJECT}",
    ),
    Code.RESOURCE_EXHAUSTED: (Code.RESOURCE_EXHAUSTED, f"{SUBJECT} is overloaded"),
    Code.FAILED_PRECONDITION: (Code.FAILED_PRECONDITION, f"{SUBJECT} cannot serve this call"),
    Code.ABORTED: (Code.UNAVAILABLE, f"model server aborted the call for {SUBJECT}"),
    Code.OUT_OF_RANGE: (
        Code.FAILED_PRECONDITION,
        f"{SUBJECT} refused the inputs the gateway built from its metadata",
    ),
    Code.UNIMPLEMENTED: (Code.INTERNAL, f"model server failed (UNIMPLEMENTED) for {SUBJECT}"),
    Code.INTERNAL: (Code.INTERNAL, f"model server failed (INTERNAL) for {SUBJECT}"),
    Code.UNAVAILABLE: (Code.UNAVAILABLE, "model server is unavailable"),
    Code.DATA_LOSS: (Code.INTERNAL, f"model server failed (DATA_LOSS) for {SUBJECT}"),
    Code.UNAUTHENTICATED: (
        Code.INTERNAL,
        f"model server failed (UNAUTHENTICATED) for {SUBJECT}",
    ),
}
# Codes whose model server text is worth a line in the gateway's log; the others are routine
# (a rollout, an outage, a deadline) and counted in the metrics instead.
ROUTINE = {Code.CANCELLED, Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.NOT_FOUND}


@pytest_asyncio.fixture(loop_scope="session")
async def fake() -> AsyncIterator[RunningFake]:
    async for running in serve_fake():
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def gateway(fake: RunningFake) -> AsyncIterator[GatewayHandle]:
    handle = await start_gateway(
        GatewaySettings(port=0, model_server=f"localhost:{fake.port}", metrics_port=0)
    )
    yield handle
    await handle.stop(0)


def classify_request() -> gateway_pb2.ClassifyRequest:
    request = gateway_pb2.ClassifyRequest()
    request.samples.add().ordered.values.extend([13.2, 1.8, 2.4])
    return request


async def test_every_code_but_ok_is_tried() -> None:
    assert set(MAPPING) == set(grpc.StatusCode) - {grpc.StatusCode.OK}


@pytest.mark.parametrize("backend_code", list(MAPPING), ids=lambda code: code.name)
async def test_a_model_server_status_reaches_the_client_as_its_row_says(
    backend_code: grpc.StatusCode,
    fake: RunningFake,
    gateway: GatewayHandle,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client_code, message = MAPPING[backend_code]
    fake.servicer.fail_always(backend_code, BACKEND_TEXT)
    caplog.set_level(logging.WARNING, logger="services.gateway.backend")
    async with grpc.aio.insecure_channel(f"localhost:{gateway.port}") as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        details = await expect_status(
            stub.Classify(classify_request(), timeout=10), client_code, message
        )
    assert "backend-only" not in details
    logged = [r.getMessage() for r in caplog.records if r.name == "services.gateway.backend"]
    if backend_code in ROUTINE:
        assert logged == []
    else:
        assert any(backend_code.name in line and BACKEND_TEXT in line for line in logged), logged


async def test_a_healthy_model_server_is_answered_normally(
    fake: RunningFake, gateway: GatewayHandle
) -> None:
    async with grpc.aio.insecure_channel(f"localhost:{gateway.port}") as channel:
        response = await gateway_pb2_grpc.GatewayServiceStub(channel).Classify(
            classify_request(), timeout=10
        )
    assert response.model.version == 1


@pytest.mark.parametrize(
    ("client_timeout_s", "origin"),
    [
        (None, "the gateway's default deadline of 5 s (--backend_timeout_s; the call set none)"),
        (10, "the call's deadline ("),
    ],
    ids=["default", "the call's"],
)
async def test_a_deadline_passed_at_the_model_server_says_what_set_it(
    client_timeout_s: float | None, origin: str, fake: RunningFake, gateway: GatewayHandle
) -> None:
    fake.servicer.fail_always(Code.DEADLINE_EXCEEDED, BACKEND_TEXT)
    async with grpc.aio.insecure_channel(f"localhost:{gateway.port}") as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        details = await expect_status(
            stub.Classify(classify_request(), timeout=client_timeout_s),
            Code.DEADLINE_EXCEEDED,
            origin,
        )
    assert details.endswith(f"passed while waiting for the model server to answer for {SUBJECT}")
