"""Handlers that may refuse a call with a status, in the form of the handler they stand in for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health

from services.common.calls import Context, written

# grpc's interceptor and handler classes are generic only in its type stubs. Continuation is
# what an interceptor calls for the handler of the next interceptor, or of the service.
if TYPE_CHECKING:
    ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
    Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]]
else:
    ServerInterceptor = grpc.aio.ServerInterceptor
    Continuation = Callable

# Kubernetes probes and load balancers call the health service as it is: never refused.
HEALTH_METHODS = (f"/{health.SERVICE_NAME}/",)


# Runs as a call starts: aborts it (a refusal) or returns to let it go on.
CallCheck = Callable[[grpc.aio.ServicerContext[Any, Any]], Awaitable[None]]


def checked_first(
    handler: grpc.RpcMethodHandler[Any, Any], check: CallCheck
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same kind as ``handler`` that runs ``check`` before each call of it.

    Streaming handlers run in the writer form (services.common.calls), so what wraps them ends
    with the call.
    """
    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        unary: Callable[..., Any] = handler.unary_unary

        async def checked_unary(request: Any, context: Context) -> Any:
            await check(context)
            return await unary(request, context)

        return grpc.unary_unary_rpc_method_handler(checked_unary, **serializers)
    if handler.stream_unary is not None:
        stream_in: Callable[..., Any] = handler.stream_unary

        async def checked_stream_in(requests: Any, context: Context) -> Any:
            await check(context)
            return await stream_in(requests, context)

        return grpc.stream_unary_rpc_method_handler(checked_stream_in, **serializers)
    streams = handler.unary_stream or handler.stream_stream
    assert streams is not None
    write = written(streams)

    async def checked_stream(request: Any, context: Context) -> None:
        await check(context)
        await write(request, context)

    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(checked_stream, **serializers)
    return grpc.stream_stream_rpc_method_handler(checked_stream, **serializers)
