"""`make bench-gpu`: the model server with batching on a GPU, against the same on the CPU.

CNN Predict (B images per request) and word2vec `similar` (B words per request, k=10) at a few
batch sizes with 8 requests outstanding, first with the GPU visible, then with
CUDA_VISIBLE_DEVICES=-1, in one run on one machine. Writes a Markdown table.

python -m benchmarks.gpu [--models-dir models] [--output reports/bench-gpu.md]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from benchmarks.harness import Measurement, Stability, measure
from benchmarks.stack import model_server_flags
from services.gateway.model_server_api import PredictionService
from services.gateway.tensors import to_tensor_proto
from services.generated.tfserving.v1 import predict_pb2
from services.suite.children import Child
from services.suite.model_config import model_config_text
from training.contracts import cnn, word2vec
from training.contracts.common import IMAGE_SIZE

BATCH_SIZES = (1, 32, 256)
OUTSTANDING = 8
MODELS = (cnn.MODEL_NAME, word2vec.MODEL_NAME)
# Large batches are what a GPU is for: wait up to 1 ms to fill them.
BATCHING_PARAMETERS = """\
max_batch_size { value: 2048 }
batch_timeout_micros { value: 1000 }
max_enqueued_batches { value: 1000 }
num_batch_threads { value: 4 }
"""


@dataclass(frozen=True)
class GpuRow:
    model: str
    batch_size: int
    gpu: Measurement
    cpu: Measurement

    def samples_per_s(self, measurement: Measurement) -> float:
        return measurement.throughput * self.batch_size


@contextlib.contextmanager
def model_server(models_dir: Path, work_dir: Path, *, gpu: bool) -> Iterator[int]:
    config = work_dir / "gpu-models.config"
    config.write_text(model_config_text(models_dir, list(MODELS)))
    parameters = work_dir / "gpu-batching.config"
    parameters.write_text(BATCHING_PARAMETERS)
    previous = os.environ.get("CUDA_VISIBLE_DEVICES")
    if not gpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"  # the child inherits it
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    child = Child(
        f"modelserver ({'GPU' if gpu else 'CPU'})",
        "services.modelserver",
        model_server_flags(config, parameters),
    )
    try:
        yield child.wait_for_port(600)
    finally:
        child.stop(timeout_s=30)
        if previous is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = previous


def requests(batch_size: int) -> dict[str, predict_pb2.PredictRequest]:
    rng = np.random.default_rng(0)
    images = rng.random((batch_size, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    digits = predict_pb2.PredictRequest()
    digits.model_spec.name = cnn.MODEL_NAME
    digits.inputs[cnn.IMAGES_INPUT].CopyFrom(to_tensor_proto(images))
    words = predict_pb2.PredictRequest()
    words.model_spec.name = word2vec.MODEL_NAME
    words.model_spec.signature_name = word2vec.SIMILAR_SIGNATURE
    words.inputs[word2vec.WORDS_INPUT].CopyFrom(
        to_tensor_proto(np.array(["the"] * batch_size, dtype=object))
    )
    words.inputs[word2vec.K_INPUT].CopyFrom(to_tensor_proto(np.full(batch_size, 10, np.int32)))
    return {cnn.MODEL_NAME: digits, word2vec.MODEL_NAME: words}


async def measure_server(port: int, stability: Stability) -> dict[tuple[str, int], Measurement]:
    results = {}
    async with grpc.aio.insecure_channel(
        f"localhost:{port}", options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    ) as channel:
        stub = PredictionService(channel)
        for batch_size in BATCH_SIZES:
            for model, request in requests(batch_size).items():
                call = functools.partial(stub.Predict, request, timeout=60)
                results[model, batch_size] = await measure(call, OUTSTANDING, stability)
    return results


def render(rows: Sequence[GpuRow], device: str) -> str:
    lines = [
        "## Model server on a GPU",
        "",
        f"Produced by `make bench-gpu` on {device}. Predict with B samples per request, "
        f"{OUTSTANDING} requests outstanding, batching on (`max_batch_size` 2048, "
        "`batch_timeout_micros` 1000); the same server with `CUDA_VISIBLE_DEVICES=-1` beside it.",
        "",
        "| model | B | GPU: samples/s | GPU: p50 ms | CPU: samples/s | CPU: p50 ms | GPU/CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = row.samples_per_s(row.gpu) / row.samples_per_s(row.cpu)
        lines.append(
            f"| {row.model} | {row.batch_size} | {row.samples_per_s(row.gpu):.0f} "
            f"| {row.gpu.p50_ms:.2f} | {row.samples_per_s(row.cpu):.0f} | {row.cpu.p50_ms:.2f} "
            f"| {ratio:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__)
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--output", type=Path, default=Path("reports/bench-gpu.md"))
    options = parser.parse_args(argv)

    import tensorflow as tf

    from services.suite.trainer import train_missing

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        sys.exit("make bench-gpu: TensorFlow sees no GPU on this machine")
    device = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "a GPU")
    models_dir = options.models_dir.resolve()
    train_missing(models_dir, "quick", list(MODELS))
    stability = Stability(window_s=1.0, max_windows=6)
    with tempfile.TemporaryDirectory() as work:
        with model_server(models_dir, Path(work), gpu=True) as port:
            on_gpu = asyncio.run(measure_server(port, stability))
        with model_server(models_dir, Path(work), gpu=False) as port:
            on_cpu = asyncio.run(measure_server(port, stability))
    rows = [GpuRow(model, b, on_gpu[model, b], on_cpu[model, b]) for (model, b) in on_gpu]
    report = render(rows, device)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(report)
    sys.stdout.write(report)


if __name__ == "__main__":
    main()
