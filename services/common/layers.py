"""Layers around a server's handlers (auth, shutdown, decoding, error mapping), wrapped once.

A grpc.aio interceptor runs on every call: it awaits the next one's handler and builds a new
wrapped handler each time, which on a small request costs about as much as the rest of the
gateway's own work. A `HandlerLayer` instead wraps a method's handler in `wrap`, and makes what
depends on the call (its metadata, the server's state) inside the wrapped handler, when the call
runs. So the wrapping can be done once per method, as `Layered` does when services register, and
each call runs only the layers' own checks. A layer still works as an interceptor as well.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from services.common.refusal import Continuation, ServerInterceptor

# Generic only in grpc's type stubs, as in services.common.refusal.
if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]
    GenericHandler = grpc.GenericRpcHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
    GenericHandler = grpc.GenericRpcHandler


class HandlerLayer(ServerInterceptor):
    """One layer: `wrap` gives a method's handler with the layer around it."""

    def wrap(self, method: str, handler: Handler) -> Handler:
        raise NotImplementedError

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return self.wrap(handler_call_details.method, handler)


class Layered:
    """Registers services on a grpc.aio server with each method's handler wrapped in the layers
    (outermost first) once: when it registers, or on its first call for a generic handler.

    It stands in for the server where a generated ``add_*Servicer_to_server`` takes one.
    """

    def __init__(self, server: grpc.aio.Server, layers: Sequence[HandlerLayer]) -> None:
        self._server = server
        self._layers = tuple(reversed(layers))  # innermost first, as they are applied

    def wrap(self, method: str, handler: Handler) -> Handler:
        for layer in self._layers:
            handler = layer.wrap(method, handler)
        return handler

    def add_generic_rpc_handlers(self, handlers: Sequence[GenericHandler]) -> None:
        self._server.add_generic_rpc_handlers(
            tuple(_LayeredGeneric(handler, self.wrap) for handler in handlers)
        )

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: dict[str, Handler]
    ) -> None:
        # grpc-stubs lack it; grpc.aio.Server has it since grpcio 1.63.
        self._server.add_registered_method_handlers(  # type: ignore[attr-defined]
            service_name,
            {
                name: self.wrap(f"/{service_name}/{name}", handler)
                for name, handler in method_handlers.items()
            },
        )


class _LayeredGeneric(GenericHandler):
    def __init__(self, inner: GenericHandler, wrap: Callable[[str, Handler], Handler]):
        self._inner = inner
        self._wrap = wrap
        # Only methods the service has: a client's made-up names must not fill it.
        self._wrapped: dict[str, Handler] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = self._inner.service(handler_call_details)
            if handler is None:
                return None
            wrapped = self._wrapped[method] = self._wrap(method, handler)
        return wrapped
