"""Where a batched Predict spends its time in the model server, stage by stage, measured
in-process with the server's own functions: the CNN's Predict of one 28x28 image (as
benchmarks/batching.py sends it) and word2vec's `similar` of one word with k=10 (as the
gateway's words.py sends it).

As in benchmarks/stages.py, each stage runs alone in a timed loop, in several repetitions that
take turns over the stages; each cost is the median over the repetitions of CPU time
(`time.process_time`: every thread of this process, TensorFlow's among them) and wall time. A
stage's loop has as many calls as fill about ``loop_s`` (at most ``calls``), since the stages
range from a microsecond to a batch-32 session run. Every cost is per request: a call that serves
a batch of N requests (a session run of N rows, N submissions at once) counts 1/N of it to each.

End to end, a model server started in this process (`start_model_server`, batching on with the
local stack's parameters) is called by a client in this process, one call outstanding: the
Predict and a `GetModelStatus` of the same model take turns; their difference within a
repetition is what a Predict costs beyond the transport.

python -m benchmarks.modelserver_stages [--models-dir models] [--repetitions 5] [--loop-s 0.2]
                                        [--calls 2000] [--round-trips 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from benchmarks.stack import BATCHING_PARAMETERS
from benchmarks.stages import (
    Cost,
    _alternating,
    _median,
    _round_trip,
    _timed_async_loop,
    _timed_loop,
)
from services.gateway.backend import predict_request
from services.gateway.tensors import to_tensor_proto
from services.generated.tfserving.v1 import get_model_status_pb2, model_pb2
from services.generated.tfserving.v1 import predict_pb2 as gateway_predict_pb2
from services.modelserver.batching import (
    BatchingOptions,
    BatchingSession,
    BatchRecord,
    _Queue,
    _Task,
)
from services.modelserver.dataplane import predict_response
from services.modelserver.monitoring import ServingMetrics
from services.modelserver.predict import predict_outputs, prepare_predict, run_session
from services.modelserver.servable import Servable
from services.modelserver.server import ModelServerHandle, start_model_server
from services.modelserver.settings import ModelServerSettings
from services.suite.model_config import model_config_text
from training.contracts import cnn, word2vec
from training.contracts.common import IMAGE_SIZE

CNN, WORD2VEC = "cnn", "word2vec similar"
WORKLOADS = (CNN, WORD2VEC)
_MODELS = {CNN: cnn.MODEL_NAME, WORD2VEC: word2vec.MODEL_NAME}
_SIGNATURES = {CNN: cnn.SERVING_SIGNATURE, WORD2VEC: word2vec.SIMILAR_SIGNATURE}
K = 10  # the neighbours a similar request asks for, as benchmarks/similarity.py asks
BATCHES = (8, 32)  # the batch sizes the batching and merge rows take
METRICS_BATCH = 8  # the batch record_batch is timed on
WAKE_S = 0.001  # how long the event loop sleeps in the wake-up row

# Each stage by its name in the report: what is timed, and how many requests one timed call
# serves (its cost is divided among them).
STAGES: dict[str, tuple[str, int]] = {
    "request parsing": (
        "`PredictRequest.FromString` of the request's wire bytes (gRPC's deserializer)",
        1,
    ),
    "preparation": ("`predict.prepare_predict`: signature checks, tensor reads", 1),
    "batching session, 1 request": (
        "`BatchingSession.run` with a runner that returns at once, a free batch thread: queue, "
        "dispatcher task, semaphore, executor hand-off, merge and split, result",
        1,
    ),
    **{
        f"batching session, {n} at once": (
            f"the same, {n} runs submitted together (`asyncio.gather`: the task per call that "
            "grpc.aio has anyway is counted here); they form one batch",
            n,
        )
        for n in BATCHES
    },
    "executor hand-off": (
        "`loop.run_in_executor` of a no-op on a pool as the server makes it; part of each row "
        "above",
        1,
    ),
    "event-loop wake-up": (
        f"`await asyncio.sleep({WAKE_S:g})`: the CPU of the event loop going idle and being "
        "woken once (its wall time is the sleep); a hand-off to a thread that the loop waits "
        "for pays such wake-ups",
        1,
    ),
    **{
        f"merge and split, batch of {n}": (
            f"`_Queue._run_merged` of {n} one-row runs, with a runner that returns the batch's "
            "outputs at once: the inputs concatenated, the outputs split",
            n,
        )
        for n in BATCHES
    },
    "session run, batch of 1": ("`predict.run_session` (`Servable.run`) of one row", 1),
    **{f"session run, batch of {n}": (f"the same, {n} rows in one run", n) for n in BATCHES},
    "response encoding": (
        "`predict.predict_outputs` of one request's share, `dataplane.predict_response`, "
        "`SerializeToString`",
        1,
    ),
    "metrics, request": ("`ServingMetrics.request` around a call: count and latency", 1),
    "metrics, batch": (
        f"`ServingMetrics.record_batch` of a batch of {METRICS_BATCH} one-row runs",
        METRICS_BATCH,
    ),
    "Predict beyond GetModelStatus": (
        "end to end, one outstanding: a Predict round trip to the in-process model server "
        "minus a `GetModelStatus` round trip of the same model",
        1,
    ),
}
END_TO_END = "Predict beyond GetModelStatus"
REPETITIONS = 5
LOOP_S = 0.2  # about how long one repetition of a stage's loop lasts
CALLS = 2000  # at most, per repetition of a stage's loop
ROUND_TRIPS = 300  # per repetition of each end-to-end loop
START_TIMEOUT_S = 180


@dataclass(frozen=True)
class StageRow:
    stage: str  # a key of STAGES
    costs: Mapping[str, Cost]  # per request, by workload


@dataclass(frozen=True)
class ModelServerStagesResults:
    repetitions: int
    loop_s: float
    calls: int
    round_trips: int
    rows: list[StageRow]
    # The two end-to-end round trips, client and server together, by workload (medians).
    predict_round_trip: Mapping[str, Cost]
    status_round_trip: Mapping[str, Cost]

    def cost(self, stage: str, workload: str) -> Cost | None:
        row = next((row for row in self.rows if row.stage == stage), None)
        return None if row is None else row.costs.get(workload)


@dataclass(frozen=True)
class _Timed:
    stage: str
    workload: str
    call: Callable[[], Any]  # returns an awaitable when is_async
    is_async: bool = False


async def run(
    models_dir: Path,
    repetitions: int = REPETITIONS,
    loop_s: float = LOOP_S,
    calls: int = CALLS,
    round_trips: int = ROUND_TRIPS,
) -> ModelServerStagesResults:
    with tempfile.TemporaryDirectory() as work:
        async with _model_server(models_dir, Path(work)) as (handle, options):
            executor = ThreadPoolExecutor(thread_name_prefix="bench-batch")
            try:
                timed: list[_Timed] = []
                requests = {}
                for workload in WORKLOADS:
                    servable = handle.manager.servable(handle.manager.resolve(_MODELS[workload]))
                    requests[workload] = _request_bytes(workload, servable)
                    timed += _stages(workload, servable, requests[workload], options, executor)
                measured = await _median_costs(timed, repetitions, loop_s, calls)
                costs: dict[str, dict[str, Cost]] = {stage: {} for stage in STAGES}
                for stage, cost in zip(timed, measured, strict=True):
                    share = STAGES[stage.stage][1]
                    costs[stage.stage][stage.workload] = Cost(
                        cost.cpu_us / share, cost.wall_us / share
                    )
            finally:
                executor.shutdown(wait=True)
            beyond, predicts, statuses = await _end_to_end(
                handle.port, requests, repetitions, round_trips
            )
            costs[END_TO_END] = beyond
    rows = [StageRow(stage, costs[stage]) for stage in STAGES]
    return ModelServerStagesResults(
        repetitions, loop_s, calls, round_trips, rows, predicts, statuses
    )


@contextlib.asynccontextmanager
async def _model_server(
    models_dir: Path, work_dir: Path
) -> AsyncIterator[tuple[ModelServerHandle, BatchingOptions]]:
    """The model server in this process for both models, batching on with the local stack's
    parameters, as benchmarks/stack.py starts it; and those parameters."""
    config = work_dir / "models.config"
    config.write_text(model_config_text(models_dir, sorted(set(_MODELS.values()))))
    parameters = work_dir / "batching.config"
    parameters.write_text(BATCHING_PARAMETERS)
    settings = ModelServerSettings(
        port=0,
        model_config_file=str(config),
        file_system_poll_wait_seconds=0,
        enable_batching=True,
        batching_parameters_file=str(parameters),
    )
    handle = await asyncio.wait_for(start_model_server(settings), START_TIMEOUT_S)
    try:
        yield handle, BatchingOptions.from_file(str(parameters))
    finally:
        await handle.stop(None)


def _request_bytes(workload: str, servable: Servable) -> bytes:
    """The request as its client sends it: the CNN's as benchmarks/batching.py builds it (no
    version, the default signature), word2vec's as the gateway's words.py does (pinned)."""
    if workload == CNN:
        image = np.random.default_rng(0).random((1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
        request = gateway_predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=_MODELS[CNN])
        )
        request.inputs[cnn.IMAGES_INPUT].CopyFrom(to_tensor_proto(image))
    else:
        inputs = {
            word2vec.WORDS_INPUT: np.array([_query_word(servable)], dtype=object),
            word2vec.K_INPUT: np.array([K], np.int32),
        }
        request = predict_request(
            _MODELS[WORD2VEC], servable.version, _SIGNATURES[WORD2VEC], inputs
        )
    return request.SerializeToString()


def _query_word(servable: Servable) -> str:
    """The vocabulary's first (most frequent) word, as benchmarks/similarity.py asks first:
    the one string vector of the version's checkpoint."""
    reader = tf.train.load_checkpoint(str(servable.path / "variables" / "variables"))
    (name,) = [
        name for name, shape in reader.get_variable_to_shape_map().items() if len(shape) == 1
    ]
    return str(reader.get_tensor(name)[0].decode())


def _stages(
    workload: str,
    servable: Servable,
    request_bytes: bytes,
    options: BatchingOptions,
    executor: ThreadPoolExecutor,
) -> list[_Timed]:
    signature = _SIGNATURES[workload]
    request = predict_pb2.PredictRequest.FromString(request_bytes)
    output_filter = list(request.output_filter)
    prepared = prepare_predict(servable, signature, request.inputs, output_filter)
    feeds, fetches = prepared.feeds, prepared.fetches

    def rows(count: int) -> dict[str, np.ndarray]:
        return {name: np.concatenate([array] * count) for name, array in feeds.items()}

    # The model's own outputs for the largest batch; a no-op runner answers any batch with
    # their first rows, so that what is split is what a real run returns.
    largest = max(BATCHES)
    outputs = [np.asarray(value) for value in run_session(servable, rows(largest), fetches)]

    def answer(batch_feeds: Mapping[str, Any], batch_fetches: Sequence[str]) -> list[Any]:
        size = len(next(iter(batch_feeds.values())))
        return [value[:size] for value in outputs]

    share = [value[:1] for value in outputs]
    session = BatchingSession(answer, options, executor)
    loop = asyncio.get_running_loop()
    metrics = ServingMetrics()
    model = _MODELS[workload]
    record = BatchRecord(
        task_sizes=[1] * METRICS_BATCH,
        padded_size=options.padded(METRICS_BATCH),
        queued_seconds=[0.0005] * METRICS_BATCH,
    )

    def submitted(count: int) -> Callable[[], Awaitable[object]]:
        if count == 1:
            return functools.partial(session.run, feeds, fetches)
        return lambda: asyncio.gather(*(session.run(feeds, fetches) for _ in range(count)))

    def merged(count: int) -> Callable[[], object]:
        # The queue a session makes for these inputs, and runs as its dispatcher hands them on.
        key = (tuple(fetches), tuple((n, a.dtype.str, a.shape[1:]) for n, a in feeds.items()))
        queue = _Queue(session, key, tuple(feeds), tuple(fetches))
        tasks = [_Task(feeds, 1) for _ in range(count)]
        return functools.partial(queue._run_merged, tasks)

    def encoded() -> bytes:
        response = predict_response(
            model, signature, servable.version, predict_outputs(prepared, share)
        )
        data: bytes = response.SerializeToString()
        return data

    def counted() -> None:
        with metrics.request(model, "Predict", "GRPC"):
            pass

    stages: dict[str, tuple[Callable[[], Any], bool]] = {
        "request parsing": (
            functools.partial(predict_pb2.PredictRequest.FromString, request_bytes),
            False,
        ),
        "preparation": (
            functools.partial(prepare_predict, servable, signature, request.inputs, output_filter),
            False,
        ),
        "batching session, 1 request": (submitted(1), True),
        **{f"batching session, {n} at once": (submitted(n), True) for n in BATCHES},
        "executor hand-off": (functools.partial(loop.run_in_executor, executor, _noop), True),
        "event-loop wake-up": (functools.partial(asyncio.sleep, WAKE_S), True),
        **{f"merge and split, batch of {n}": (merged(n), False) for n in BATCHES},
        "session run, batch of 1": (
            functools.partial(run_session, servable, feeds, fetches),
            False,
        ),
        **{
            f"session run, batch of {n}": (
                functools.partial(run_session, servable, rows(n), fetches),
                False,
            )
            for n in BATCHES
        },
        "response encoding": (encoded, False),
        "metrics, request": (counted, False),
        "metrics, batch": (functools.partial(metrics.record_batch, record), False),
    }
    return [_Timed(stage, workload, call, is_async) for stage, (call, is_async) in stages.items()]


def _noop() -> None:
    pass


async def _loop(timed: _Timed, number: int) -> Cost:
    if timed.is_async:
        return await _timed_async_loop(timed.call, number)
    return _timed_loop(timed.call, number)


async def _median_costs(
    timed: Sequence[_Timed], repetitions: int, loop_s: float, calls: int
) -> list[Cost]:
    """Each stage's median cost per call; the repetitions take turns over the stages, after a
    warm-up that also sizes each stage's loop to about ``loop_s``."""
    numbers = []
    for stage in timed:
        await _loop(stage, 2)
        probe = await _loop(stage, 3)
        numbers.append(max(1, min(calls, round(loop_s * 1e6 / max(probe.wall_us, 1e-3)))))
    measured: list[list[Cost]] = [[] for _ in timed]
    for _ in range(repetitions):
        for stage, number, costs in zip(timed, numbers, measured, strict=True):
            costs.append(await _loop(stage, number))
    return [_median(costs) for costs in measured]


async def _end_to_end(
    port: int, requests: Mapping[str, bytes], repetitions: int, round_trips: int
) -> tuple[dict[str, Cost], dict[str, Cost], dict[str, Cost]]:
    """By workload: the Predict's round trip less GetModelStatus's (the median of the
    differences within a repetition), and each round trip (the medians)."""
    beyond: dict[str, Cost] = {}
    predicts: dict[str, Cost] = {}
    statuses: dict[str, Cost] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        for workload, request in requests.items():
            status = get_model_status_pb2.GetModelStatusRequest(
                model_spec=model_pb2.ModelSpec(name=_MODELS[workload])
            ).SerializeToString()
            calls = {
                "Predict": _round_trip(
                    channel, "/tensorflow.serving.PredictionService/Predict", request
                ),
                "GetModelStatus": _round_trip(
                    channel, "/tensorflow.serving.ModelService/GetModelStatus", status
                ),
            }
            measured = await _alternating(calls, repetitions, round_trips)
            beyond[workload] = _median(
                [
                    Cost(p.cpu_us - s.cpu_us, p.wall_us - s.wall_us)
                    for p, s in zip(measured["Predict"], measured["GetModelStatus"], strict=True)
                ]
            )
            predicts[workload] = _median(measured["Predict"])
            statuses[workload] = _median(measured["GetModelStatus"])
    return beyond, predicts, statuses


@dataclass(frozen=True)
class SessionRunModel:
    """A session run's cost as a fixed part plus a part per row, from batch 1 and the largest
    batch measured (µs of CPU or of wall time)."""

    fixed_us: float
    per_row_us: float

    @classmethod
    def of(
        cls, results: ModelServerStagesResults, workload: str, clock: Literal["cpu", "wall"]
    ) -> SessionRunModel | None:
        largest = max(BATCHES)
        one = results.cost("session run, batch of 1", workload)
        many = results.cost(f"session run, batch of {largest}", workload)
        if one is None or many is None:
            return None
        single, share = (one.cpu_us, many.cpu_us) if clock == "cpu" else (one.wall_us, many.wall_us)
        per_row = (share * largest - single) / (largest - 1)
        return cls(single - per_row, per_row)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.modelserver_stages", description=__doc__
    )
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--repetitions", type=int, default=REPETITIONS)
    parser.add_argument("--loop-s", type=float, default=LOOP_S)
    parser.add_argument("--calls", type=int, default=CALLS)
    parser.add_argument("--round-trips", type=int, default=ROUND_TRIPS)
    options = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.perf_counter()
    results = asyncio.run(
        run(
            options.models_dir.resolve(),
            options.repetitions,
            options.loop_s,
            options.calls,
            options.round_trips,
        )
    )
    from benchmarks.report import _modelserver_stages_section

    sys.stdout.write("\n".join(_modelserver_stages_section(results)) + "\n")
    sys.stdout.write(f"({time.perf_counter() - started:.0f} s)\n")


if __name__ == "__main__":
    main()
