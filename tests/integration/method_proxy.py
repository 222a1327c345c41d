"""A gRPC pass-through in front of a model server that can hold back chosen methods: a status
check slowed by a busy machine, while every other call goes straight through."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc


class MethodProxy:
    """Forwards every call's bytes to `upstream`; a method named in `delays` (by its last path
    part, e.g. "GetModelStatus") waits that many seconds first."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.delays: dict[str, float] = {}
        self.port = 0
        self._channel = grpc.aio.insecure_channel(upstream)
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers([_Forwarder(self)])

    async def start(self) -> None:
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()

    async def close(self) -> None:
        await self._server.stop(None)
        await self._channel.close()

    async def forward(self, method: str, request: bytes, context: Any) -> bytes:
        await asyncio.sleep(self.delays.get(method.rsplit("/", 1)[-1], 0.0))
        try:
            answer: bytes = await self._channel.unary_unary(method)(
                request, timeout=context.time_remaining()
            )
        except grpc.aio.AioRpcError as error:
            await context.abort(error.code(), error.details() or "")
        return answer


class _Forwarder(grpc.GenericRpcHandler):
    def __init__(self, proxy: MethodProxy) -> None:
        self._proxy = proxy

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any]:
        method = details.method

        async def forward(request: bytes, context: Any) -> bytes:
            return await self._proxy.forward(method, request, context)

        return grpc.unary_unary_rpc_method_handler(forward)
