"""One assertion for error paths: the status code and what the details must say."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import grpc
import pytest


async def expect_status(call: Awaitable[Any], code: grpc.StatusCode, *details: str) -> str:
    """Awaits a call that must fail with `code` and details containing every fragment."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert raised.value.code() == code, raised.value.details()
    message = raised.value.details() or ""
    for fragment in details:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


async def expect_exact_status(call: Awaitable[Any], code: grpc.StatusCode, details: str) -> None:
    """Awaits a call that must fail with `code` and exactly these details (TF Serving's wording)."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert (raised.value.code(), raised.value.details()) == (code, details)
