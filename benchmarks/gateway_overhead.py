"""What the gateway costs: Classify and RecognizeDigits through it, against the same Predict
(the request the gateway itself sends) straight to the model server, and through a bare
pass-through proxy (benchmarks.proxy): the floor one more Python gRPC hop sets.

Each path gets one window of a fixed length, in repetitions whose order alternates (direct,
proxy, gateway; then the reverse; ...), so that a machine drifting during the run weighs on every
path alike (benchmarks.harness.alternate); ratios are taken within a repetition, and their
median and range are reported."""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import numpy as np
from PIL import Image
from sklearn.datasets import load_wine

from benchmarks.harness import Alternation, Call, Metric, Repeated, Spread, Window, alternate
from benchmarks.stack import Started, cpu_seconds, started_child
from services.gateway.backend import predict_request
from services.gateway.digits import prepare_encoded
from services.gateway.model_server_api import PredictionService
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.generated.tfserving.v1 import predict_pb2
from training.contracts import classifier, cnn
from training.mnist import load_mnist_split

CONCURRENCY = (1, 32)  # one client, and saturation
PATHS = ("direct", "proxy", "gateway")  # what a request goes through
REPETITIONS = 3


@dataclass(frozen=True)
class OverheadRow:
    rpc: str
    # Each path's measurements, one per repetition, in the order of the repetitions.
    measured: Repeated

    @property
    def concurrency(self) -> int:
        return self.measured.concurrency

    def median(self, path: str, metric: Metric) -> float:
        return self.measured.median(path, metric)

    def ratio(self, metric: Metric, of: str = "gateway", to: str = "proxy") -> Spread:
        """``of``'s value over ``to``'s within each repetition: their median and range."""
        return self.measured.ratio(metric, of, to)

    def errors(self, path: str) -> int:
        return self.measured.errors(path)


@dataclass(frozen=True)
class OverheadResults:
    alternation: Alternation
    rows: list[OverheadRow]


@contextlib.contextmanager
def started_proxy(model_server_port: int) -> Iterator[Started]:
    """benchmarks.proxy in a process of its own, in front of the model server."""
    flags = ["--port=0", f"--target=localhost:{model_server_port}"]
    with started_child("proxy", "benchmarks.proxy", flags) as proxy:
        yield proxy


async def run(
    gateway: Started, proxy: Started, model_server: Started, window: Window
) -> OverheadResults:
    alternation = Alternation(window, REPETITIONS)
    wine_row = load_wine().data[0].astype(np.float32)
    classify = gateway_pb2.ClassifyRequest()
    classify.samples.add().ordered.values.extend(wine_row.tolist())
    png = _digit_png()
    recognize = gateway_pb2.RecognizeDigitsRequest(images=[gateway_pb2.Image(encoded=png)])

    rows = []
    async with (
        grpc.aio.insecure_channel(f"localhost:{gateway.port}") as gateway_channel,
        grpc.aio.insecure_channel(f"localhost:{proxy.port}") as proxy_channel,
        grpc.aio.insecure_channel(f"localhost:{model_server.port}") as direct_channel,
    ):
        through_gateway = gateway_pb2_grpc.GatewayServiceStub(gateway_channel)
        through_proxy = PredictionService(proxy_channel)
        direct = PredictionService(direct_channel)
        listed = await through_gateway.ListModels(gateway_pb2.ListModelsRequest(), timeout=10)
        versions = {m.name: m.serving_version for m in listed.models}
        # The Predicts the gateway makes of these requests: the same tensors, pinned version.
        features = _predict(
            classifier.MODEL_NAME,
            versions[classifier.MODEL_NAME],
            classifier.SERVING_SIGNATURE,
            {classifier.FEATURES_INPUT: wine_row[None]},
        )
        images = _predict(
            cnn.MODEL_NAME,
            versions[cnn.MODEL_NAME],
            cnn.SERVING_SIGNATURE,
            {cnn.IMAGES_INPUT: prepare_encoded(png, "images")[None]},
        )
        cases: dict[str, dict[str, Call]] = {
            "Classify": {
                "direct": lambda: direct.Predict(features, timeout=30),
                "proxy": lambda: through_proxy.Predict(features, timeout=30),
                "gateway": lambda: through_gateway.Classify(classify, timeout=30),
            },
            "RecognizeDigits": {
                "direct": lambda: direct.Predict(images, timeout=30),
                "proxy": lambda: through_proxy.Predict(images, timeout=30),
                "gateway": lambda: through_gateway.RecognizeDigits(recognize, timeout=30),
            },
        }
        # The direct path has no process of its own in between to count the CPU of.
        cpu_clocks = {
            "proxy": functools.partial(cpu_seconds, proxy.child.pid),
            "gateway": functools.partial(cpu_seconds, gateway.child.pid),
        }
        for rpc, calls in cases.items():
            for concurrency in CONCURRENCY:
                in_order = {path: calls[path] for path in PATHS}
                measured = await alternate(in_order, concurrency, alternation, cpu_clocks)
                rows.append(OverheadRow(rpc, measured))
    return OverheadResults(alternation, rows)


def _predict(
    model: str, version: int, signature: str, inputs: dict[str, np.ndarray]
) -> predict_pb2.PredictRequest:
    float32 = {name: np.asarray(array, np.float32) for name, array in inputs.items()}
    return predict_request(model, version, signature, float32)


def _digit_png() -> bytes:
    """An MNIST test digit as a client would send it: a 56x56 PNG, dark ink on light paper."""
    grey = 255 - np.asarray(load_mnist_split().x_test[0] * 255, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(grey).resize((56, 56)).save(buffer, format="PNG")
    return buffer.getvalue()
