"""Continuous batching for autoregressive generation.

Every generation in flight asks for its next step through one StepBatcher. The batcher sends the
steps waiting at the same moment to the model server as one batched call per model version, the
way LLM servers schedule tokens: a generation joins at the next step after it starts and leaves
when it is done, and nobody waits for a whole batch of generations to finish. Each step carries
its recurrent state in and out, so any model-server replica can answer any step.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from services.gateway.backend import Deadline
from services.gateway.logs import current_request_id

FloatArray = npt.NDArray[np.float32]

StepFunction = Callable[
    [int, FloatArray, FloatArray, Deadline], Awaitable[tuple[FloatArray, FloatArray]]
]
"""(version, values [B], states [B, S], deadline) -> (predictions [B], new states [B, S])."""

_MAX_IDS_PER_CALL = 16

BatchListener = Callable[[int], None]
"""Told the size of every batch sent, for metrics."""


@dataclass
class _Step:
    version: int
    value: float
    state: FloatArray
    deadline: Deadline
    request_id: str | None = field(default_factory=current_request_id.get)
    result: asyncio.Future[tuple[float, FloatArray]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _joined_ids(steps: list[_Step]) -> str | None:
    """The request ids of one batched call, comma-separated as HTTP joins repeated headers;
    only the first few, so the metadata stays far below gRPC's 8 KiB limit."""
    ids = sorted({step.request_id for step in steps if step.request_id})
    if len(ids) > _MAX_IDS_PER_CALL:
        ids = [*ids[:_MAX_IDS_PER_CALL], f"+{len(ids) - _MAX_IDS_PER_CALL}"]
    return ",".join(ids) or None


class StepBatcher:
    """Batches the next steps of all generations in flight into one call per model version."""

    def __init__(
        self,
        step: StepFunction,
        *,
        max_batch_size: int = 256,
        max_wait_s: float = 0.002,
        on_batch: BatchListener | None = None,
    ) -> None:
        self._step = step
        self._max_batch_size = max_batch_size
        # How long a step waits for the other live generations to submit theirs.
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._pending: list[_Step] = []
        self._active = 0
        self._changed = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def generation(self) -> AsyncIterator[None]:
        """Marks one generation as live while it runs, so batches wait for its steps."""
        self._active += 1
        try:
            yield
        finally:
            self._active -= 1
            self._changed.set()

    async def step(
        self, version: int, value: float, state: FloatArray, deadline: Deadline
    ) -> tuple[float, FloatArray]:
        """The prediction after ``value`` and the new state, computed in the next batch."""
        step = _Step(version, value, state, deadline)
        self._pending.append(step)
        self._changed.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="step batcher")
        return await step.result

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            # Let every live generation submit its next step, but never wait long for one
            # that is busy elsewhere (writing to a slow client, say).
            give_up_at = loop.time() + self._max_wait_s
            while self._waiting_for_more() and (left := give_up_at - loop.time()) > 0:
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), left)
            batch = [step for step in self._pending if not step.result.done()]
            batch = batch[: self._max_batch_size]
            taken = {id(step) for step in batch}
            self._pending = [
                step for step in self._pending if id(step) not in taken and not step.result.done()
            ]
            by_version: dict[int, list[_Step]] = {}
            for step in batch:
                by_version.setdefault(step.version, []).append(step)
            await asyncio.gather(*(self._send(v, steps) for v, steps in by_version.items()))

    def _waiting_for_more(self) -> bool:
        live = sum(1 for step in self._pending if not step.result.done())
        return live < min(self._active, self._max_batch_size)

    async def _send(self, version: int, steps: list[_Step]) -> None:
        values = np.array([step.value for step in steps], dtype=np.float32)
        states = np.stack([step.state for step in steps]).astype(np.float32, copy=False)
        latest = max(steps, key=lambda step: step.deadline.expires_at).deadline
        if self._on_batch is not None:
            self._on_batch(len(steps))
        # gather runs this in a task of its own, whose id is that of the steps it sends.
        current_request_id.set(_joined_ids(steps))
        try:
            predictions, new_states = await self._step(version, values, states, latest)
        except Exception as exc:
            for step in steps:
                if not step.result.done():
                    step.result.set_exception(exc)
            return
        for index, step in enumerate(steps):
            if not step.result.done():
                step.result.set_result((float(predictions[index]), new_states[index]))
