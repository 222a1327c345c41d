"""Handlers that refuse a call with a status, in the form of the handler they stand in for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health

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


def refusal(
    handler: grpc.RpcMethodHandler[Any, Any], code: grpc.StatusCode, message: str
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same kind as ``handler`` that answers ``code`` with ``message``."""

    async def refuse(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(code, message)

    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(refuse, **serializers)
    if handler.stream_stream is not None:  # reflection
        return grpc.stream_stream_rpc_method_handler(refuse, **serializers)
    return grpc.unary_unary_rpc_method_handler(refuse, **serializers)
