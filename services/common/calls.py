"""Streaming handlers that finish inside their call, never after it.

grpc.aio releases a call's core object as soon as the call's task is done (grpcio 1.85: it unrefs
the call and sets it to NULL); reading anything from it afterwards (its peer, auth context,
identities) dereferences a freed or NULL call and kills the process with SIGSEGV. When grpc.aio
iterates an async-generator handler itself and the client cancels while a response is being
written, the cancellation lands in grpc's own loop, not in the generator: the generator stays
suspended at its `yield`, and its `finally` blocks (access logs, metrics, counters) run whenever
it is garbage collected, after the call was released. So every server here runs a yielding
handler through `written`, which writes each response itself and closes the generator before the
call's task ends.

The other half of the rule: what a handler needs from the call is read when it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

Context = grpc.aio.ServicerContext[Any, Any]
StreamHandler = Callable[[Any, Context], Awaitable[None]]


def written(behaviour: Callable[..., Any]) -> StreamHandler:
    """A unary-stream handler in the writer form: a coroutine that writes each response itself.
    A handler already in that form (health's Watch) is returned as it is."""
    if not inspect.isasyncgenfunction(behaviour):
        return behaviour

    async def write_each(request: Any, context: Context) -> None:
        # aclosing: when the call ends early, the generator's finally blocks run now, in the
        # call's task, while the call is still alive.
        async with contextlib.aclosing(behaviour(request, context)) as responses:
            async for response in responses:
                try:
                    await context.write(response)
                except grpc.aio.AbortError:
                    raise
                except grpc.aio.BaseError as failed:
                    # The call ended under the write: its client cancelled or vanished, or the
                    # server stopped. grpc.aio drops these quietly for the yielding form; here
                    # they end the handler as the cancellation they are, so the layers around
                    # it record CANCELLED and never try to answer a call that is gone.
                    raise asyncio.CancelledError("the call ended") from failed

    return write_each
