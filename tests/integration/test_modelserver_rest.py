"""The REST API and Prometheus endpoint against TensorFlow Serving's own model and the answers
its tests and documentation give."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from tf_serving_testdata import TESTDATA, copy_model, needs_testdata

from services.modelserver.server import ModelServerHandle, start_model_server
from services.modelserver.settings import ModelServerSettings
from services.suite.stack import free_port

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
