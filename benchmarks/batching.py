"""The model server's dynamic batching, off and on: CNN Predicts of one image each at 1, 8 and
32 requests outstanding, against two model server processes serving the same version; at 32,
also the transport's ceiling, `GetModelStatus` on the batching server (no tensor, no model run),
in the same alternation (benchmarks.harness.alternate)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from benchmarks.harness import Alternation, Call, Repeated, alternate
from benchmarks.model_alone import load_latest, median_run_ms
from benchmarks.stack import BATCHING_PARAMETERS, model_server_flags
from services.gateway.model_server_api import ModelService, PredictionService
from services.gateway.tensors import to_tensor_proto
from services.generated.tfserving.v1 import get_model_status_pb2, model_pb2, predict_pb2
from services.suite.children import Child
from services.suite.model_config import model_config_text
from training.contracts import cnn
from training.contracts.common import IMAGE_SIZE

CONCURRENCY = (1, 8, 32)
CEILING_CONCURRENCY = 32
START_TIMEOUT_S = 180
# The sides: Predict on the server without batching and on the one with it, and at
# CEILING_CONCURRENCY the batching server's GetModelStatus.
OFF, ON, CEILING = "off", "on", "ceiling"


@dataclass(frozen=True)
class BatchingResults:
    alternation: Alternation
    # By concurrency, in the order of CONCURRENCY; the row at CEILING_CONCURRENCY has CEILING.
    rows: list[Repeated]

    def at(self, concurrency: int) -> Repeated | None:
        return next((row for row in self.rows if row.concurrency == concurrency), None)


@dataclass(frozen=True)
class ModelAlone:
    """The CNN's session run in-process, without any server: the ceiling batching works on."""

    single_ms: float  # one image
    batch_ms: float  # BATCH_OF images in one run
    batch_size: int


def time_model_alone(models_dir: Path, batch_size: int = 32) -> ModelAlone:
    servable = load_latest(models_dir, cnn.MODEL_NAME)

    def images(count: int) -> dict[str, np.ndarray]:
        return {cnn.IMAGES_INPUT: np.zeros((count, IMAGE_SIZE, IMAGE_SIZE), np.float32)}

    return ModelAlone(
        median_run_ms(servable, cnn.SERVING_SIGNATURE, images(1)),
        median_run_ms(servable, cnn.SERVING_SIGNATURE, images(batch_size)),
        batch_size,
    )


@contextlib.contextmanager
def model_servers(models_dir: Path, work_dir: Path) -> Iterator[tuple[int, int]]:
    """Two model servers for the CNN: batching off, and on. Yields their ports."""
    config = work_dir / "models.config"  # the repository's own config stays as it is
    config.write_text(model_config_text(models_dir, [cnn.MODEL_NAME]))
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


async def run(models_dir: Path, work_dir: Path, alternation: Alternation) -> BatchingResults:
    image = np.random.default_rng(0).random((1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=cnn.MODEL_NAME))
    request.inputs[cnn.IMAGES_INPUT].CopyFrom(to_tensor_proto(image))
    status = get_model_status_pb2.GetModelStatusRequest(model_spec=request.model_spec)
    rows = []
    with model_servers(models_dir, work_dir) as (plain_port, batching_port):
        async with (
            grpc.aio.insecure_channel(f"localhost:{plain_port}") as plain,
            grpc.aio.insecure_channel(f"localhost:{batching_port}") as batching,
        ):
            plain_stub = PredictionService(plain)
            batching_stub = PredictionService(batching)
            status_stub = ModelService(batching)
            calls: dict[str, Call] = {
                OFF: lambda: plain_stub.Predict(request, timeout=30),
                ON: lambda: batching_stub.Predict(request, timeout=30),
            }
            for concurrency in CONCURRENCY:
                sides = dict(calls)
                if concurrency == CEILING_CONCURRENCY:
                    # A call with no tensors and no model run on the same server, client and
                    # cores: no batching can push a Predict past it.
                    sides[CEILING] = lambda: status_stub.GetModelStatus(status, timeout=30)
                rows.append(await alternate(sides, concurrency, alternation))
    return BatchingResults(alternation, rows)
