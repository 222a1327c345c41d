"""The batching session: BatchingParameters files, merged runs, padding, and TensorFlow
Serving's refusals. The model here is a numpy function that records each run it is given."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tf_serving_testdata import TESTDATA, needs_testdata

from services.modelserver import batching
from services.modelserver.batching import BatchingOptions, BatchingSession, BatchRecord
from services.modelserver.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    StartupError,
    UnavailableError,
)


class HalfPlusTwo:
    """y = x / 2 + 2 over the batch, remembering the batch size of every run."""

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, feeds: Mapping[str, Any], fetches: Sequence[str]) -> list[Any]:
        self.release.wait(10)
        x = np.asarray(feeds["x:0"])
        self.batch_sizes.append(len(x))
        return [x / 2 + 2 for _ in fetches]


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as pool:
        yield pool


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "batching.config"
    path.write_text(text)
    return str(path)


@needs_testdata
def test_reads_tensorflow_servings_own_file() -> None:
    options = BatchingOptions.from_file(str(TESTDATA / "batching_config.txt"))
    assert options == BatchingOptions(
        max_batch_size=128, batch_timeout_micros=0, max_enqueued_batches=1_000_000,
        num_batch_threads=8,
    )  # fmt: skip


def test_unset_parameters_keep_tensorflow_servings_defaults(tmp_path: Path) -> None:
    options = BatchingOptions.from_file(write(tmp_path, "num_batch_threads { value: 2 }"))
    assert (options.max_batch_size, options.batch_timeout_micros) == (1000, 0)
    assert (options.max_enqueued_batches, options.num_batch_threads) == (10, 2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "max_batch_size { value: 8 } allowed_batch_sizes: [2, 4]",
            "Last entry in allowed_batch_sizes must match max_batch_size; last entry was 4; "
            "expected 8",
        ),
        ("max_batch_size { value: 4 } allowed_batch_sizes: [4, 2, 4]", "increasing"),
        ("pad_variable_length_inputs: true", "pad_variable_length_inputs not supported"),
        ("max_batch_size: 8", "Error parsing text-format modelserver.config.v1"),
        ("no_such_field { value: 1 }", "no_such_field"),
    ],
)
def test_bad_files_fail_naming_the_flag_and_the_cause(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(StartupError, match="--batching_parameters_file") as raised:
        BatchingOptions.from_file(write(tmp_path, text))
    assert message in str(raised.value)


def test_padding_goes_up_to_the_next_allowed_size() -> None:
    options = BatchingOptions(max_batch_size=8, allowed_batch_sizes=(2, 4, 8))
    assert [options.padded(n) for n in (1, 2, 3, 5, 8)] == [2, 2, 4, 8, 8]
    assert BatchingOptions().padded(7) == 7


@pytest.mark.asyncio
async def test_runs_waiting_together_go_in_one_batch(executor: ThreadPoolExecutor) -> None:
    model = HalfPlusTwo()
    records: list[BatchRecord] = []
    session = BatchingSession(
        model, BatchingOptions(num_batch_threads=1), executor, on_batch=records.append
    )
    model.release.clear()  # the first run holds the only batch thread while the rest queue
    first = asyncio.create_task(session.run({"x:0": np.array([0.0], np.float32)}, ["y:0"]))
    await asyncio.sleep(0.05)
    rest = [
        asyncio.create_task(session.run({"x:0": np.array([x, x + 1], np.float32)}, ["y:0"]))
        for x in range(1, 31, 2)
    ]
    await asyncio.sleep(0.05)
    model.release.set()
    answers = await asyncio.gather(first, *rest)

    assert model.batch_sizes == [1, 30]
    assert [len(r.task_sizes) for r in records] == [1, 15]
    for x, (y,) in zip(range(1, 31, 2), answers[1:], strict=True):
        np.testing.assert_allclose(y, [x / 2 + 2, (x + 1) / 2 + 2])


@pytest.mark.asyncio
async def test_a_batch_is_padded_and_the_padding_dropped(executor: ThreadPoolExecutor) -> None:
    model = HalfPlusTwo()
    options = BatchingOptions(max_batch_size=8, allowed_batch_sizes=(4, 8), num_batch_threads=1)
    records: list[BatchRecord] = []
    session = BatchingSession(model, options, executor, on_batch=records.append)
    [y] = await session.run({"x:0": np.array([2.0, 4.0, 6.0], np.float32)}, ["y:0"])
    np.testing.assert_allclose(y, [3.0, 4.0, 5.0])
    assert model.batch_sizes == [4]
    assert (records[0].size, records[0].padded_size) == (3, 4)


@pytest.mark.asyncio
async def test_full_batches_split_at_max_batch_size(executor: ThreadPoolExecutor) -> None:
    model = HalfPlusTwo()
    model.release.clear()
    session = BatchingSession(
        model, BatchingOptions(max_batch_size=4, num_batch_threads=1), executor
    )
    runs = [
        asyncio.create_task(session.run({"x:0": np.array([x, x], np.float32)}, ["y:0"]))
        for x in range(5)
    ]
    await asyncio.sleep(0.05)
    model.release.set()
    await asyncio.gather(*runs)
    assert model.batch_sizes == [4, 4, 2]


@pytest.mark.asyncio
async def test_a_full_queue_answers_unavailable(executor: ThreadPoolExecutor) -> None:
    model = HalfPlusTwo()
    model.release.clear()
    options = BatchingOptions(max_batch_size=1, max_enqueued_batches=2, num_batch_threads=1)
    session = BatchingSession(model, options, executor)
    one = {"x:0": np.array([1.0], np.float32)}
    running = asyncio.create_task(session.run(one, ["y:0"]))
    await asyncio.sleep(0.05)  # taken by the batch thread: no longer queued
    queued = [asyncio.create_task(session.run(one, ["y:0"])) for _ in range(2)]
    await asyncio.sleep(0.01)
    with pytest.raises(UnavailableError, match="max_enqueued_batches is 2"):
        await session.run(one, ["y:0"])
    model.release.set()
    await asyncio.gather(running, *queued)


@pytest.mark.parametrize(
    ("feeds", "message"),
    [
        ({}, "must have at least one input tensor"),
        ({"x:0": np.float32(1.0)}, "must have at least one dimension"),
        (
            {"x:0": np.zeros(2, np.float32), "k:0": np.zeros(3, np.int32)},
            "must have equal 0th-dimension size",
        ),
        ({"x:0": np.zeros(9, np.float32)}, "Task size 9 is larger than maximum input batch size 8"),
    ],
)
@pytest.mark.asyncio
async def test_runs_that_cannot_batch_are_refused(
    executor: ThreadPoolExecutor, feeds: dict[str, Any], message: str
) -> None:
    session = BatchingSession(HalfPlusTwo(), BatchingOptions(max_batch_size=8), executor)
    with pytest.raises(InvalidArgumentError, match=message):
        await session.run(feeds, ["y:0"])


@pytest.mark.asyncio
async def test_outputs_without_the_batch_dimension_fail(executor: ThreadPoolExecutor) -> None:
    def summed(feeds: Mapping[str, Any], fetches: Sequence[str]) -> list[Any]:
        return [np.float32(np.sum(feeds["x:0"]))]

    session = BatchingSession(summed, BatchingOptions(), executor)
    with pytest.raises(FailedPreconditionError, match="Batched output tensor has 0 dimensions"):
        await session.run({"x:0": np.zeros(2, np.float32)}, ["s:0"])


@pytest.mark.asyncio
async def test_a_cancelled_run_leaves_its_batch(executor: ThreadPoolExecutor) -> None:
    model = HalfPlusTwo()
    model.release.clear()
    session = BatchingSession(model, BatchingOptions(num_batch_threads=1), executor)
    blocker = asyncio.create_task(session.run({"x:0": np.zeros(1, np.float32)}, ["y:0"]))
    await asyncio.sleep(0.05)
    gone = asyncio.create_task(session.run({"x:0": np.zeros(5, np.float32)}, ["y:0"]))
    kept = asyncio.create_task(session.run({"x:0": np.zeros(2, np.float32)}, ["y:0"]))
    await asyncio.sleep(0.01)
    gone.cancel()
    model.release.set()
    await asyncio.gather(blocker, kept)
    assert model.batch_sizes == [1, 2]


async def test_queues_of_new_shapes_are_dropped_when_idle_and_bounded_while_busy(
    executor: ThreadPoolExecutor,
) -> None:
    model = HalfPlusTwo()
    session = BatchingSession(model, BatchingOptions(num_batch_threads=2), executor)

    def run(columns: int) -> Any:
        return session.run({"x:0": np.ones((1, columns), np.float32)}, ["y:0"])

    # A client sending ever-new shapes leaves no queue behind once each run is answered.
    for columns in range(1, 201):
        await run(columns)
    await asyncio.sleep(0.01)  # the last batch's task ends just after its answer
    assert session._queues == {}
    # While MAX_QUEUES shapes are waiting, one more shape is refused, not queued.
    model.release.clear()
    busy = [asyncio.ensure_future(run(columns)) for columns in range(1, batching.MAX_QUEUES + 1)]
    await asyncio.sleep(0.05)
    with pytest.raises(UnavailableError, match="batch scheduling queues of this model are busy"):
        await run(batching.MAX_QUEUES + 1)
    model.release.set()
    await asyncio.gather(*busy)
    await asyncio.sleep(0.01)
    assert session._queues == {}
    await run(batching.MAX_QUEUES + 1)  # room again
