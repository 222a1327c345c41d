"""A model server that shuts down cancels the calls it has received but not started: the
gateway's client retries them, and reports UNAVAILABLE, never INTERNAL, if the cancels go on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import numpy as np
import pytest
import pytest_asyncio
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from tensorflow_tensors import tensorflow_tensor

from services.gateway import errors
from services.gateway.backend import ModelServerClient
from services.gateway.domain import Deadline
from services.gateway.metrics import GatewayMetrics

pytestmark = pytest.mark.asyncio(loop_scope="session")


class CancellingModelServer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Cancels the first `cancels` Predict calls, as a model server shutting down does, then
    answers with the input doubled."""

    def __init__(self) -> None:
        self.cancels = 0
        self.calls = 0

    async def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> predict_pb2.PredictResponse:
        self.calls += 1
        if self.calls <= self.cancels:
            await context.abort(grpc.StatusCode.CANCELLED, "server shutting down")
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        values = np.frombuffer(request.inputs["x"].tensor_content, np.float32) * 2
        response.outputs["y"].CopyFrom(tensorflow_tensor(values))
        return response


@pytest_asyncio.fixture(loop_scope="session")
async def model_server() -> AsyncIterator[tuple[CancellingModelServer, int]]:
    servicer = CancellingModelServer()
    server = grpc.aio.server()
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("localhost:0")
    await server.start()
    yield servicer, port
    await server.stop(None)


async def predict(port: int) -> np.ndarray:
    client = ModelServerClient(
        f"localhost:{port}", max_message_bytes=2**20, metrics=GatewayMetrics()
    )
    try:
        answer = await client.predict(
            "m", 1, "serving_default", {"x": np.array([1.5], np.float32)}, Deadline.after(10)
        )
    finally:
        await client.close()
    return answer.outputs["y"]


async def test_a_cancelled_call_is_retried(
    model_server: tuple[CancellingModelServer, int],
) -> None:
    servicer, port = model_server
    servicer.cancels = 2  # the channel makes up to 3 attempts
    assert (await predict(port)).tolist() == [3.0]
    assert servicer.calls == 3


async def test_calls_cancelled_every_time_are_reported_unavailable(
    model_server: tuple[CancellingModelServer, int],
) -> None:
    servicer, port = model_server
    servicer.cancels = 1000
    with pytest.raises(errors.BackendUnavailable, match="shutting down"):
        await predict(port)
    assert servicer.calls == 3
