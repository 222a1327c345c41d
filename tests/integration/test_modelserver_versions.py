"""Model config files, version policies and version labels, on a real model server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import pytest_asyncio
import tensorflow as tf
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from status_assertions import expect_exact_status
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tf_serving_testdata import TESTDATA, copy_model, needs_testdata

from services.modelserver.errors import StartupError
from services.modelserver.server import ModelServerHandle, start_model_server
from services.modelserver.settings import ModelServerSettings

pytestmark = needs_testdata

X = np.array([[1.0], [2.0], [5.0]], dtype=np.float32)

CONFIG = """
model_config_list {
  config {
    name: "latest" base_path: "$BASE" model_platform: "tensorflow"
    version_labels { key: "previous" value: 123 }
  }
  config {
    name: "all" base_path: "$BASE" model_platform: "tensorflow"
    model_version_policy { all {} }
    version_labels { key: "stable" value: 123 }
    version_labels { key: "canary" value: 124 }
  }
  config {
    name: "specific" base_path: "$BASE" model_platform: "tensorflow"
    model_version_policy { specific { versions: 123 } }
  }
}
"""


def predict_request(name: str, **spec: Any) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=name, **spec))
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(X))
    return request


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ModelServerHandle]:
    root = tmp_path_factory.mktemp("versions")
    base = copy_model("saved_model_half_plus_two_2_versions", root / "half_plus_two")
    config_file = root / "models.config"
    config_file.write_text(CONFIG.replace("$BASE", str(base)))
    handle = await start_model_server(
        ModelServerSettings(
            port=0,
            model_config_file=str(config_file),
            file_system_poll_wait_seconds=0,
            allow_version_labels_for_unavailable_models=True,
            enable_grpc_healthcheck_service=True,
            max_num_load_retries=0,
        )
    )
    yield handle
    await handle.stop(0)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def channel(server: ModelServerHandle) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"localhost:{server.port}") as channel:
        yield channel


@pytest.fixture
def predictions(channel: grpc.aio.Channel) -> prediction_service_pb2_grpc.PredictionServiceStub:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


async def served_version(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub, name: str, **spec: Any
) -> int:
    response = await predictions.Predict(predict_request(name, **spec))
    version: int = response.model_spec.version.value
    return version


async def version_states(channel: grpc.aio.Channel, name: str) -> list[tuple[int, str]]:
    response = await model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name=name))
    )
    return [
        (status.version, get_model_status_pb2.ModelVersionStatus.State.Name(status.state))
        for status in response.model_version_status
    ]


async def test_default_policy_serves_only_the_latest_version(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub, channel: grpc.aio.Channel
) -> None:
    assert await served_version(predictions, "latest") == 124
    assert await served_version(predictions, "latest", version={"value": 124}) == 124
    await expect_exact_status(
        predictions.Predict(predict_request("latest", version={"value": 123})),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Specific(latest, 123)",
    )
    assert await version_states(channel, "latest") == [(124, "AVAILABLE")]


async def test_policy_all_serves_every_version(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub, channel: grpc.aio.Channel
) -> None:
    assert await served_version(predictions, "all") == 124
    assert await served_version(predictions, "all", version={"value": 123}) == 123
    assert await version_states(channel, "all") == [(124, "AVAILABLE"), (123, "AVAILABLE")]


async def test_specific_policy(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    assert await served_version(predictions, "specific") == 123


async def test_version_labels(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    assert await served_version(predictions, "all", version_label="stable") == 123
    assert await served_version(predictions, "all", version_label="canary") == 124
    await expect_exact_status(
        predictions.Predict(predict_request("all", version_label="beta")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Unrecognized servable version label: beta",
    )
    await expect_exact_status(
        predictions.Predict(predict_request("latest", version_label="stable")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Unrecognized servable version label: stable",
    )
    # A label naming a version the policy does not serve resolves, then finds nothing.
    await expect_exact_status(
        predictions.Predict(predict_request("latest", version_label="previous")),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Specific(latest, 123)",
    )


async def test_metadata_of_a_specific_version(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    answer = json.loads(
        (TESTDATA / "saved_model_half_plus_two_2_versions_metadata.json").read_text()
    )
    response = await predictions.GetModelMetadata(
        get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=model_pb2.ModelSpec(name="all", version={"value": 123}),
            metadata_field=["signature_def"],
        )
    )
    assert response.model_spec == model_pb2.ModelSpec(name="all", version={"value": 123})
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_defs)
    assert signature_defs == json_format.ParseDict(
        answer["metadata"]["signature_def"], get_model_metadata_pb2.SignatureDefMap()
    )


async def test_good_model_config_serves_both_models(tmp_path: Path) -> None:
    text = (TESTDATA / "good_model_config.txt").read_text()
    for placeholder, model in [
        ("${TEST_HALF_PLUS_TWO_DIR}", "saved_model_half_plus_two_cpu"),
        ("${TEST_HALF_PLUS_THREE_DIR}", "saved_model_half_plus_three"),
    ]:
        text = text.replace(placeholder, str(copy_model(model, tmp_path / model)))
    config_file = tmp_path / "good_model_config.txt"
    config_file.write_text(text)

    handle = await start_model_server(
        ModelServerSettings(
            port=0,
            model_config_file=str(config_file),
            max_num_load_retries=0,
            enable_grpc_healthcheck_service=True,
        )
    )
    try:
        async with grpc.aio.insecure_channel(f"localhost:{handle.port}") as channel:
            predictions = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for name, expected in [
                ("half_plus_two", [[2.5], [3.0], [4.5]]),
                ("half_plus_three", [[3.5], [4.0], [5.5]]),
            ]:
                response = await predictions.Predict(predict_request(name))
                assert tf.make_ndarray(response.outputs["y"]).tolist() == expected
                health = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=name)
                )
                assert health.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await handle.stop(0)


async def test_bad_model_config_fails_startup_naming_the_file() -> None:
    bad = TESTDATA / "bad_model_config.txt"
    with pytest.raises(StartupError) as raised:
        await start_model_server(ModelServerSettings(port=0, model_config_file=str(bad)))
    assert str(bad) in str(raised.value)


async def test_labels_at_startup_need_the_flag(tmp_path: Path) -> None:
    config_file = tmp_path / "models.config"
    config_file.write_text(CONFIG.replace("$BASE", str(tmp_path)))
    with pytest.raises(StartupError, match="not currently available for inference"):
        await start_model_server(ModelServerSettings(port=0, model_config_file=str(config_file)))
