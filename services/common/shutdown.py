"""Refuses new calls while a server shuts down, and tells when the calls it took have ended.

gRPC's own shutdown cancels the calls that have reached the server but not yet a handler
(grpc/grpc#41785): their clients see CANCELLED, though nothing ran, and do not retry. So a server
closes this gate first: new calls get UNAVAILABLE, which clients retry on another replica, while
the calls already taken finish. Only then is gRPC stopped, with nothing left for it to cancel
but calls that arrive in that very moment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import grpc

from services.common.calls import Context, written
from services.common.layers import Handler, HandlerLayer
from services.common.refusal import HEALTH_METHODS, checked_first

log = logging.getLogger(__name__)

SHUTTING_DOWN = "shutting down; retry the call"
# How long the gate refuses calls, at least, before gRPC stops: calls that arrived while the
# server was busy beginning its stop are then refused cleanly rather than cancelled by gRPC.
MIN_REFUSING_S = 0.1


class ShutdownGate(HandlerLayer):
    """Admits calls until closed, then refuses new ones with UNAVAILABLE; counts the admitted
    calls until they end. Health checks always pass, so probes see NOT_SERVING."""

    def __init__(self, server_name: str) -> None:
        self._refusal_message = f"the {server_name} is {SHUTTING_DOWN}"
        self._closed = False
        self._closed_at = 0.0
        self._admitted = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._closed_at = time.monotonic()

    async def wait_for_calls(self, grace_s: float | None) -> float | None:
        """After `close`: waits up to `grace_s` seconds for the admitted calls to end, and for
        the gate to have refused calls for MIN_REFUSING_S; returns what is left of the grace for
        gRPC's own stop. None or 0: waits for nothing."""
        if not grace_s:
            return grace_s
        started = time.monotonic()
        try:
            await asyncio.wait_for(self._idle.wait(), grace_s)
        except TimeoutError:
            log.warning("calls still running after %.1f s are cancelled", grace_s)
        refusing_s = time.monotonic() - self._closed_at
        left_s = grace_s - (time.monotonic() - started)
        await asyncio.sleep(max(0.0, min(MIN_REFUSING_S - refusing_s, left_s)))
        return max(0.0, grace_s - (time.monotonic() - started))

    def wrap(self, method: str, handler: Handler) -> Handler:
        if method.startswith(HEALTH_METHODS):
            return handler
        return checked_first(self._counted(handler), self._refuse_once_closed)

    async def _refuse_once_closed(self, context: Context) -> None:
        if self._closed:
            await context.abort(grpc.StatusCode.UNAVAILABLE, self._refusal_message)

    def _counted(self, handler: Handler) -> Handler:
        serializers = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            async def counted_unary(request: Any, context: Any) -> Any:
                self._admit()
                try:
                    return await unary(request, context)
                finally:
                    self._release()

            return grpc.unary_unary_rpc_method_handler(counted_unary, **serializers)
        if handler.unary_stream is not None:
            # As a writer (services.common.calls), so that the count drops when the call ends,
            # cancelled or not, rather than when a suspended generator is collected.
            stream = written(handler.unary_stream)

            async def counted_stream(request: Any, context: Any) -> None:
                self._admit()
                try:
                    await stream(request, context)
                finally:
                    self._release()

            return grpc.unary_stream_rpc_method_handler(counted_stream, **serializers)
        # Reflection's streams: refused once closed, and not waited for.
        return handler

    # A pair rather than a context manager: this runs on every call.
    def _admit(self) -> None:
        self._admitted += 1
        self._idle.clear()

    def _release(self) -> None:
        self._admitted -= 1
        if self._admitted == 0:
            self._idle.set()
