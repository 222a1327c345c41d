"""Dynamic batching with the semantics of TensorFlow Serving's BatchingParameters.

With --enable_batching every model run goes through a BatchingSession of its version, as in
TensorFlow Serving's batching_session.cc. Concurrent runs of the same signature (the same input
and output tensors) join one open batch; the batch runs once it is full, or once
``batch_timeout_micros`` have passed since it opened, as soon as one of ``num_batch_threads`` is
free. While all of them are busy the open batch keeps filling, which is where batching pays off
under load. The batch's inputs are concatenated along the 0th dimension (padded up to the next
of ``allowed_batch_sizes`` by repeating a row), run once, and the outputs split back.

As there, a run must have inputs, each with a 0th dimension of one size, and every output must
have that 0th dimension; a run bigger than ``max_batch_size`` is refused, and a full queue
answers UNAVAILABLE. One difference: runs whose inner dimensions or dtypes differ wait in
separate batches here, where TensorFlow Serving fails the whole mixed batch. Those queues are
bounded, since clients choose the shapes: a queue is dropped once it has nothing waiting or
running, and while MAX_QUEUES of a session are busy a run of yet another shape is refused with
UNAVAILABLE, like a full queue.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from services.generated.modelserver.config.v1 import server_files_pb2
from services.modelserver.config import read_text_proto
from services.modelserver.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    StartupError,
    UnavailableError,
)

# Busy queues (one per fetches, dtypes and inner shapes) one model version may have at once.
MAX_QUEUES = 64

Runner = Callable[[Mapping[str, Any], Sequence[str]], list[Any]]
"""Runs one model call: feeds by tensor name, fetched tensor names -> fetched values."""


@dataclass(frozen=True)
class BatchRecord:
    """What one batch was, for metrics."""

    task_sizes: Sequence[int]  # rows of each run merged into the batch
    padded_size: int  # rows after padding to an allowed batch size
    queued_seconds: Sequence[float]  # per run, from its arrival until its batch started

    @property
    def size(self) -> int:
        return sum(self.task_sizes)


BatchListener = Callable[[BatchRecord], None]


@dataclass(frozen=True)
class BatchingOptions:
    """TensorFlow Serving's BatchingParameters, with its defaults."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    allowed_batch_sizes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise StartupError("max_batch_size must be positive")
        if self.num_batch_threads < 1 or self.max_enqueued_batches < 1:
            raise StartupError("num_batch_threads and max_enqueued_batches must be positive")
        if self.batch_timeout_micros < 0:
            raise StartupError("batch_timeout_micros must not be negative")
        sizes = self.allowed_batch_sizes
        if sizes:
            if any(b <= a for a, b in itertools.pairwise(sizes)) or sizes[0] < 1:
                raise StartupError("allowed_batch_sizes must be positive and increasing")
            if sizes[-1] != self.max_batch_size:
                raise StartupError(
                    "Last entry in allowed_batch_sizes must match max_batch_size; last entry "
                    f"was {sizes[-1]}; expected {self.max_batch_size}"
                )

    @classmethod
    def from_file(cls, path: str) -> BatchingOptions:
        """Reads a --batching_parameters_file; empty path: the defaults."""
        if not path:
            return cls()
        proto = read_text_proto(
            "batching_parameters_file", path, server_files_pb2.BatchingParameters()
        )
        unsupported = [
            name
            for name, given in (
                ("pad_variable_length_inputs", proto.pad_variable_length_inputs),
                ("enable_large_batch_splitting", proto.enable_large_batch_splitting.value),
                ("max_execution_batch_size", proto.HasField("max_execution_batch_size")),
            )
            if given
        ]
        if unsupported:
            raise StartupError(
                f"--batching_parameters_file: {', '.join(unsupported)} not supported by this "
                "model server; remove it from the file"
            )
        # The scalar parameters are wrapper messages: set ones override the defaults.
        given = {
            descriptor.name: int(value.value)
            for descriptor, value in proto.ListFields()
            if descriptor.message_type is not None
            and descriptor.message_type.full_name == "google.protobuf.Int64Value"
        }
        defaults = cls()
        try:
            return cls(
                max_batch_size=given.get("max_batch_size", defaults.max_batch_size),
                batch_timeout_micros=given.get(
                    "batch_timeout_micros", defaults.batch_timeout_micros
                ),
                max_enqueued_batches=given.get(
                    "max_enqueued_batches", defaults.max_enqueued_batches
                ),
                num_batch_threads=given.get("num_batch_threads", defaults.num_batch_threads),
                allowed_batch_sizes=tuple(proto.allowed_batch_sizes),
            )
        except StartupError as exc:
            raise StartupError(f"--batching_parameters_file: {exc}") from exc

    def padded(self, size: int) -> int:
        """The batch size a batch of ``size`` rows runs with."""
        if not self.allowed_batch_sizes:
            return size
        return self.allowed_batch_sizes[bisect.bisect_left(self.allowed_batch_sizes, size)]


@dataclass
class _Task:
    feeds: Mapping[str, np.ndarray]
    size: int
    arrived: float = field(default_factory=time.perf_counter)
    result: asyncio.Future[list[np.ndarray]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass
class _Batch:
    opened: float = field(default_factory=time.perf_counter)
    tasks: list[_Task] = field(default_factory=list)
    size: int = 0
    closed: bool = False


class BatchingSession:
    """Batches the runs of one model version; each distinct signature gets its own queue."""

    def __init__(
        self,
        runner: Runner,
        options: BatchingOptions,
        executor: Executor,
        on_batch: BatchListener | None = None,
    ) -> None:
        self._runner = runner
        self._options = options
        self._executor = executor
        self._on_batch = on_batch
        self._threads = asyncio.Semaphore(options.num_batch_threads)
        self._queues: dict[tuple[Any, ...], _Queue] = {}

    async def run(self, feeds: Mapping[str, Any], fetches: Sequence[str]) -> list[np.ndarray]:
        """Runs the model on ``feeds`` as part of a batch; returns this run's fetched values."""
        arrays = {name: np.asarray(value) for name, value in feeds.items()}
        size = _batch_size(arrays)
        if size > self._options.max_batch_size:
            raise InvalidArgumentError(
                f"Task size {size} is larger than maximum input batch size "
                f"{self._options.max_batch_size}"
            )
        key = (
            tuple(fetches),
            tuple((name, array.dtype.str, array.shape[1:]) for name, array in arrays.items()),
        )
        queue = self._queues.get(key)
        if queue is None:
            if len(self._queues) >= MAX_QUEUES:
                raise UnavailableError(
                    f"All {MAX_QUEUES} batch scheduling queues of this model are busy with "
                    "runs of other input shapes, dtypes or outputs; retry later"
                )
            queue = self._queues[key] = _Queue(self, key, tuple(arrays), tuple(fetches))
        return await queue.submit(_Task(arrays, size))

    def _retire(self, key: tuple[Any, ...], queue: _Queue) -> None:
        # Called when the queue has nothing waiting or running; a later run makes a new one.
        if self._queues.get(key) is queue:
            del self._queues[key]


class _Queue:
    """The batches of one signature: an open one that fills, and closed ones that wait."""

    def __init__(
        self,
        session: BatchingSession,
        key: tuple[Any, ...],
        feed_names: tuple[str, ...],
        fetches: tuple[str, ...],
    ) -> None:
        self._session = session
        self._key = key
        self._options = session._options
        self._feed_names = feed_names
        self._fetches = fetches
        self._batches: list[_Batch] = []
        self._changed = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, task: _Task) -> list[np.ndarray]:
        open_batch = self._batches[-1] if self._batches else None
        if (
            open_batch is None
            or open_batch.closed
            or (open_batch.size + task.size > self._options.max_batch_size)
        ):
            if open_batch is not None:
                open_batch.closed = True
            if len(self._batches) >= self._options.max_enqueued_batches:
                raise UnavailableError(
                    "The batch scheduling queue to which this task was submitted is full; "
                    f"currently {len(self._batches)} batches enqueued and max_enqueued_batches "
                    f"is {self._options.max_enqueued_batches}"
                )
            open_batch = _Batch()
            self._batches.append(open_batch)
        open_batch.tasks.append(task)
        open_batch.size += task.size
        if open_batch.size >= self._options.max_batch_size:
            open_batch.closed = True
        self._changed.set()
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch(), name="batch dispatcher")
        return await task.result

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        timeout_s = self._options.batch_timeout_micros / 1e6
        while self._batches:
            head = self._batches[0]
            # A batch below the maximum waits for more runs until its timeout.
            while not head.closed and (left := head.opened + timeout_s - time.perf_counter()) > 0:
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), left)
            # Then for a free batch thread; meanwhile an open batch keeps filling.
            await self._session._threads.acquire()
            self._batches.pop(0)
            head.closed = True
            running = loop.create_task(self._run(head), name="batch")
            # The loop keeps only weak references to tasks.
            self._running.add(running)
            running.add_done_callback(self._ran)
        self._retire_if_idle()

    def _ran(self, running: asyncio.Task[None]) -> None:
        self._running.discard(running)
        self._retire_if_idle()

    def _retire_if_idle(self) -> None:
        # The dispatcher calls this as it ends, so it does not count as busy itself.
        dispatching = (
            self._dispatcher is not None
            and not self._dispatcher.done()
            and self._dispatcher is not asyncio.current_task()
        )
        if not self._batches and not self._running and not dispatching:
            self._session._retire(self._key, self)

    async def _run(self, batch: _Batch) -> None:
        try:
            tasks = [task for task in batch.tasks if not task.result.done()]  # not cancelled
            if not tasks:
                return
            started = time.perf_counter()
            try:
                outputs = await asyncio.get_running_loop().run_in_executor(
                    self._session._executor, self._run_merged, tasks
                )
            except Exception as exc:
                for task in tasks:
                    if not task.result.done():
                        task.result.set_exception(exc)
                return
            for task, values in zip(tasks, outputs, strict=True):
                if not task.result.done():
                    task.result.set_result(values)
            if self._session._on_batch is not None:
                sizes = [task.size for task in tasks]
                self._session._on_batch(
                    BatchRecord(
                        task_sizes=sizes,
                        padded_size=self._options.padded(sum(sizes)),
                        queued_seconds=[started - task.arrived for task in tasks],
                    )
                )
        finally:
            self._session._threads.release()

    def _run_merged(self, tasks: list[_Task]) -> list[list[np.ndarray]]:
        """Runs the batch in a worker thread; returns each task's share of every output."""
        sizes = [task.size for task in tasks]
        total = sum(sizes)
        padding = self._options.padded(total) - total
        feeds = {}
        for name in self._feed_names:
            parts = [task.feeds[name] for task in tasks]
            if padding:
                # A row of a real input, as TensorFlow Serving pads: always valid for the model.
                parts.append(np.repeat(parts[-1][:1], padding, axis=0))
            feeds[name] = np.concatenate(parts) if len(parts) > 1 else parts[0]
        values = self._session._runner(feeds, self._fetches)
        bounds = np.cumsum(sizes)[:-1]
        shares: list[list[np.ndarray]] = [[] for _ in tasks]
        for value in values:
            array = np.asarray(value)
            if array.ndim == 0:
                raise FailedPreconditionError("Batched output tensor has 0 dimensions")
            if array.shape[0] != total + padding:
                raise FailedPreconditionError(
                    "Batched output tensor's 0th dimension does not equal the sum of the 0th "
                    "dimension sizes of the input tensors"
                )
            for share, part in zip(shares, np.split(array[:total], bounds), strict=True):
                share.append(part)
        return shares


def _batch_size(arrays: Mapping[str, np.ndarray]) -> int:
    """The 0th dimension shared by all inputs, with TensorFlow Serving's errors otherwise."""
    if not arrays:
        raise InvalidArgumentError("Batching Run() must have at least one input tensor")
    sizes = set()
    for array in arrays.values():
        if array.ndim == 0:
            raise InvalidArgumentError(
                "Batching Run() input tensors must have at least one dimension"
            )
        sizes.add(array.shape[0])
    if len(sizes) > 1:
        raise InvalidArgumentError(
            "Batching Run() input tensors must have equal 0th-dimension size"
        )
    return int(sizes.pop())
