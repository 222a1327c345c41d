"""What each status code the model server can answer means to the gateway's client.

One table, `BACKEND_STATUS_MEANINGS`, gives every code the domain error it becomes, the fixed
message the client gets instead of the model server's own text, and whether that text is worth
a line in the gateway's log. transport/status.py then gives each domain error its client code.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from services.gateway import errors


@dataclass(frozen=True)
class BackendStatusMeaning:
    """What one model server status code means to the gateway's client."""

    error: type[errors.GatewayError]
    # Fixed text; {subject} is the model (and version), {code} the model server's code name,
    # {deadline} what set the call's deadline.
    message: str
    # Whether the model server's details are worth a WARNING line in the gateway's log.
    logged: bool = True


def meaning_of(code: grpc.StatusCode) -> BackendStatusMeaning:
    """The table's row for a model server code; a code it lacks means the model server failed."""
    return BACKEND_STATUS_MEANINGS.get(code, _FAILED)


_DETAILS_LOGGED = "the gateway logged the details"
_FAILED = BackendStatusMeaning(errors.BackendError, "model server failed ({code}) for {subject}")

# Every code the model server can end a call with, or gRPC can on the way to it, and what it
# becomes. transport/status.py then gives each domain error the code the client sees (right).
BACKEND_STATUS_MEANINGS: dict[grpc.StatusCode, BackendStatusMeaning] = {
    # Down, draining, or (TensorFlow Serving's batching) queue full; the channel has already
    # retried it, throttled. -> UNAVAILABLE
    grpc.StatusCode.UNAVAILABLE: BackendStatusMeaning(
        errors.BackendUnavailable, "model server is unavailable", logged=False
    ),
    # The gateway's own cancellations arrive as asyncio.CancelledError, so this one came from
    # the model server: gRPC cancels calls not yet started as it stops. -> UNAVAILABLE
    grpc.StatusCode.CANCELLED: BackendStatusMeaning(
        errors.BackendUnavailable,
        "model server is unavailable (it is shutting down)",
        logged=False,
    ),
    # A transient conflict; every call the gateway makes only reads. -> UNAVAILABLE
    grpc.StatusCode.ABORTED: BackendStatusMeaning(
        errors.BackendUnavailable, "model server aborted the call for {subject}; retry it"
    ),
    # -> DEADLINE_EXCEEDED
    grpc.StatusCode.DEADLINE_EXCEEDED: BackendStatusMeaning(
        errors.DeadlineExceeded,
        "{deadline} passed while waiting for the model server to answer for {subject}",
        logged=False,
    ),
    # Not loaded (yet, or any more): rollouts make this normal. -> NOT_FOUND
    grpc.StatusCode.NOT_FOUND: BackendStatusMeaning(
        errors.ModelNotFound, "{subject} is not loaded in the model server", logged=False
    ),
    # Overload: out of memory for the batch (TensorFlow's OOM), or a full queue in servers
    # that say so with this code. The same code as the gateway's own load shedding, and one
    # that clients do not retry at once. (gRPC says it too of an answer over the gateway's
    # message limit, which its batch limits keep far away.) -> RESOURCE_EXHAUSTED
    grpc.StatusCode.RESOURCE_EXHAUSTED: BackendStatusMeaning(
        errors.BackendOverloaded,
        "{subject} is overloaded in the model server; retry later, with backoff",
    ),
    # The gateway checks every input against the version's own metadata first, so a refusal
    # means the gateway and the model disagree: not the client's fault. -> FAILED_PRECONDITION
    grpc.StatusCode.INVALID_ARGUMENT: BackendStatusMeaning(
        errors.ModelContractError,
        "{subject} refused the inputs the gateway built from its metadata; " + _DETAILS_LOGGED,
    ),
    grpc.StatusCode.OUT_OF_RANGE: BackendStatusMeaning(
        errors.ModelContractError,
        "{subject} refused the inputs the gateway built from its metadata; " + _DETAILS_LOGGED,
    ),
    # A missing signature or an unusable output: the version cannot serve the contract.
    # -> FAILED_PRECONDITION
    grpc.StatusCode.FAILED_PRECONDITION: BackendStatusMeaning(
        errors.ModelContractError, "{subject} cannot serve this call; " + _DETAILS_LOGGED
    ),
    # The model server failed, or the gateway is deployed against the wrong server or without
    # its credentials: nothing the client can change. -> INTERNAL
    grpc.StatusCode.UNKNOWN: _FAILED,
    grpc.StatusCode.INTERNAL: _FAILED,
    grpc.StatusCode.DATA_LOSS: _FAILED,
    grpc.StatusCode.UNIMPLEMENTED: _FAILED,
    grpc.StatusCode.UNAUTHENTICATED: _FAILED,
    grpc.StatusCode.PERMISSION_DENIED: _FAILED,
    grpc.StatusCode.ALREADY_EXISTS: _FAILED,
}
