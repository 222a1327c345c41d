"""SIGTERM to a gateway process under load: health turns NOT_SERVING, new calls are refused,
every call in flight is answered in full, and the process exits cleanly."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from servers import Stack

from services.common.shutdown import SHUTTING_DOWN
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc

pytestmark = pytest.mark.asyncio(loop_scope="session")

IN_FLIGHT = 32
# 32 streams of 120 window steps run for seconds after the SIGTERM, which the test needs
# them to outlast; 240 doubled the test's time and proved nothing more.
HORIZON = 120
PORT_LINE = re.compile(r"Gateway listening on port (\d+)")
METRICS_LINE = re.compile(r"metrics at http://localhost:(\d+)/metrics")
HISTORY = [float(100 + (i % 12) * 10) for i in range(48)]


async def start_gateway_process(
    model_server_port: int,
) -> tuple[asyncio.subprocess.Process, int, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.gateway",
        "--port=0",
        "--metrics_port=0",
        f"--model_server=localhost:{model_server_port}",
        "--model_refresh_s=0.2",
        "--shutdown_grace_s=60",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    port = metrics_port = 0
    while not (port and metrics_port):
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert line, "the gateway exited before it reported its ports"
        if match := PORT_LINE.search(line):
            port = int(match.group(1))
        if match := METRICS_LINE.search(line):
            metrics_port = int(match.group(1))
    return process, port, metrics_port


def in_flight(metrics_port: int) -> float:
    with urllib.request.urlopen(f"http://localhost:{metrics_port}/metrics", timeout=5) as page:
        text = page.read().decode()
    [line] = [ln for ln in text.splitlines() if ln.startswith("gateway_requests_in_flight ")]
    return float(line.split()[1])


async def wait_until_in_flight(metrics_port: int, count: int) -> None:
    for _ in range(6000):
        if await asyncio.to_thread(in_flight, metrics_port) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never {count} calls in flight")


async def refused_soon(stub: gateway_pb2_grpc.GatewayServiceStub) -> tuple[grpc.StatusCode, str]:
    """The code and message a new call is refused with, once the gateway refuses them."""
    for _ in range(100):
        try:
            await stub.ListModels(gateway_pb2.ListModelsRequest(), timeout=10)
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details() or ""
        await asyncio.sleep(0.02)
    raise AssertionError("new calls were still taken")


async def long_forecast(stub: gateway_pb2_grpc.GatewayServiceStub) -> int:
    """A forecast by the naive window method: one model call per value, so it takes a while."""
    request = gateway_pb2.StreamForecastRequest(
        history=HISTORY, horizon=HORIZON, method=gateway_pb2.GENERATION_METHOD_WINDOW
    )
    return len([point async for point in stub.StreamForecast(request, timeout=120)])


async def test_sigterm_answers_every_call_in_flight_and_refuses_new_ones(
    shared_stack: Stack,
) -> None:
    process, port, metrics_port = await start_gateway_process(shared_stack.model_server.port)
    channel = grpc.aio.insecure_channel(f"localhost:{port}")
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    try:
        await stub.ListModels(gateway_pb2.ListModelsRequest(), timeout=30, wait_for_ready=True)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=120)
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING

        calls = [asyncio.create_task(long_forecast(stub)) for _ in range(IN_FLIGHT)]
        await wait_until_in_flight(metrics_port, IN_FLIGHT)  # a health watch is not counted
        process.send_signal(signal.SIGTERM)

        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()
        # Health turns first; the gateway refuses new calls a moment later, itself, not by
        # gRPC's shutdown, which would cancel some of them instead (grpc/grpc#41785).
        assert await refused_soon(stub) == (
            grpc.StatusCode.UNAVAILABLE,
            f"the gateway is {SHUTTING_DOWN}",
        )
        assert not all(call.done() for call in calls), "the calls ended before the test could see"

        assert await asyncio.gather(*calls) == [HORIZON] * IN_FLIGHT
        assert await asyncio.wait_for(process.wait(), 60) == 0
    finally:
        await channel.close()
        if process.returncode is None:
            process.kill()
            await process.wait()
