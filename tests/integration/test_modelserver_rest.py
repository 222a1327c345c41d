"""The REST API and Prometheus endpoint against TensorFlow Serving's own model and the answers
its tests and documentation give."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest
import pytest_asyncio
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tf_serving_testdata import TESTDATA, copy_model, needs_testdata

from benchmarks.stack import free_port
from services.modelserver.server import ModelServerHandle, start_model_server
from services.modelserver.settings import ModelServerSettings

pytestmark = [needs_testdata, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ModelServerHandle]:
    root = tmp_path_factory.mktemp("rest")
    copy_model("saved_model_half_plus_two_cpu", root / "default")
    handle = await start_model_server(
        ModelServerSettings(
            port=0,
            rest_api_port=free_port(),
            rest_api_enable_cors_support=True,
            model_name="default",
            model_base_path=str(root / "default"),
            file_system_poll_wait_seconds=0,
            monitoring_config_file=str(TESTDATA / "monitoring_config.txt"),
        )
    )
    yield handle
    await handle.stop(0)


@pytest_asyncio.fixture(loop_scope="session")
async def http(server: ModelServerHandle) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(f"http://localhost:{server.rest_port}") as session:
        yield session


async def call(
    http: aiohttp.ClientSession, path: str, body: Any = None, raw: str | None = None
) -> tuple[int, Any]:
    """POSTs ``body`` as JSON (or ``raw`` text) when given, GETs otherwise."""
    if body is None and raw is None:
        response = await http.get(path)
    else:
        data = raw if raw is not None else json.dumps(body)
        # TensorFlow Serving's tests send urllib's default form content type.
        response = await http.post(
            path, data=data, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
    async with response:
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        return response.status, json.loads(await response.text())


async def test_predict_rows_and_columns(http: aiohttp.ClientSession) -> None:
    assert await call(http, "/v1/models/default:predict", {"instances": [2.0, 3.0, 4.0]}) == (
        200,
        {"predictions": [3.0, 3.5, 4.0]},
    )
    assert await call(http, "/v1/models/default:predict", {"inputs": [2.0, 3.0, 4.0]}) == (
        200,
        {"outputs": [3.0, 3.5, 4.0]},
    )
    batch = {"signature_name": "serving_default", "instances": [[1.0], [2.0], [5.0]]}
    assert await call(http, "/v1/models/default/versions/123:predict", batch) == (
        200,
        {"predictions": [[2.5], [3.0], [4.5]]},
    )


async def test_classify_and_regress_examples(http: aiohttp.ClientSession) -> None:
    assert await call(
        http,
        "/v1/models/default:classify",
        {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]},
    ) == (200, {"results": [[["", 3.0]]]})
    assert await call(
        http,
        "/v1/models/default:regress",
        {"signature_name": "regress_x_to_y", "context": {"x": 9.0}, "examples": [{"x": 2.0}]},
    ) == (200, {"results": [3.0]})
    status, answer = await call(
        http, "/v1/models/default:regress", {"signature_name": "regress_x_to_y"}
    )
    assert (status, answer["error"]) == (
        400,
        "When method is regress, key 'examples' is expected and was not found",
    )
    status, answer = await call(http, "/v1/models/default:classify", {"examples": []})
    assert (status, answer["error"]) == (400, "'examples' value is an empty array")


async def test_status_and_metadata_are_tensorflow_servings(http: aiohttp.ClientSession) -> None:
    assert await call(http, "/v1/models/default") == (
        200,
        {
            "model_version_status": [
                {
                    "version": "123",
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        },
    )
    status, metadata = await call(http, "/v1/models/default/metadata")
    expected = json.loads((TESTDATA / "half_plus_two_model_metadata.json").read_text())
    assert status == 200
    assert metadata == expected


@pytest.mark.parametrize(
    ("path", "body", "raw", "status", "error"),
    [
        ("/v1/models/nope:predict", {"instances": [1.0]}, None, 404,
         "Servable not found for request: Latest(nope)"),
        ("/v1/models/default/versions/7", None, None, 404,
         "Could not find version 7 of model default"),
        ("/v1/models/default/versions/abc/metadata", None, None, 400,
         "Failed to convert version: abc to numeric."),
        ("/v1/models/default:explain", {"instances": [1.0]}, None, 400,
         "Malformed request: POST /v1/models/default:explain"),
        ("/v1/models/default:predict", None, "", 400, "JSON Parse error: The document is empty"),
        ("/v1/models/default:predict", None, "instances = [1, 2]", 400, "JSON Parse error"),
        ("/v1/models/default:predict", {"instances": [1.0], "inputs": [1.0]}, None, 400,
         "expecting only one of 'inputs' or 'instances'"),
        ("/v1/models/default:predict", {"signature_name": "serving_default"}, None, 400,
         "Missing 'inputs' or 'instances' key"),
        ("/v1/models/default:predict", {"instances": []}, None, 400,
         "No values in 'instances' array"),
        ("/v1/models/default:predict", {"instances": ["two"]}, None, 400,
         "is not of expected type: float"),
        ("/v1/models/default:predict", {"instances": [[1.0], [2.0, 3.0]]}, None, 400,
         "not a tensor"),
        ("/v1/models/default:predict", {"signature_name": "nope", "instances": [1.0]}, None,
         400, 'Serving signature name: "nope" not found in signature def'),
        ("/v1/models/default:predict", {"signature_name": 7, "instances": [1.0]}, None, 400,
         "'signature_name' key must be a string value."),
        # Hostile JSON: each is a 400, like any malformed JSON, inline or in a worker process.
        ("/v1/models/default:predict", None, '{"instances": ' + "[" * 1000 + "]" * 1000 + "}",
         400, "JSON Parse error: the document is nested too deeply"),
        ("/v1/models/default:predict", None, '{"instances": ' + "[" * 10**5 + "]" * 10**5 + "}",
         400, "JSON Parse error: the document is nested too deeply"),
        ("/v1/models/default:predict", None, '{"instances": [' + "9" * 5000 + "]}", 400,
         "JSON Parse error: a number has too many digits"),
        ("/v1/models/default:predict", {"instances": [2**70]}, None, 400,
         "'instances': JSON Value: [1180591620717411303424] is out of range: float"),
        ("/v1/models/default:predict", {"instances": [[1.0], [[1.0]]]}, None, 400,
         "not a tensor"),
        ("/v1/models/default:predict", {"instances": [None]}, None, 400, "not a tensor"),
        ("/v1/models/default:predict", {"instances": ["1.5"]}, None, 400,
         'JSON Value: ["1.5"] is not of expected type: float'),
        ("/v1/models/default:predict", {"instances": [1.0] * 10**5 + [None]}, None, 400,
         "not a tensor"),
        ("/v1/models/default:predict", {"inputs": {"x": [[1.0, 1.0]] * 10**4 + [[1.0]]}}, None,
         400, "ragged lists are not a tensor"),
    ],
)  # fmt: skip
async def test_errors_are_json_with_tensorflow_servings_status(
    http: aiohttp.ClientSession,
    path: str,
    body: Any,
    raw: str | None,
    status: int,
    error: str,
) -> None:
    got_status, answer = await call(http, path, body, raw)
    assert got_status == status, answer
    assert list(answer) == ["error"]
    assert error in answer["error"]


async def test_grpc_is_answered_while_a_big_rest_body_is_parsed(
    server: ModelServerHandle, http: aiohttp.ClientSession
) -> None:
    # About 12 MB of numbers, refused only once parsed (no such signature): the REST call's
    # time is the parse's. Both clients share the server's event loop, as a stalled loop
    # would stall them too.
    body = json.dumps({"signature_name": "nope", "instances": [[0.5] * 8] * 300_000})
    status_request = get_model_status_pb2.GetModelStatusRequest(
        model_spec=model_pb2.ModelSpec(name="default")
    )
    async with grpc.aio.insecure_channel(f"localhost:{server.port}") as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        await stub.GetModelStatus(status_request, timeout=30)
        assert (await call(http, "/v1/models/default:predict", raw=body))[0] == 400  # warm
        started = time.perf_counter()
        rest = asyncio.create_task(call(http, "/v1/models/default:predict", raw=body))
        latencies = []
        while not rest.done():
            sent = time.perf_counter()
            await stub.GetModelStatus(status_request, timeout=60)
            latencies.append(time.perf_counter() - sent)
            await asyncio.sleep(0.01)
        rest_s = time.perf_counter() - started
    assert (await rest)[0] == 400
    assert len(latencies) >= 3, (latencies, rest_s)
    # Each status call took a small part of the parse, not the whole of it: a stalled loop
    # would hold several calls for most of it. One call may still be held up by the machine
    # (a thread descheduled while it holds the GIL), so the second slowest is judged.
    assert sorted(latencies)[-2] < rest_s / 4, (sorted(latencies)[-2:], rest_s)


async def test_model_names_outside_the_config_share_one_label_value(
    server: ModelServerHandle, http: aiohttp.ClientSession
) -> None:
    async with grpc.aio.insecure_channel(f"localhost:{server.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for index in range(50):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=f"made-up-{index}")
            )
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.Predict(request, timeout=10)
            assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    async with http.get("/monitoring/prometheus/metrics") as response:
        text = await response.text()
    assert "made-up-" not in text
    unknown = ':tensorflow:serving:request_count{model_name="(unknown)",status="NOT_FOUND"} '
    [line] = [line for line in text.splitlines() if line.startswith(unknown)]
    assert int(line.removeprefix(unknown)) >= 50


async def test_prometheus_metrics_use_tensorflow_servings_names(
    http: aiohttp.ClientSession,
) -> None:
    await call(http, "/v1/models/default:predict", {"instances": [1.0]})
    status, _ = await call(
        http, "/v1/models/default:predict", {"inputs": {"x": [1.0], "extra": [1.0]}}
    )
    assert status == 400
    async with http.get("/monitoring/prometheus/metrics") as response:
        assert response.status == 200
        text = await response.text()
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert ':tensorflow:serving:request_count{model_name="default",status="OK"}' in text
    assert (
        ':tensorflow:serving:request_count{model_name="default",status="INVALID_ARGUMENT"}' in text
    )
    assert (
        ':tensorflow:serving:request_latency_count{API="Predict",entrypoint="REST",'
        'model_name="default"}' in text
    )
    assert "_total" not in text
