"""The model server's Prometheus metrics, under TensorFlow Serving's names and labels.

TensorFlow Serving exports its monitoring metrics with every character outside [a-zA-Z0-9_]
turned into ':' (`/tensorflow/serving/request_count` is `:tensorflow:serving:request_count`),
counters without a `_total` suffix and latencies in microseconds. Dashboards and alerts written
for it work unchanged against this server.

One difference bounds the label values: TensorFlow Serving counts a request under whatever
model name the client sent, so clients can create label values without end; here a name that
is not in the model config is counted under UNKNOWN_MODEL_LABEL.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter as Tally
from collections.abc import Iterator
from dataclasses import dataclass
from threading import Lock

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from services.modelserver.batching import BatchRecord
from services.modelserver.errors import ServingError
from services.modelserver.grpc_errors import grpc_status

DEFAULT_PATH = "/monitoring/prometheus/metrics"
BATCH_THREAD_POOL = "model_server_batch_threads"
# The model_name label of requests for a model not in the config.
UNKNOWN_MODEL_LABEL = "(unknown)"

# TensorFlow Serving's latency buckets: exponential, from 10 us by factors of 1.8.
_LATENCY_BUCKETS_US = tuple(10 * 1.8**i for i in range(33))
_BATCH_SIZE_BUCKETS = tuple(2**i for i in range(15))


class _Counters:
    """Monotonic counters written as TensorFlow Serving writes them. prometheus_client always
    appends `_total` to a counter's name, so these are rendered here, in the text format."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._help: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._values: dict[str, Tally[tuple[str, ...]]] = {}

    def declare(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> None:
        self._help[name] = (documentation, labels)
        self._values[name] = Tally()

    def inc(self, name: str, *label_values: str, amount: int = 1) -> None:
        with self._lock:
            self._values[name][label_values] += amount

    def value(self, name: str, *label_values: str) -> int:
        with self._lock:
            return self._values[name][label_values]

    def exposition(self) -> str:
        with self._lock:
            snapshot = {name: dict(values) for name, values in self._values.items()}
        lines = []
        for name, (documentation, labels) in self._help.items():
            lines += [f"# HELP {name} {documentation}", f"# TYPE {name} counter"]
            for label_values, value in sorted(snapshot[name].items()):
                pairs = ",".join(
                    f'{label}="{_escape(text)}"'
                    for label, text in zip(labels, label_values, strict=True)
                )
                lines.append(f"{name}{{{pairs}}} {value}" if pairs else f"{name} {value}")
        return "".join(line + "\n" for line in lines)


def _escape(label_value: str) -> str:
    return label_value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass
class _Outcome:
    status: str = "OK"


class ServingMetrics:
    """Request counts and latencies per model and API, and the batching session's numbers."""

    REQUEST_COUNT = ":tensorflow:serving:request_count"
    BATCHED_RUNS = ":tensorflow:serving:batching_session:wrapped_run_count"

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.counters = _Counters()
        self.counters.declare(
            self.REQUEST_COUNT,
            "The total number of requests.",
            ("model_name", "status"),
        )
        self.counters.declare(self.BATCHED_RUNS, "Tracks the number of wrapped session runs.")
        self.request_latency = Histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint"],
            buckets=_LATENCY_BUCKETS_US,
            registry=self.registry,
        )
        self.queuing_latency = Histogram(
            ":tensorflow:serving:batching_session:queuing_latency",
            "Distribution of wall time spent (in microseconds) in queuing",
            ["thread_pool_name"],
            buckets=_LATENCY_BUCKETS_US,
            registry=self.registry,
        )
        self.input_batch_size = Histogram(
            ":tensorflow:serving:batching_session:input_batch_size",
            "Tracks the batch size distribution on the inputs by model_name (if available).",
            buckets=_BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )
        self.processed_batch_size = Histogram(
            ":tensorflow:serving:batching_session:processed_batch_size",
            "Tracks the batch size distribution on processing by model_name (if available).",
            buckets=_BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )
        self.padding_size = Histogram(
            ":tensorflow:serving:batching_session:padding_size",
            "Tracks the padding size distribution on batches by model_name (if available).",
            ["execution_batch_size"],
            buckets=_BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format."""
        return self.counters.exposition().encode() + generate_latest(self.registry)

    @contextlib.contextmanager
    def request(self, model_name: str, api: str, entrypoint: str) -> Iterator[_Outcome]:
        """Counts a request by its status; times it when it succeeds, as TF Serving does."""
        outcome = _Outcome()
        started = time.perf_counter()
        try:
            yield outcome
        except ServingError as error:
            outcome.status = grpc_status(error).name
            raise
        except Exception:
            outcome.status = "INTERNAL"
            raise
        finally:
            self.counters.inc(self.REQUEST_COUNT, model_name, outcome.status)
        elapsed_us = (time.perf_counter() - started) * 1e6
        self.request_latency.labels(model_name, api, entrypoint).observe(elapsed_us)

    def record_batch(self, record: BatchRecord) -> None:
        """The BatchingSession's listener: one call per batch run."""
        self.counters.inc(self.BATCHED_RUNS)
        for seconds in record.queued_seconds:
            self.queuing_latency.labels(BATCH_THREAD_POOL).observe(seconds * 1e6)
        for size in record.task_sizes:
            self.input_batch_size.observe(size)
        self.processed_batch_size.observe(record.padded_size)
        self.padding_size.labels(str(record.padded_size)).observe(record.padded_size - record.size)
