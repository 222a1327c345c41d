"""Continuous batching for autoregressive generation.

A generation makes the same model call over and over with inputs of its own: the forecaster
primes its recurrent state chunk by chunk of the history, then steps value by value. Each kind
of call goes through a RowBatcher of its own, which sends the rows waiting at the same moment to
the model server as one batched call per model version, the way LLM servers schedule tokens: a
generation joins at the next call after it starts and leaves when it is done, and nobody waits
for a whole batch of generations to finish. Each row carries everything its call needs (a step
its value and state; a prime its chunk of history, how much of it is real, and its state), so
rows of different generations at different points share a call, and any model-server replica
can answer any of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from services.gateway.domain import Deadline, Tensors
from services.gateway.logs import current_request_id

SignatureCall = Callable[[int, Tensors, Deadline], Awaitable[Tensors]]
"""(version, inputs with one row per generation [B, ...], deadline) -> outputs [B, ...], whose
row i answers input row i."""

_MAX_IDS_PER_CALL = 16

BatchListener = Callable[[int], None]
"""Told the size of every batch sent, for metrics."""


@dataclass
class _Row:
    version: int
    inputs: Mapping[str, npt.NDArray[Any]]
    deadline: Deadline
    request_id: str | None = field(default_factory=current_request_id.get)
    result: asyncio.Future[Tensors] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _joined_ids(rows: list[_Row]) -> str | None:
    """The request ids of one batched call, comma-separated as HTTP joins repeated headers;
    only the first few, so the metadata stays far below gRPC's 8 KiB limit."""
    ids = sorted({row.request_id for row in rows if row.request_id})
    if len(ids) > _MAX_IDS_PER_CALL:
        ids = [*ids[:_MAX_IDS_PER_CALL], f"+{len(ids) - _MAX_IDS_PER_CALL}"]
    return ",".join(ids) or None


class RowBatcher:
    """Batches the rows of one model call that the generations in flight submit into one call
    per model version (several when more rows wait than one call may take)."""

    def __init__(
        self,
        call: SignatureCall,
        *,
        max_batch_size: int = 256,
        max_wait_s: float = 0.002,
        on_batch: BatchListener | None = None,
        name: str = "row batcher",
    ) -> None:
        self._call = call
        self._max_batch_size = max_batch_size
        # How long a row waits for the other live generations to submit theirs.
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._name = name
        self._pending: list[_Row] = []
        self._active = 0
        self._changed = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def generation(self) -> AsyncIterator[None]:
        """Marks one generation as live while it submits rows here, so batches wait for its
        next one; a generation that will submit no more must leave, so none waits for it."""
        self._active += 1
        try:
            yield
        finally:
            self._active -= 1
            self._changed.set()

    async def submit(
        self, version: int, inputs: Mapping[str, npt.NDArray[Any]], deadline: Deadline
    ) -> Tensors:
        """The outputs for one row of inputs (each without the batch dimension), computed by
        ``version`` in the next batch."""
        row = _Row(version, inputs, deadline)
        self._pending.append(row)
        self._changed.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name=self._name)
        return await row.result

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            # Let every live generation submit its next row, but never wait long for one
            # that is busy elsewhere (writing to a slow client, say). A lone generation
            # never waits: it is all there is.
            give_up_at = loop.time() + self._max_wait_s
            while self._waiting_for_more() and (left := give_up_at - loop.time()) > 0:
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), left)
            batch = [row for row in self._pending if not row.result.done()]
            self._pending = []
            by_version: dict[int, list[_Row]] = {}
            for row in batch:
                by_version.setdefault(row.version, []).append(row)
            size = self._max_batch_size
            # Rows that arrive while these calls run wait for the next round, and join it.
            await asyncio.gather(
                *(
                    self._send(version, rows[start : start + size])
                    for version, rows in by_version.items()
                    for start in range(0, len(rows), size)
                )
            )

    def _waiting_for_more(self) -> bool:
        live = sum(1 for row in self._pending if not row.result.done())
        return live < min(self._active, self._max_batch_size)

    async def _send(self, version: int, rows: list[_Row]) -> None:
        latest = max(rows, key=lambda row: row.deadline.expires_at).deadline
        if self._on_batch is not None:
            self._on_batch(len(rows))
        # gather runs this in a task of its own, whose id is that of the rows it sends.
        current_request_id.set(_joined_ids(rows))
        try:
            inputs = {name: np.stack([row.inputs[name] for row in rows]) for name in rows[0].inputs}
            outputs = await self._call(version, inputs, latest)
        except Exception as exc:
            for row in rows:
                if not row.result.done():
                    row.result.set_exception(exc)
            return
        for index, row in enumerate(rows):
            if not row.result.done():
                row.result.set_result({name: array[index] for name, array in outputs.items()})
