"""The gateway's background status checks: one that is slow or fails changes nothing the gateway
serves, and nothing that goes wrong in a refresh ends the refreshing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from method_proxy import MethodProxy
from servers import republish, start_model_server_for
from sklearn.datasets import load_wine

from services.gateway.server import GatewayHandle, start_gateway
from services.gateway.settings import GatewaySettings
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.modelserver.server import ModelServerHandle

pytestmark = pytest.mark.asyncio(loop_scope="session")

REFRESH_S = 0.1
STATUS_TIMEOUT_S = 1.0  # a Classify answers well within it on a loaded machine too


@dataclass
class Proxied:
    repository: Path
    model_server: ModelServerHandle
    proxy: MethodProxy
    gateway: GatewayHandle
    stub: gateway_pb2_grpc.GatewayServiceStub
    health: health_pb2_grpc.HealthStub


@pytest_asyncio.fixture(loop_scope="session")
async def proxied(classifier_repository: Path) -> AsyncIterator[Proxied]:
    """A gateway whose model server sits behind a proxy that can slow its status checks."""
    model_server = await start_model_server_for(classifier_repository)
    proxy = MethodProxy(f"127.0.0.1:{model_server.port}")
    await proxy.start()
    gateway = await start_gateway(
        GatewaySettings(
            port=0,
            model_server=f"ipv4:127.0.0.1:{proxy.port}",
            model_refresh_s=REFRESH_S,
            backend_timeout_s=STATUS_TIMEOUT_S,
            metrics_port=0,
        )
    )
    channel = grpc.aio.insecure_channel(f"localhost:{gateway.port}")
    try:
        yield Proxied(
            classifier_repository,
            model_server,
            proxy,
            gateway,
            gateway_pb2_grpc.GatewayServiceStub(channel),
            health_pb2_grpc.HealthStub(channel),
        )
    finally:
        await channel.close()
        await gateway.stop(0)
        await proxy.close()
        await model_server.stop(0)


def classify_request() -> gateway_pb2.ClassifyRequest:
    request = gateway_pb2.ClassifyRequest()
    request.samples.add().ordered.values.extend(load_wine().data[0].tolist())
    return request


async def version_answering(stub: gateway_pb2_grpc.GatewayServiceStub) -> int:
    return int((await stub.Classify(classify_request(), timeout=5)).model.version)


async def health(proxied: Proxied) -> int:
    answer = await proxied.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    return int(answer.status)


async def until_true(check: object, timeout_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_status_checks_that_time_out_keep_the_serving_version(proxied: Proxied) -> None:
    assert await version_answering(proxied.stub) == 1
    proxied.proxy.delays["GetModelStatus"] = 4 * STATUS_TIMEOUT_S

    async def not_serving() -> bool:
        return await health(proxied) == health_pb2.HealthCheckResponse.NOT_SERVING

    # Refreshes that keep failing show in health, after a few of them.
    await until_true(not_serving)
    # A call that needs no status check is answered on the version known before: the checks
    # that failed did not make the gateway forget it. Its deadline is shorter than one check.
    answer = await proxied.stub.Classify(classify_request(), timeout=STATUS_TIMEOUT_S)
    assert answer.model.version == 1

    proxied.proxy.delays.clear()

    async def serving() -> bool:
        return await health(proxied) == health_pb2.HealthCheckResponse.SERVING

    await until_true(serving)


async def test_the_refresh_survives_any_exception_and_follows_new_versions_after_it(
    proxied: Proxied, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = proxied.gateway.catalog
    refresh_all = catalog.refresh_all
    raised = 0

    async def refresh_failing_twice() -> bool:
        nonlocal raised
        if raised < 2:
            raised += 1
            raise RuntimeError("a defect in a refresh")
        return await refresh_all()

    monkeypatch.setattr(catalog, "refresh_all", refresh_failing_twice)

    async def raised_twice() -> bool:
        return raised >= 2

    await until_true(raised_twice)
    unexpected = proxied.gateway.metrics.registry.get_sample_value(
        "gateway_model_refresh_failures_total", {"reason": "unexpected"}
    )
    assert unexpected is not None and unexpected >= 2
    assert await health(proxied) == health_pb2.HealthCheckResponse.SERVING

    assert await asyncio.to_thread(republish, proxied.repository / "classifier", 1) == 2

    async def on_version_2() -> bool:
        return await version_answering(proxied.stub) == 2

    await until_true(on_version_2)
