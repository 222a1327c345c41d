"""Bearer-token authentication for every RPC but health checks.

Kubernetes probes and load balancers call the health service without credentials, so it stays
open; everything else, reflection included, needs ``authorization: Bearer <token>``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health

if TYPE_CHECKING:  # grpc's interceptor class is generic only in its type stubs
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor

_OPEN_SERVICES = (f"/{health.SERVICE_NAME}/",)
_SCHEME = b"bearer "
_MISSING = "missing 'authorization: Bearer <token>' metadata"
_WRONG = "the bearer token is not valid"


class BearerTokenInterceptor(_ServerInterceptor):
    """Refuses calls without the right token with UNAUTHENTICATED."""

    def __init__(self, token: str) -> None:
        self._expected = _digest(token.encode())

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(_OPEN_SERVICES):
            return handler
        problem = self._problem(handler_call_details.invocation_metadata)
        if problem is None:
            return handler
        return _refusal(handler, problem)

    def _problem(self, metadata: Any) -> str | None:
        """Why the call's credentials are refused, or None if they are accepted."""
        values = [value for key, value in metadata or () if key == "authorization"]
        if not values:
            return _MISSING
        value = values[0].encode() if isinstance(values[0], str) else values[0]
        if value[: len(_SCHEME)].lower() != _SCHEME:
            return _MISSING
        # Digests of equal length, compared in constant time: how long a wrong guess takes
        # tells a caller nothing about the token, not even its length.
        if not hmac.compare_digest(_digest(value[len(_SCHEME) :].strip()), self._expected):
            return _WRONG
        return None


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def _refusal(
    handler: grpc.RpcMethodHandler[Any, Any], problem: str
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same kind as ``handler`` that answers UNAUTHENTICATED."""

    async def refuse(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, problem)

    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            refuse,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_stream is not None:  # reflection
        return grpc.stream_stream_rpc_method_handler(
            refuse,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return grpc.unary_unary_rpc_method_handler(
        refuse,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
