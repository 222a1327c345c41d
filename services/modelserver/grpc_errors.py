"""The one place where domain errors become gRPC status codes."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from services.modelserver.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ServingError,
    TensorFlowRuntimeError,
    UnimplementedError,
)

logger = logging.getLogger(__name__)

INTERNAL_ERROR_MESSAGE = "Internal error in the model server; see its log"

_STATUS_BY_ERROR: dict[type[ServingError], grpc.StatusCode] = {
    InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    NotFoundError: grpc.StatusCode.NOT_FOUND,
    FailedPreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
    UnimplementedError: grpc.StatusCode.UNIMPLEMENTED,
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
    goes to the log instead.
    """

    @functools.wraps(handler)
    async def handle(
        servicer: _Servicer,
        request: _Request,
        context: grpc.aio.ServicerContext[_Request, _Response],
    ) -> _Response:
        try:
            return await handler(servicer, request, context)
        except ServingError as error:
            await context.abort(grpc_status(error), error.message)
        except Exception:
            logger.exception("%s failed unexpectedly", handler.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_ERROR_MESSAGE)

    return handle
