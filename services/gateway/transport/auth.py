"""Bearer-token authentication for every RPC but health checks.

Kubernetes probes and load balancers call the health service without credentials, so it stays
open; everything else, reflection included, needs ``authorization: Bearer <token>``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import grpc

from services.common.calls import Context
from services.common.layers import Handler, HandlerLayer
from services.common.refusal import HEALTH_METHODS, checked_first

_SCHEME = b"bearer "
_MISSING = "missing 'authorization: Bearer <token>' metadata"
_WRONG = "the bearer token is not valid"


class BearerTokenInterceptor(HandlerLayer):
    """Refuses calls without the right token with UNAUTHENTICATED."""

    def __init__(self, token: str) -> None:
        self._expected = _digest(token.encode())

    def wrap(self, method: str, handler: Handler) -> Handler:
        if method.startswith(HEALTH_METHODS):
            return handler
        return checked_first(handler, self._refuse_without_token)

    async def _refuse_without_token(self, context: Context) -> None:
        problem = self._problem(context.invocation_metadata())
        if problem is not None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, problem)

    def _problem(self, metadata: Any) -> str | None:
        """Why the call's credentials are refused, or None if they are accepted."""
        values = [value for key, value in metadata or () if key == "authorization"]
        if not values:
            return _MISSING
        value = values[0].encode() if isinstance(values[0], str) else values[0]
        if value[: len(_SCHEME)].lower() != _SCHEME:
            return _MISSING
        # Digests of equal length, compared in constant time: how long a wrong guess takes
        # tells a caller nothing about the token, not even its length.
        if not hmac.compare_digest(_digest(value[len(_SCHEME) :].strip()), self._expected):
            return _WRONG
        return None


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()
