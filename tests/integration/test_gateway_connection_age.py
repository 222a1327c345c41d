"""A client's connection to the gateway does not live for ever: past `max_connection_age_s` the
gateway asks the client to reconnect (HTTP/2 GOAWAY), so that behind a Kubernetes Service the
clients of an autoscaled gateway spread over its new pods. The calls on the old connection get
`max_connection_age_grace_s` to finish, and none fails."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from method_proxy import MethodProxy
from servers import start_model_server_for
from sklearn.datasets import load_wine

from services.gateway.server import GatewayHandle, start_gateway
from services.gateway.settings import GatewaySettings
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.modelserver.server import ModelServerHandle

pytestmark = pytest.mark.asyncio(loop_scope="session")

AGE_S = 1.0
GRACE_S = 30.0
HELD_S = 3 * AGE_S  # the held call is still in flight well after the connection's age
WORKERS = 4


class HoldingProxy(MethodProxy):
    """Holds the next Predict call that reaches the model server, when asked to."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.hold_next = False
        self.holding = asyncio.Event()

    async def forward(self, method: str, request: bytes, context: Any) -> bytes:
        if self.hold_next and method.endswith("/Predict"):
            self.hold_next = False
            self.holding.set()
            await asyncio.sleep(HELD_S)
        return await super().forward(method, request, context)


@dataclass
class Aged:
    model_server: ModelServerHandle
    proxy: HoldingProxy
    gateway: GatewayHandle


@pytest_asyncio.fixture(loop_scope="session")
async def aged(classifier_repository: Path) -> AsyncIterator[Aged]:
    model_server = await start_model_server_for(classifier_repository)
    proxy = HoldingProxy(f"127.0.0.1:{model_server.port}")
    await proxy.start()
    gateway = await start_gateway(
        GatewaySettings(
            port=0,
            model_server=f"ipv4:127.0.0.1:{proxy.port}",
            model_refresh_s=0.2,
            metrics_port=0,
            max_connection_age_s=AGE_S,
            max_connection_age_grace_s=GRACE_S,
        )
    )
    try:
        yield Aged(model_server, proxy, gateway)
    finally:
        await gateway.stop(0)
        await proxy.close()
        await model_server.stop(0)


def classify_request() -> gateway_pb2.ClassifyRequest:
    request = gateway_pb2.ClassifyRequest()
    request.samples.add().ordered.values.extend(load_wine().data[0].tolist())
    return request


def classify_peers(records: list[logging.LogRecord]) -> list[str]:
    """The client address of every Classify call, in the order the calls ended."""
    return [r.peer for r in records if getattr(r, "rpc", None) == "Classify"]  # type: ignore[attr-defined]


async def test_a_long_lived_client_moves_to_a_new_connection_and_no_call_fails(
    aged: Aged, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="services.gateway.access")
    request = classify_request()
    async with grpc.aio.insecure_channel(f"localhost:{aged.gateway.port}") as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        await stub.Classify(request, timeout=10)
        [first] = classify_peers(caplog.records)

        # One call held at the model server while the connection it came on reaches its age.
        aged.proxy.hold_next = True
        held = asyncio.ensure_future(stub.Classify(request, timeout=GRACE_S))
        await asyncio.wait_for(aged.proxy.holding.wait(), timeout=10)

        codes: list[grpc.StatusCode] = []

        async def worker() -> None:
            while not held.done():
                try:
                    await stub.Classify(request, timeout=10)
                    codes.append(grpc.StatusCode.OK)
                except grpc.aio.AioRpcError as error:
                    codes.append(error.code())
                await asyncio.sleep(0.01)

        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(WORKERS))), timeout=60)
        assert (await held).model.version == 1

    peers = classify_peers(caplog.records)
    connections = list(dict.fromkeys(peers))
    held_index = len(peers) - 1 - peers[::-1].index(first)  # the held call ended last on it
    print(f"{len(codes) + 2} calls over {len(connections)} connections of one client channel")
    assert set(codes) == {grpc.StatusCode.OK}, codes
    assert len(connections) >= 2, "the client never moved to a new connection"
    # Calls were answered on a newer connection while the held one was still in flight on the
    # first: it was past the connection's age, and it finished within the grace.
    assert any(peer != first for peer in peers[:held_index])
