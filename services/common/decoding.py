"""Request bytes that don't parse are the client's error: INVALID_ARGUMENT, not UNKNOWN.

grpc.aio parses a request before it calls the handler, and answers a parse failure (malformed
bytes, invalid UTF-8 in a proto3 string) with UNKNOWN and the exception's text, outside every
layer's handler, so the call is neither counted nor logged. This layer gives each
handler a deserializer that returns a marker instead of raising, and a handler that answers the
marker with INVALID_ARGUMENT from inside the call, where the layers around it count and log it.
Installed last (innermost), so that outer layers refuse a call (UNAUTHENTICATED, UNAVAILABLE)
before its bytes matter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from services.common.calls import Context, written
from services.common.layers import Handler, HandlerLayer

Deserializer = Callable[[bytes], Any]


@dataclass(frozen=True)
class Undecodable:
    """Stands in for a request whose bytes are not a valid message of its type."""

    message: str


def message_type(deserializer: Deserializer) -> str:
    """The full protobuf name of what a generated ``Message.FromString`` parses."""
    descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    return str(getattr(descriptor, "full_name", "request"))


def tolerant(deserializer: Deserializer) -> Deserializer:
    """``deserializer``, returning an Undecodable where it would raise."""
    # A fixed, short message: nothing of the bytes or of the parser's text goes back.
    failed = Undecodable(f"request: the bytes are not a valid {message_type(deserializer)} message")

    def deserialize(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except (DecodeError, UnicodeDecodeError):  # upb and pure-Python protobuf, respectively
            return failed

    return deserialize


def _checked(behaviour: Callable[..., Any]) -> Callable[..., Any]:
    async def check(request: Any, context: Context) -> Any:
        if isinstance(request, Undecodable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        return await behaviour(request, context)

    return check


class RequestDecoding(HandlerLayer):
    """Answers requests that don't parse with INVALID_ARGUMENT, for every unary-request RPC.
    Streamed requests (reflection only) are parsed in the handler's reads and keep gRPC's way."""

    def wrap(self, method: str, handler: Handler) -> Handler:
        if handler.request_streaming or handler.request_deserializer is None:
            return handler
        serializers = {
            "request_deserializer": tolerant(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(_checked(handler.unary_unary), **serializers)
        if handler.unary_stream is not None:
            stream = _checked(written(handler.unary_stream))
            return grpc.unary_stream_rpc_method_handler(stream, **serializers)
        return handler
