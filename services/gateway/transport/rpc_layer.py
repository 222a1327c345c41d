"""The layer every RPC of the gateway passes through (services/common/layers.py): it tags the
call with its request id, counts and times it by its outcome, logs its access line, and turns
what escapes the handler into a status code (transport/status.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from prometheus_client import Counter

from services.common.calls import written
from services.common.layers import Handler, HandlerLayer
from services.common.refusal import HEALTH_METHODS
from services.gateway.logs import REQUEST_ID_KEY, current_request_id, request_id_from
from services.gateway.metrics import GatewayMetrics
from services.gateway.transport.status import abort_with_status, cancelled_code, code_of

# One DEBUG line per RPC (--log_level=DEBUG); its own logger, so it can be set apart.
access_log = logging.getLogger("services.gateway.access")


class RpcLayer(HandlerLayer):
    """Wraps unary-unary and unary-stream handlers: tags every RPC with a request id, counts
    and times it by its outcome, logs one line for it, and maps what escapes to a status."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics
        # Only the event loop changes it; the metrics thread reads it when scraped.
        self._in_flight = 0
        metrics.requests_in_flight.set_function(lambda: self._in_flight)

    def wrap(self, method: str, handler: Handler) -> Handler:
        if method.startswith(HEALTH_METHODS):
            # Probes and watches are no client's traffic: not in the requests' numbers or log.
            return handler
        rpc = method.rsplit("/", 1)[-1]
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._guard(rpc, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            # A yielding handler runs as a writer (services.common.calls): its bookkeeping then
            # happens in the call's task, while the call is alive, also when it is cancelled.
            return grpc.unary_stream_rpc_method_handler(
                self._guard(rpc, written(handler.unary_stream)),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _guard(self, rpc: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        # The method's metric children, bound once rather than looked up on every call.
        seconds = self._metrics.request_seconds.labels(rpc)
        answered = _ChildrenByCode(self._metrics.requests, rpc)

        async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            # The access line's peer is read now, while the call is alive: by the time the call
            # has ended, its core object may be gone (services.common.calls). No line, no read.
            peer = context.peer() if access_log.isEnabledFor(logging.DEBUG) else None
            request_id = request_id_from(context.invocation_metadata())
            # gRPC runs each RPC in a task of its own, so the id stays with this request's log
            # records and model server calls, and goes with the task (no reset needed).
            current_request_id.set(request_id)
            context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
            code = grpc.StatusCode.OK
            started = time.perf_counter()
            self._in_flight += 1
            try:
                try:
                    return await behaviour(request, context)
                except grpc.aio.AbortError:
                    code = context.code() or grpc.StatusCode.UNKNOWN
                    raise
                except Exception as exc:
                    code = code_of(exc)
                    await abort_with_status(context, exc)
            except asyncio.CancelledError:
                code = cancelled_code(context, time.perf_counter() - started)
                raise
            finally:
                elapsed = time.perf_counter() - started
                self._in_flight -= 1
                seconds.observe(elapsed)
                answered[code].inc()
                if peer is not None:
                    _log_access(rpc, code, elapsed, peer)

        return guarded


def _log_access(rpc: str, code: grpc.StatusCode, elapsed_s: float, peer: str) -> None:
    access_log.debug(
        "%s %s",
        rpc,
        code.name,
        extra={
            "rpc": rpc,
            "code": code.name,
            "duration_ms": round(elapsed_s * 1000, 3),
            "peer": peer,
        },
    )


class _ChildrenByCode(dict[grpc.StatusCode, Counter]):
    """One method's request counters by status code, each labelled the first time it is used."""

    def __init__(self, requests: Counter, rpc: str) -> None:
        super().__init__()
        self._requests = requests
        self._rpc = rpc

    def __missing__(self, code: grpc.StatusCode) -> Counter:
        child = self[code] = self._requests.labels(self._rpc, code.name)
        return child
