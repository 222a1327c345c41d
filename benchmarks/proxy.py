"""A bare pass-through gRPC proxy: the floor the gateway's overhead is measured against.

python -m benchmarks.proxy --port 0 --target localhost:8500

Any unary-unary method's request bytes go, unparsed, to the target over one channel, and the
reply's bytes come back; the client's remaining deadline goes on with them, and the target's
status comes back as it was. It prints "Proxy listening on port N" once it serves, as the
gateway does, for a parent process to read. Only grpc and the standard library (and a stop-signal
helper of the same): what one
more Python gRPC hop costs, with no TensorFlow and no message parsing.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import grpc

from services.common.signals import stop_requested

# grpc's handler classes are generic only in its type stubs.
if TYPE_CHECKING:
    GenericRpcHandler = grpc.GenericRpcHandler[bytes, bytes]
else:
    GenericRpcHandler = grpc.GenericRpcHandler

# Whatever the target accepts passes: the proxy sets no message size limits of its own.
_UNLIMITED_MESSAGES = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
]


async def relay(
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes],
    request: bytes,
    context: grpc.aio.ServicerContext[bytes, bytes],
) -> bytes:
    """One call's bytes through ``call``, within what is left of the client's deadline, ending
    with the target's own status and details if it fails."""
    try:
        return await call(request, timeout=context.time_remaining())
    except grpc.aio.AioRpcError as error:
        await context.abort(error.code(), error.details() or "")


class PassThrough(GenericRpcHandler):
    """Answers every method as unary-unary, relaying it over ``channel`` as raw bytes."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel
        # gRPC asks for a method's handler on every call: build each method's once.
        self._handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {}

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[bytes, bytes]:
        method = details.method
        handler = self._handlers.get(method)
        if handler is None:
            # No (de)serializers on either side: bytes in, bytes out.
            call = self._channel.unary_unary(
                method, request_serializer=None, response_deserializer=None
            )

            async def forward(request: bytes, context: Any) -> bytes:
                return await relay(call, request, context)

            handler = grpc.unary_unary_rpc_method_handler(forward)
            self._handlers[method] = handler
        return handler


async def serve(port: int, target: str) -> None:
    """Serves until SIGTERM or SIGINT."""
    async with grpc.aio.insecure_channel(target, options=_UNLIMITED_MESSAGES) as channel:
        server = grpc.aio.server(options=_UNLIMITED_MESSAGES)
        server.add_generic_rpc_handlers([PassThrough(channel)])
        bound = server.add_insecure_port(f"localhost:{port}")
        await server.start()
        print(f"Proxy listening on port {bound}", flush=True)
        await stop_requested()
        await server.stop(grace=1.0)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.proxy", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument("--target", required=True, help="host:port to forward every call to")
    options = parser.parse_args(argv)
    asyncio.run(serve(options.port, options.target))


if __name__ == "__main__":
    main()
