"""The one place where domain errors become gRPC status codes."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from services.common.bounded import bound_message
from services.modelserver.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ServingError,
    TensorFlowRuntimeError,
    UnavailableError,
)

logger = logging.getLogger(__name__)
access_log = logging.getLogger("services.modelserver.access")

INTERNAL_ERROR_MESSAGE = "Internal error in the model server; see its log"

_STATUS_BY_ERROR: dict[type[ServingError], grpc.StatusCode] = {
    InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    NotFoundError: grpc.StatusCode.NOT_FOUND,
    FailedPreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
    UnavailableError: grpc.StatusCode.UNAVAILABLE,
}

# TensorFlow's error codes are gRPC's status codes, number for number.
_STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}

_Servicer = TypeVar("_Servicer")
_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
_Handler = Callable[
    [_Servicer, _Request, grpc.aio.ServicerContext[_Request, _Response]], Awaitable[_Response]
]


def grpc_status(error: ServingError) -> grpc.StatusCode:
    """The status code a domain error is answered with."""
    if isinstance(error, TensorFlowRuntimeError):
        return _STATUS_BY_NUMBER.get(error.tf_error_code, grpc.StatusCode.UNKNOWN)
    for error_type, code in _STATUS_BY_ERROR.items():
        if isinstance(error, error_type):
            return code
    return grpc.StatusCode.UNKNOWN


def translate_errors(
    handler: _Handler[_Servicer, _Request, _Response],
) -> _Handler[_Servicer, _Request, _Response]:
    """Answers domain errors with their status and message, anything else with INTERNAL.

    An unexpected exception's text never reaches the client: it may hold internals. Its trace
    goes to the log instead. Every call leaves a DEBUG line in the access log, with the
    ``x-request-id`` its caller sent (the gateway sends its own request id there).
    """

    @functools.wraps(handler)
    async def handle(
        servicer: _Servicer,
        request: _Request,
        context: grpc.aio.ServicerContext[_Request, _Response],
    ) -> _Response:
        code = grpc.StatusCode.OK
        started = time.perf_counter()
        # Read now, while the call is certainly alive (services.common.calls), not at the end.
        logged = access_log.isEnabledFor(logging.DEBUG)
        request_id = _request_id(context) if logged else None
        try:
            return await handler(servicer, request, context)
        except ServingError as error:
            code = grpc_status(error)
            # Messages shorten the names they echo; this bound holds for any that does not
            # (a longer message would overflow the client's metadata limit).
            await context.abort(code, bound_message(error.message))
        except Exception:
            code = grpc.StatusCode.INTERNAL
            logger.exception("%s failed unexpectedly", handler.__name__)
            await context.abort(code, INTERNAL_ERROR_MESSAGE)
        finally:
            if logged:
                access_log.debug(
                    "%s %s %.3f ms request_id=%s",
                    handler.__name__,
                    code.name,
                    (time.perf_counter() - started) * 1000,
                    request_id,
                )

    return handle


def _request_id(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id":
            return str(value)
    return None
