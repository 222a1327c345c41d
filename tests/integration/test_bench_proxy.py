"""The benchmarks' bare pass-through proxy, `python -m benchmarks.proxy`, in a process of its own
in front of a fake TensorFlow Serving: a Predict's bytes go through unchanged, the client's
deadline goes on with them, and the model server's status comes back as it was."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import grpc
import numpy as np
import pytest
import pytest_asyncio
from fake_model_server import MODEL, RunningFake, serve_fake
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from tensorflow_tensors import tensorflow_tensor

from services.suite.children import Child

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(loop_scope="session")
async def fake() -> AsyncIterator[RunningFake]:
    async for running in serve_fake():
        yield running


@pytest.fixture
def proxy_port(fake: RunningFake) -> Iterator[int]:
    proxy = Child("proxy", "benchmarks.proxy", ["--port=0", f"--target=localhost:{fake.port}"])
    try:
        yield proxy.wait_for_port(60)
    finally:
        assert proxy.stop(timeout_s=10) == 0  # SIGTERM: it stops cleanly


def predict_request() -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "serving_default"
    request.inputs["features"].CopyFrom(tensorflow_tensor(np.ones((2, 3), np.float32)))
    return request


async def predict(port: int, deadline_s: float | None = 10) -> predict_pb2.PredictResponse:
    async with grpc.aio.insecure_channel(f"localhost:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response: predict_pb2.PredictResponse = await stub.Predict(
            predict_request(), timeout=deadline_s
        )
        return response


async def test_a_predict_comes_back_as_the_model_server_answered_it(
    fake: RunningFake, proxy_port: int
) -> None:
    through_proxy = await predict(proxy_port)
    direct = await predict(fake.port)
    assert through_proxy.SerializeToString() == direct.SerializeToString()
    assert list(through_proxy.outputs["probabilities"].tensor_shape.dim) == list(
        direct.outputs["probabilities"].tensor_shape.dim
    )
    assert fake.servicer.predict_calls == 2


async def test_the_client_deadline_goes_on_to_the_model_server(
    fake: RunningFake, proxy_port: int
) -> None:
    await predict(proxy_port, deadline_s=30)
    await predict(proxy_port, deadline_s=None)
    with_deadline, without = fake.servicer.time_remaining
    assert with_deadline is not None and 20 < with_deadline <= 30  # less the hop's own time
    assert without is None


@pytest.mark.parametrize(
    ("code", "details"),
    [
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "the batch queue is full"),
        (grpc.StatusCode.INVALID_ARGUMENT, "Expects arg[0] to be float but double is provided"),
    ],
    ids=lambda value: getattr(value, "name", "details"),
)
async def test_a_model_server_status_comes_back_with_its_code_and_details(
    fake: RunningFake, proxy_port: int, code: grpc.StatusCode, details: str
) -> None:
    fake.servicer.fail_always(code, details)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await predict(proxy_port)
    assert (failed.value.code(), failed.value.details()) == (code, details)


def test_the_proxy_does_not_import_tensorflow() -> None:
    check = "import sys, benchmarks.proxy; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    ).stdout
    assert "tensorflow" not in loaded and "numpy" not in loaded
