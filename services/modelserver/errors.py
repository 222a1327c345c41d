"""Domain errors of the model server, free of transport codes.

The servicers map them to gRPC status codes in one place (`grpc_errors.py`). Their messages are
written for clients and copy TensorFlow Serving's wording, so they may be sent as they are.
"""

from __future__ import annotations


class ServingError(Exception):
    """A request the server cannot answer; the message is safe to show the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgumentError(ServingError):
    """The request itself is malformed or does not fit the model's signature."""


class NotFoundError(ServingError):
    """The requested model, version or servable does not exist (or is not loaded)."""


class FailedPreconditionError(ServingError):
    """The request is well formed, but the model cannot serve it (e.g. no such signature)."""


class UnavailableError(ServingError):
    """The server cannot take the request right now (a full batching queue); retry later."""


class TensorFlowRuntimeError(ServingError):
    """TensorFlow refused to run the model; carries TensorFlow's own error code.

    TensorFlow's error codes (`tensorflow.error.Code`) share their numbers with gRPC's status
    codes, which is how TensorFlow Serving passes them on.
    """

    def __init__(self, tf_error_code: int, message: str) -> None:
        super().__init__(message)
        self.tf_error_code = tf_error_code


class StartupError(Exception):
    """The server cannot start: bad flags, an unreadable config file, a missing base path."""
