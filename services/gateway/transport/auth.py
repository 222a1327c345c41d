"""Bearer-token authentication for every RPC but health checks.

Kubernetes probes and load balancers call the health service without credentials, so it stays
open; everything else, reflection included, needs ``authorization: Bearer <token>``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import grpc

from services.common.refusal import HEALTH_METHODS, Continuation, ServerInterceptor, refusal

_SCHEME = b"bearer "
_MISSING = "missing 'authorization: Bearer <token>' metadata"
_WRONG = "the bearer token is not valid"


class BearerTokenInterceptor(ServerInterceptor):
    """Refuses calls without the right token with UNAUTHENTICATED."""

    def __init__(self, token: str) -> None:
        self._expected = _digest(token.encode())

    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(HEALTH_METHODS):
            return handler
        problem = self._problem(handler_call_details.invocation_metadata)
        if problem is None:
            return handler
        return refusal(handler, grpc.StatusCode.UNAUTHENTICATED, problem)

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
