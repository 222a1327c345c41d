"""The one place where domain errors become gRPC status codes.

Domain errors abort a call with their code and their message; anything unexpected aborts with
INTERNAL and a fixed message while the trace goes to the log. transport/rpc_layer.py applies this
to every RPC.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, NoReturn

import grpc

from services.common.bounded import bound_message
from services.gateway import errors

log = logging.getLogger(__name__)

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
    """The code of the error's class, or of the nearest base class that has one."""
    for error_type in type(error).__mro__:
        if error_type in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[error_type]
    return grpc.StatusCode.INTERNAL


async def abort_with_status(
    context: grpc.aio.ServicerContext[Any, Any], exc: Exception
) -> NoReturn:
    """Ends the call with the error's status and message, or INTERNAL for anything else."""
    if isinstance(exc, errors.GatewayError):
        # Messages shorten what they echo; this bound holds for any that does not.
        await context.abort(status_for(exc), bound_message(exc.message))
    log.exception("unexpected error in %s", type(exc).__name__)
    await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)


def code_of(exc: BaseException) -> grpc.StatusCode:
    """The status a call that raised ``exc`` ends with."""
    if isinstance(exc, errors.GatewayError):
        return status_for(exc)
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.INTERNAL


def cancelled_code(
    context: grpc.aio.ServicerContext[Any, Any], elapsed_s: float
) -> grpc.StatusCode:
    """Why gRPC cancelled a handler: grpc.aio cancels it both when the client cancels and when
    the client's deadline passes. Only the deadline, Python-side state, tells them apart.
    ``elapsed_s`` is how long the handler ran, so the call's whole deadline is derived here, on
    the cancel path, and nothing is read for the calls that complete."""
    remaining = context.time_remaining()
    if remaining is None:
        return grpc.StatusCode.CANCELLED
    if remaining <= _DEADLINE_SHARE * (remaining + elapsed_s) + _DEADLINE_SLACK_S:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED


# When a client's deadline passes, its cancel reaches the server while the server's own deadline
# still has a little to run, for two reasons. gRPC sends the deadline as a grpc-timeout of three
# significant digits, rounded up (1 ms steps below 1 s, 10 ms steps below 10 s, ...): up to 1%
# of it. And the server's deadline starts when it reads the call's headers, which a loaded
# server does later than the client sent them: measured, 20 ms of a 1 s deadline with 20 calls
# at once. So a cancel in the last 5% of the call's deadline is its deadline passing (the
# network's own delay counts on both sides). The slack covers the clocks and the 1 ms steps.
_DEADLINE_SHARE = 0.05
_DEADLINE_SLACK_S = 0.002
