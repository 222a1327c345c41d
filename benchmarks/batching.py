"""The model server's dynamic batching, off and on: CNN Predicts of one image each at 1, 8 and
32 requests outstanding, against two model server processes serving the same version."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from benchmarks.harness import Measurement, Stability, measure
from benchmarks.model_alone import load_latest, median_run_ms
from services.gateway.model_server_api import ModelService, PredictionService
from services.gateway.tensors import to_tensor_proto
from services.generated.tfserving.v1 import get_model_status_pb2, model_pb2, predict_pb2
from services.suite.children import Child
from services.suite.model_config import model_config_text
from services.suite.stack import BATCHING_PARAMETERS, model_server_flags

CONCURRENCY = (1, 8, 32)
CEILING_CONCURRENCY = 32
START_TIMEOUT_S = 180


@dataclass(frozen=True)
class BatchingRow:
    concurrency: int
    off: Measurement
    on: Measurement

    @property
    def throughput_ratio(self) -> float:
        return self.on.throughput / self.off.throughput

    @property
    def p50_ratio(self) -> float:
        return self.on.p50_ms / self.off.p50_ms


@dataclass(frozen=True)
class BatchingResults:
    rows: list[BatchingRow]
    # GetModelStatus on the batching server, same client and cores: a call with no tensors and
    # no model run, so no batching can push a Predict past it.
    transport_ceiling: Measurement


@dataclass(frozen=True)
class ModelAlone:
    """The CNN's session run in-process, without any server: the ceiling batching works on."""

    single_ms: float  # one image
    batch_ms: float  # BATCH_OF images in one run
    batch_size: int


def time_model_alone(models_dir: Path, batch_size: int = 32) -> ModelAlone:
    servable = load_latest(models_dir, "cnn")

    def images(count: int) -> dict[str, np.ndarray]:
        return {"images": np.zeros((count, 28, 28), np.float32)}

    return ModelAlone(
        median_run_ms(servable, "serving_default", images(1)),
        median_run_ms(servable, "serving_default", images(batch_size)),
        batch_size,
    )


@contextlib.contextmanager
def model_servers(models_dir: Path, work_dir: Path) -> Iterator[tuple[int, int]]:
    """Two model servers for the CNN: batching off, and on. Yields their ports."""
    config = work_dir / "models.config"  # the repository's own config stays as it is
    config.write_text(model_config_text(models_dir, ["cnn"]))
    parameters = work_dir / "batching.config"
    parameters.write_text(BATCHING_PARAMETERS)
    plain = Child("modelserver (batching off)", "services.modelserver", model_server_flags(config))
    batching = Child(
        "modelserver (batching on)", "services.modelserver", model_server_flags(config, parameters)
    )
    try:
        yield plain.wait_for_port(START_TIMEOUT_S), batching.wait_for_port(START_TIMEOUT_S)
    finally:
        plain.stop(timeout_s=15)
        batching.stop(timeout_s=15)


async def run(models_dir: Path, work_dir: Path, stability: Stability) -> BatchingResults:
    image = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="cnn"))
    request.inputs["images"].CopyFrom(to_tensor_proto(image))
    rows = []
    with model_servers(models_dir, work_dir) as (plain_port, batching_port):
        async with (
            grpc.aio.insecure_channel(f"localhost:{plain_port}") as plain,
            grpc.aio.insecure_channel(f"localhost:{batching_port}") as batching,
        ):
            plain_stub = PredictionService(plain)
            batching_stub = PredictionService(batching)
            for concurrency in CONCURRENCY:
                # Side by side: each concurrency measured on both servers in turn.
                off = await measure(
                    lambda: plain_stub.Predict(request, timeout=30), concurrency, stability
                )
                on = await measure(
                    lambda: batching_stub.Predict(request, timeout=30), concurrency, stability
                )
                rows.append(BatchingRow(concurrency, off, on))
            status_stub = ModelService(batching)
            status = get_model_status_pb2.GetModelStatusRequest(model_spec=request.model_spec)
            ceiling = await measure(
                lambda: status_stub.GetModelStatus(status, timeout=30),
                CEILING_CONCURRENCY,
                stability,
            )
    return BatchingResults(rows, ceiling)
