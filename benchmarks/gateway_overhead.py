"""What the gateway costs: Classify and RecognizeDigits through it, against the same Predict
(the request the gateway itself sends) straight to the model server."""

from __future__ import annotations

import io
from dataclasses import dataclass

import grpc
import numpy as np
from PIL import Image
from sklearn.datasets import load_wine
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from benchmarks.harness import Call, Measurement, Stability, measure
from services.gateway.digits import prepare_encoded
from services.gateway.tensors import to_tensor_proto
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from training.mnist import load_mnist_split

CONCURRENCY = (1, 32)  # one client, and saturation


@dataclass(frozen=True)
class OverheadRow:
    rpc: str
    concurrency: int
    direct: Measurement
    gateway: Measurement

    @property
    def p50_ratio(self) -> float:
        return self.gateway.p50_ms / self.direct.p50_ms

    @property
    def throughput_ratio(self) -> float:
        return self.gateway.throughput / self.direct.throughput


async def run(gateway_port: int, model_server_port: int, stability: Stability) -> list[OverheadRow]:
    wine_row = load_wine().data[0].astype(np.float32)
    classify = gateway_pb2.ClassifyRequest()
    classify.samples.add().ordered.values.extend(wine_row.tolist())
    png = _digit_png()
    recognize = gateway_pb2.RecognizeDigitsRequest(images=[gateway_pb2.Image(encoded=png)])

    rows = []
    async with (
        grpc.aio.insecure_channel(f"localhost:{gateway_port}") as gateway_channel,
        grpc.aio.insecure_channel(f"localhost:{model_server_port}") as direct_channel,
    ):
        gateway = gateway_pb2_grpc.GatewayServiceStub(gateway_channel)
        direct = prediction_service_pb2_grpc.PredictionServiceStub(direct_channel)
        versions = {
            m.name: m.serving_version
            for m in (await gateway.ListModels(gateway_pb2.ListModelsRequest(), timeout=10)).models
        }
        # The Predicts the gateway makes of these requests: the same tensors, pinned version.
        features = _predict("classifier", versions["classifier"], "features", wine_row[None])
        images = _predict("cnn", versions["cnn"], "images", prepare_encoded(png, "images")[None])
        cases: list[tuple[str, Call, Call]] = [
            (
                "Classify",
                lambda: gateway.Classify(classify, timeout=30),
                lambda: direct.Predict(features, timeout=30),
            ),
            (
                "RecognizeDigits",
                lambda: gateway.RecognizeDigits(recognize, timeout=30),
                lambda: direct.Predict(images, timeout=30),
            ),
        ]
        for rpc, through_gateway, straight_to_model_server in cases:
            for concurrency in CONCURRENCY:
                straight = await measure(straight_to_model_server, concurrency, stability)
                via = await measure(through_gateway, concurrency, stability)
                rows.append(OverheadRow(rpc, concurrency, straight, via))
    return rows


def _predict(model: str, version: int, name: str, array: np.ndarray) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.version.value = version
    request.model_spec.signature_name = "serving_default"
    request.inputs[name].CopyFrom(to_tensor_proto(np.asarray(array, np.float32)))
    return request


def _digit_png() -> bytes:
    """An MNIST test digit as a client would send it: a 56x56 PNG, dark ink on light paper."""
    grey = 255 - np.asarray(load_mnist_split().x_test[0] * 255, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(grey).resize((56, 56)).save(buffer, format="PNG")
    return buffer.getvalue()
