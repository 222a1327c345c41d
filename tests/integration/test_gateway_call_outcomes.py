"""A call whose client deadline passes is logged and counted as DEADLINE_EXCEEDED, one the
client cancels as CANCELLED: grpc.aio cancels the handler in both cases, so the gateway's
interceptor has to tell them apart. Access lines are DEBUG lines, and health checks, which
are no client's traffic, are neither logged nor counted.

A real grpc.aio server with the gateway's RpcLayer, in front of handlers that
never finish on their own: whatever ends them is the client's deadline or its cancel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from status_assertions import expect_status

from services.gateway.metrics import GatewayMetrics
from services.gateway.transport.rpc_layer import RpcLayer
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Long enough that the call reaches its handler before it expires, on a loaded machine too:
# a deadline that passes first ends the call with no handler, no access line and no count.
DEADLINE_S = 1.0


class NeverAnswers(gateway_pb2_grpc.GatewayServiceServicer):
    def __init__(self) -> None:
        self.classifying = asyncio.Event()  # a Classify handler is running

    async def Classify(
        self, request: gateway_pb2.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ClassifyResponse:
        self.classifying.set()
        await asyncio.sleep(3600)
        raise AssertionError("not reached")

    async def StreamForecast(
        self, request: gateway_pb2.StreamForecastRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[gateway_pb2.StreamForecastResponse]:
        yield gateway_pb2.StreamForecastResponse()
        await asyncio.sleep(3600)


class Served:
    def __init__(
        self, metrics: GatewayMetrics, servicer: NeverAnswers, channel: grpc.aio.Channel
    ) -> None:
        self.metrics = metrics
        self.servicer = servicer
        self.stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)

    def count(self, rpc: str, code: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "gateway_requests_total", {"rpc": rpc, "code": code}
        )
        return value or 0.0


@pytest_asyncio.fixture(loop_scope="session")
async def served() -> AsyncIterator[Served]:
    metrics = GatewayMetrics()
    server = grpc.aio.server(interceptors=[RpcLayer(metrics)])
    servicer = NeverAnswers()
    gateway_pb2_grpc.add_GatewayServiceServicer_to_server(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("localhost:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"localhost:{port}") as channel:
        await channel.channel_ready()  # the calls' deadlines are not spent on connecting
        yield Served(metrics, servicer, channel)
    await server.stop(None)


async def access_codes(caplog: pytest.LogCaptureFixture, rpc: str) -> list[str]:
    """The codes of the RPC's access lines, once there is one: the server writes it when the
    handler has unwound, which may be just after the client saw the call end."""
    for _ in range(100):
        codes = [
            getattr(r, "code", None)
            for r in caplog.records
            if r.name == "services.gateway.access" and getattr(r, "rpc", None) == rpc
        ]
        if codes:
            return [str(code) for code in codes]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no access line for {rpc}")


@pytest.fixture(autouse=True)
def _access_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="services.gateway.access")


# gRPC sends a deadline rounded up to three significant digits (1 ms steps below 1 s, 10 ms
# steps from 1 s), so the client's own cancel at its deadline reaches the server a little before
# the server's deadline: from 1 s on, most often.
@pytest.mark.parametrize("deadline_s", [0.5, DEADLINE_S, 2.5])
async def test_an_expired_deadline_is_logged_and_counted_as_deadline_exceeded(
    served: Served, caplog: pytest.LogCaptureFixture, deadline_s: float
) -> None:
    await expect_status(
        served.stub.Classify(gateway_pb2.ClassifyRequest(), timeout=deadline_s),
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "Deadline Exceeded",
    )
    assert await access_codes(caplog, "Classify") == ["DEADLINE_EXCEEDED"]
    assert served.count("Classify", "DEADLINE_EXCEEDED") == 1
    assert served.count("Classify", "CANCELLED") == 0


async def test_a_stream_whose_deadline_expires_is_deadline_exceeded(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    stream = served.stub.StreamForecast(gateway_pb2.StreamForecastRequest(), timeout=DEADLINE_S)
    await stream.read()
    await expect_status(stream.read(), grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    assert await access_codes(caplog, "StreamForecast") == ["DEADLINE_EXCEEDED"]
    assert served.count("StreamForecast", "DEADLINE_EXCEEDED") == 1


@pytest.mark.parametrize("deadline_s", [None, 30.0], ids=["no deadline", "deadline far off"])
async def test_a_call_the_client_cancels_stays_cancelled(
    served: Served, caplog: pytest.LogCaptureFixture, deadline_s: float | None
) -> None:
    call = served.stub.Classify(gateway_pb2.ClassifyRequest(), timeout=deadline_s)
    await asyncio.wait_for(served.servicer.classifying.wait(), 30)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await access_codes(caplog, "Classify") == ["CANCELLED"]
    assert served.count("Classify", "CANCELLED") == 1
    assert served.count("Classify", "DEADLINE_EXCEEDED") == 0


async def test_access_lines_are_debug_lines(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    await asyncio.sleep(0.3)  # the lines of the calls before have been written
    caplog.set_level(logging.INFO, logger="services.gateway.access")
    caplog.clear()
    await expect_status(
        served.stub.Classify(gateway_pb2.ClassifyRequest(), timeout=DEADLINE_S),
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "Deadline Exceeded",
    )
    # Counted, as every call is, once the server has seen the handler end.
    for _ in range(100):
        if served.count("Classify", "DEADLINE_EXCEEDED") == 1:
            break
        await asyncio.sleep(0.02)
    assert served.count("Classify", "DEADLINE_EXCEEDED") == 1
    assert [r for r in caplog.records if r.name == "services.gateway.access"] == []


async def test_health_checks_are_neither_logged_nor_counted(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    await served.health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    watch = served.health.Watch(health_pb2.HealthCheckRequest(), timeout=5)
    await watch.read()
    watch.cancel()  # as a watching client goes away
    await served.stub.Classify(gateway_pb2.ClassifyRequest(), timeout=DEADLINE_S).code()
    await access_codes(caplog, "Classify")  # the last call's line is written by now
    access = [r for r in caplog.records if r.name == "services.gateway.access"]
    logged = {getattr(r, "rpc", None) for r in access}
    assert logged == {"Classify"}
    counted = {
        sample.labels["rpc"]
        for family in served.metrics.requests.collect()
        for sample in family.samples
    }
    assert "Check" not in counted and "Watch" not in counted
