"""The one place where domain errors become gRPC status codes.

A layer (services/common/layers.py) wraps every RPC handler: domain errors abort with their
code and their message; anything unexpected aborts with INTERNAL and a fixed message while the
trace goes to the log. The same wrapper does each RPC's bookkeeping: its request id, metrics
and access-log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, NoReturn

import grpc
from prometheus_client import Counter

from services.common.bounded import bound_message
from services.common.calls import written
from services.common.layers import Handler, HandlerLayer
from services.common.refusal import HEALTH_METHODS
from services.gateway import errors
from services.gateway.logs import REQUEST_ID_KEY, current_request_id, request_id_from
from services.gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)
# One DEBUG line per RPC (--log_level=DEBUG); its own logger, so it can be set apart.
access_log = logging.getLogger("services.gateway.access")

STATUS_BY_ERROR: dict[type[errors.GatewayError], grpc.StatusCode] = {
    errors.InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    errors.ModelNotFound: grpc.StatusCode.NOT_FOUND,
    errors.UnknownWord: grpc.StatusCode.NOT_FOUND,
    errors.VersionUnloaded: grpc.StatusCode.ABORTED,
    errors.ModelNotReady: grpc.StatusCode.UNAVAILABLE,
    errors.BackendUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.BackendOverloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.ModelContractError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.BackendError: grpc.StatusCode.INTERNAL,
}
INTERNAL_MESSAGE = "internal error; the gateway logged the details"


def status_for(error: errors.GatewayError) -> grpc.StatusCode:
    for error_type in type(error).__mro__:
        if error_type in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[error_type]
    return grpc.StatusCode.INTERNAL


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: Exception) -> NoReturn:
    if isinstance(exc, errors.GatewayError):
        # Messages shorten what they echo; this bound holds for any that does not.
        await context.abort(status_for(exc), bound_message(exc.message))
    log.exception("unexpected error in %s", type(exc).__name__)
    await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)


def _code_of(exc: BaseException) -> grpc.StatusCode:
    if isinstance(exc, errors.GatewayError):
        return status_for(exc)
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.INTERNAL


def _cancelled_code(context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
    """Why gRPC cancelled a handler: grpc.aio cancels it both when the client cancels and when
    the client's deadline passes. Only the deadline, Python-side state, tells them apart."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= _DEADLINE_SLACK_S:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED


# The server's deadline timer and the clock read here may differ by a little.
_DEADLINE_SLACK_S = 0.001


class ErrorMappingInterceptor(HandlerLayer):
    """Maps exceptions escaping unary-unary and unary-stream handlers to status codes; tags
    every RPC with a request id, counts and times it by its outcome and logs one line for it."""

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
                    code = _code_of(exc)
                    await _abort(context, exc)
            except asyncio.CancelledError:
                code = _cancelled_code(context)
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
