"""Layered: each method's handler is wrapped in the layers once, not on every call, and the
layers run on every call in their order, outermost first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from services.common.layers import Handler, HandlerLayer, Layered
from services.common.refusal import checked_first

pytestmark = pytest.mark.integration

UNARY = "/test.Echo/Call"
STREAM = "/test.Echo/Stream"


class Recording(HandlerLayer):
    """Notes each wrap, and each call as it passes this layer."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.wrapped: list[str] = []

    def wrap(self, method: str, handler: Handler) -> Handler:
        self.wrapped.append(method)
        return checked_first(handler, self._note)

    async def _note(self, context: Any) -> None:
        self.log.append(self.name)


async def _echo(request: bytes, context: Any) -> bytes:
    return request


async def _repeat(request: bytes, context: Any) -> AsyncIterator[bytes]:
    for _ in range(3):
        yield request


@pytest.fixture
async def layered_server() -> AsyncIterator[tuple[int, list[Recording], list[str]]]:
    log: list[str] = []
    layers = [Recording("outer", log), Recording("inner", log)]
    server = grpc.aio.server()
    Layered(server, layers).add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Echo",
                {
                    "Call": grpc.unary_unary_rpc_method_handler(_echo),
                    "Stream": grpc.unary_stream_rpc_method_handler(_repeat),
                },
            )
        ]
    )
    port = server.add_insecure_port("localhost:0")
    await server.start()
    yield port, layers, log
    await server.stop(None)


async def test_each_method_is_wrapped_once_and_its_layers_run_on_every_call(
    layered_server: tuple[int, list[Recording], list[str]],
) -> None:
    port, layers, log = layered_server
    async with grpc.aio.insecure_channel(f"localhost:{port}") as channel:
        call = channel.unary_unary(UNARY)
        stream = channel.unary_stream(STREAM)
        for _ in range(5):
            assert await call(b"hi", timeout=5) == b"hi"
        assert [answer async for answer in stream(b"yo", timeout=5)] == [b"yo"] * 3
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await channel.unary_unary("/test.Echo/Missing")(b"", timeout=5)
    assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
    for layer in layers:
        assert sorted(layer.wrapped) == [UNARY, STREAM]
    assert log == ["outer", "inner"] * 6
