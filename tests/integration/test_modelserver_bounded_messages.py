"""The model server's errors about a 20 kB model or signature name keep TensorFlow Serving's
wording and code, with the name shortened: over gRPC, the whole name would overflow the
client's metadata limit (RESOURCE_EXHAUSTED "Stream removed" instead of the error); over REST,
it would be echoed back whole."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import numpy as np
import pytest
import pytest_asyncio
from status_assertions import expect_status
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_tensors import tensorflow_tensor
from tf_serving_testdata import copy_model, needs_testdata

from benchmarks.stack import free_port
from services.common.bounded import MESSAGE_BYTES
from services.modelserver.server import ModelServerHandle, start_model_server
from services.modelserver.settings import ModelServerSettings

pytestmark = [needs_testdata, pytest.mark.asyncio(loop_scope="session")]

HUGE = 20_000
NAME = "m" * HUGE
SHORTENED = f"{'m' * 64}… ({HUGE} characters)"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ModelServerHandle]:
    root: Path = tmp_path_factory.mktemp("bounded")
    copy_model("saved_model_half_plus_two_cpu", root / "default")
    handle = await start_model_server(
        ModelServerSettings(
            port=0,
            rest_api_port=free_port(),
            model_name="default",
            model_base_path=str(root / "default"),
            file_system_poll_wait_seconds=0,
        )
    )
    yield handle
    await handle.stop(0)


@pytest_asyncio.fixture(loop_scope="session")
async def channel(server: ModelServerHandle) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"localhost:{server.port}") as channel:
        yield channel


def predict_request(model: str, signature: str = "") -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    request.inputs["x"].CopyFrom(tensorflow_tensor(np.array([[1.0]], np.float32)))
    return request


def assert_short(details: str) -> None:
    assert len(details.encode()) <= MESSAGE_BYTES
    assert SHORTENED in details


async def test_predict_for_a_huge_model_name_is_not_found_shortly(
    channel: grpc.aio.Channel,
) -> None:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    details = await expect_status(
        stub.Predict(predict_request(NAME), timeout=10),
        grpc.StatusCode.NOT_FOUND,
        f"Servable not found for request: Latest({SHORTENED})",
    )
    assert_short(details)


async def test_model_status_for_a_huge_model_name_is_not_found_shortly(
    channel: grpc.aio.Channel,
) -> None:
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = NAME
    details = await expect_status(
        stub.GetModelStatus(request, timeout=10),
        grpc.StatusCode.NOT_FOUND,
        f"Could not find any versions of model {SHORTENED}",
    )
    assert_short(details)


async def test_predict_with_a_huge_signature_name_fails_its_precondition_shortly(
    channel: grpc.aio.Channel,
) -> None:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    details = await expect_status(
        stub.Predict(predict_request("default", NAME), timeout=10),
        grpc.StatusCode.FAILED_PRECONDITION,
        f'Serving signature key "{SHORTENED}" not found.',
    )
    assert_short(details)


async def test_rest_predict_with_a_huge_signature_name_is_a_short_400(
    server: ModelServerHandle,
) -> None:
    body = json.dumps({"signature_name": NAME, "instances": [1.0]})
    async with (
        aiohttp.ClientSession(f"http://localhost:{server.rest_port}") as http,
        http.post("/v1/models/default:predict", data=body) as response,
    ):
        status, answer = response.status, json.loads(await response.text())
    assert status == 400
    assert answer["error"] == f'Serving signature name: "{SHORTENED}" not found in signature def'


async def test_rest_status_of_a_long_model_name_is_a_short_404(
    server: ModelServerHandle,
) -> None:
    name = "m" * 7_000  # a request line stays under aiohttp's 8 kB limit
    async with (
        aiohttp.ClientSession(f"http://localhost:{server.rest_port}") as http,
        http.get(f"/v1/models/{name}") as response,
    ):
        status, answer = response.status, json.loads(await response.text())
    assert status == 404
    assert answer["error"] == f"Could not find any versions of model {'m' * 64}… (7000 characters)"
