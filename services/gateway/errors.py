"""Domain errors of the gateway. They carry no transport codes: transport/status.py maps them."""

from __future__ import annotations

from services.common.bounded import shorten


class GatewayError(Exception):
    """Base class: `message` is safe to show to the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(GatewayError):
    """The request is malformed: names the offending field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ModelNotFound(GatewayError):
    """The model, or the pinned version of it, is not loaded in the model server."""


class UnknownWord(GatewayError):
    """A word the model's vocabulary does not hold."""

    def __init__(self, field: str, word: str) -> None:
        super().__init__(
            f"{field}: unknown word {shorten(word)!r}; it is not in the model's vocabulary"
        )
        self.field = field
        self.word = word


class VersionUnloaded(GatewayError):
    """The version a multi-call answer (a forecast) began on was unloaded before it ended; the
    client must start again, since no other version may finish what it began."""


class ModelNotReady(GatewayError):
    """The model server is up but has no available version of the model yet."""


class BackendUnavailable(GatewayError):
    """The model server cannot be reached."""


class BackendOverloaded(GatewayError):
    """The model server is up but has no capacity for the call now; retry later, with backoff."""


class DeadlineExceeded(GatewayError):
    """The request's time budget ran out before an answer was computed."""


class ModelContractError(GatewayError):
    """The served model does not follow the contract the gateway expects of it."""


class BackendError(GatewayError):
    """The model server failed for a reason the gateway cannot attribute to the request."""
