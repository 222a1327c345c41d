"""--enable_batching with TensorFlow Serving's model: concurrent Predicts are merged into fewer
model runs and every caller gets its own rows back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import pytest_asyncio
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_service_pb2_grpc
from tf_serving_testdata import copy_model, needs_testdata

from services.modelserver.monitoring import ServingMetrics
from services.modelserver.server import ModelServerHandle, start_model_server
from services.modelserver.settings import ModelServerSettings

pytestmark = [needs_testdata, pytest.mark.asyncio(loop_scope="session")]

CONCURRENT = 32
# One batch thread, and a batch waits 20 ms for company: Predicts sent together are merged.
BATCHING_PARAMETERS = """
max_batch_size { value: 128 }
batch_timeout_micros { value: 20000 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 1 }
"""


@pytest_asyncio.fixture(loop_scope="session")
async def batching_server(tmp_path: Path) -> AsyncIterator[ModelServerHandle]:
    copy_model("saved_model_half_plus_two_cpu", tmp_path / "default")
    parameters = tmp_path / "batching.config"
    parameters.write_text(BATCHING_PARAMETERS)
    handle = await start_model_server(
        ModelServerSettings(
            port=0,
            model_name="default",
            model_base_path=str(tmp_path / "default"),
            file_system_poll_wait_seconds=0,
            enable_batching=True,
            batching_parameters_file=str(parameters),
        )
    )
    yield handle
    await handle.stop(0)


def batch_counts(server: ModelServerHandle) -> tuple[float, float]:
    """Model runs of the batching session, and the requests that went into them."""
    runs = server.metrics.counters.value(ServingMetrics.BATCHED_RUNS)
    requests = server.metrics.registry.get_sample_value(
        ":tensorflow:serving:batching_session:input_batch_size_count"
    )
    return runs, requests or 0.0


def request(values: list[float]) -> predict_pb2.PredictRequest:
    message = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="default"))
    message.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array(values, np.float32)))
    return message


async def test_concurrent_predicts_share_model_runs(batching_server: ModelServerHandle) -> None:
    async with grpc.aio.insecure_channel(f"localhost:{batching_server.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        await stub.Predict(request([1.0]), timeout=20)  # connected and warm
        runs_before, requests_before = batch_counts(batching_server)
        inputs = [[float(i), float(i) + 0.5] for i in range(CONCURRENT)]
        responses = await asyncio.gather(
            *(stub.Predict(request(values), timeout=20) for values in inputs)
        )
    for values, response in zip(inputs, responses, strict=True):
        assert list(response.outputs["y"].float_val) == [v / 2 + 2 for v in values]
        assert response.model_spec.version.value == 123
    runs_after, requests_after = batch_counts(batching_server)
    assert requests_after - requests_before == CONCURRENT
    assert runs_after - runs_before < CONCURRENT, "no two Predicts were merged"
    assert (
        batching_server.metrics.counters.value(ServingMetrics.REQUEST_COUNT, "default", "OK")
        == CONCURRENT + 1
    )


async def test_a_predict_over_max_batch_size_is_refused(
    batching_server: ModelServerHandle,
) -> None:
    async with grpc.aio.insecure_channel(f"localhost:{batching_server.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Predict(request([1.0] * 129), timeout=20)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == "Task size 129 is larger than maximum input batch size 128"
