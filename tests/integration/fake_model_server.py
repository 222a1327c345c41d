"""A TensorFlow Serving that serves one model, the classifier's contract, and answers its
Predict calls with a status the test chooses: a model server that is overloaded, broken or at
odds with the gateway, on an ephemeral port, without training a model or breaking one.

It speaks tensorflow.serving.PredictionService and ModelService over a real grpc.aio server, as
the gateway's client expects of TensorFlow Serving; every other model is NOT_FOUND, with
TensorFlow Serving's wording.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc
import numpy as np
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_tensors import tensorflow_tensor

MODEL = "classifier"
VERSION = 1
FEATURES = ("alcohol", "malic_acid", "ash")
CLASSES = ("class_0", "class_1", "class_2")
Failure = tuple[grpc.StatusCode, str]
AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE


class FakeClassifierServer(
    prediction_service_pb2_grpc.PredictionServiceServicer,
    model_service_pb2_grpc.ModelServiceServicer,
):
    """Serves `classifier` version 1. ``fail`` chooses, per serving Predict call that arrives
    (numbered from 0), a status to end it with, or None to answer it; ``predict_calls`` counts
    those arrivals, retries included, and ``time_remaining`` holds each one's deadline left as
    it arrived (None: it had none)."""

    def __init__(self) -> None:
        self.fail: Callable[[int], Failure | None] = lambda _call: None
        self.predict_calls = 0
        self.time_remaining: list[float | None] = []

    def fail_always(self, code: grpc.StatusCode, details: str) -> None:
        self.fail = lambda _call: (code, details)

    async def GetModelStatus(
        self,
        request: get_model_status_pb2.GetModelStatusRequest,
        context: grpc.aio.ServicerContext,
    ) -> get_model_status_pb2.GetModelStatusResponse:
        await _require_model(request.model_spec.name, context)
        response = get_model_status_pb2.GetModelStatusResponse()
        response.model_version_status.add(version=VERSION, state=AVAILABLE)
        return response

    async def GetModelMetadata(
        self,
        request: get_model_metadata_pb2.GetModelMetadataRequest,
        context: grpc.aio.ServicerContext,
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        await _require_model(request.model_spec.name, context)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        serving = signatures.signature_def["serving_default"]
        _tensor_info(serving.inputs["features"], types_pb2.DT_FLOAT, [-1, len(FEATURES)])
        _tensor_info(serving.outputs["probabilities"], types_pb2.DT_FLOAT, [-1, len(CLASSES)])
        _tensor_info(serving.outputs["class_ids"], types_pb2.DT_INT64, [-1])
        metadata = signatures.signature_def["metadata"]
        _tensor_info(metadata.inputs["rows"], types_pb2.DT_INT32, [-1])
        _tensor_info(metadata.outputs["feature_names"], types_pb2.DT_STRING, [-1, len(FEATURES)])
        _tensor_info(metadata.outputs["class_names"], types_pb2.DT_STRING, [-1, len(CLASSES)])
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = MODEL
        response.model_spec.version.value = VERSION
        response.metadata["signature_def"].Pack(signatures)
        return response

    async def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> predict_pb2.PredictResponse:
        await _require_model(request.model_spec.name, context)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = MODEL
        response.model_spec.version.value = VERSION
        if request.model_spec.signature_name == "metadata":
            for name, values in (("feature_names", FEATURES), ("class_names", CLASSES)):
                response.outputs[name].CopyFrom(tensorflow_tensor(np.array([values], object)))
            return response
        call = self.predict_calls
        self.predict_calls += 1
        self.time_remaining.append(context.time_remaining())
        failure = self.fail(call)
        if failure is not None:
            await context.abort(*failure)
        rows = request.inputs["features"].tensor_shape.dim[0].size
        probabilities = np.full((rows, len(CLASSES)), 1 / len(CLASSES), np.float32)
        response.outputs["probabilities"].CopyFrom(tensorflow_tensor(probabilities))
        response.outputs["class_ids"].CopyFrom(tensorflow_tensor(np.zeros(rows, np.int64)))
        return response


def every_other(code: grpc.StatusCode, details: str) -> Callable[[int], Failure | None]:
    """Refuses every second call that arrives, as a backend at twice its capacity does."""
    refusals = itertools.cycle([(code, details), None])
    return lambda _call: next(refusals)


async def _require_model(name: str, context: grpc.aio.ServicerContext) -> None:
    if name != MODEL:
        await context.abort(
            grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {name}"
        )


def _tensor_info(info: meta_graph_pb2.TensorInfo, dtype: int, dims: list[int]) -> None:
    info.dtype = dtype
    for size in dims:
        info.tensor_shape.dim.add(size=size)


@dataclass
class RunningFake:
    """The fake and the port it listens on."""

    servicer: FakeClassifierServer
    port: int


async def serve_fake() -> AsyncIterator[RunningFake]:
    """Runs a fake on an ephemeral port for as long as the caller (a fixture) holds it."""
    servicer = FakeClassifierServer()
    server = grpc.aio.server()
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("localhost:0")
    await server.start()
    try:
        yield RunningFake(servicer, port)
    finally:
        await server.stop(None)
