"""Changing the served models at run time: re-reading --model_config_file on its poll period,
and HandleReloadConfigRequest, with TensorFlow Serving's test models; a reload request takes
base paths only from the allowed roots (--model_base_path_allowed_roots)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import pytest_asyncio
import tensorflow as tf
from google.protobuf import text_format
from status_assertions import expect_status
from tensorflow_serving.apis import (
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2
from tf_serving_testdata import copy_model, needs_testdata

from services.modelserver.server import ModelServerHandle, start_model_server
from services.modelserver.settings import ModelServerSettings

pytestmark = [needs_testdata, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    copy_model("saved_model_half_plus_two_cpu", tmp_path / "half_plus_two")
    copy_model("saved_model_half_plus_three", tmp_path / "half_plus_three")
    copy_model("saved_model_half_plus_two_2_versions", tmp_path / "two_versions")
    return tmp_path


def config_text(repository: Path, *names: str, labels: str = "") -> str:
    models = "".join(
        f'config {{ name: "{name}" base_path: "{repository / name}" '
        f'model_platform: "tensorflow" {labels} }}\n'
        for name in names
    )
    return f"model_config_list {{\n{models}}}\n"


def config_proto(
    repository: Path, *names: str, labels: str = ""
) -> model_server_config_pb2.ModelServerConfig:
    config = model_server_config_pb2.ModelServerConfig()
    return text_format.Parse(config_text(repository, *names, labels=labels), config)


async def start(repository: Path, poll_s: int, **settings: Any) -> ModelServerHandle:
    config_file = repository / "models.config"
    config_file.write_text(config_text(repository, "half_plus_two"))
    return await start_model_server(
        ModelServerSettings(
            port=0,
            model_config_file=str(config_file),
            model_config_file_poll_wait_seconds=poll_s,
            file_system_poll_wait_seconds=0,
            max_num_load_retries=0,
            **settings,
        )
    )


@dataclass
class Clients:
    predictions: prediction_service_pb2_grpc.PredictionServiceStub
    models: model_service_pb2_grpc.ModelServiceStub


@pytest_asyncio.fixture(loop_scope="session")
async def clients(repository: Path) -> AsyncIterator[Clients]:
    """A server started with half_plus_two and no config polling, and its stubs."""
    server = await start(repository, poll_s=0)
    async with grpc.aio.insecure_channel(f"localhost:{server.port}") as channel:
        yield Clients(
            prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel),
        )
    await server.stop(0)


async def predict(
    stub: prediction_service_pb2_grpc.PredictionServiceStub, name: str, **spec: object
) -> float:
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=name, **spec))
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([2.0], np.float32)))
    response = await stub.Predict(request, timeout=10)
    return float(response.outputs["y"].float_val[0])


async def eventually(check: Callable[[], Awaitable[bool]], attempts: int = 150) -> None:
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the condition never held")


async def test_a_rewritten_config_file_is_served_on_the_poll_period(repository: Path) -> None:
    server = await start(repository, poll_s=1)
    try:
        async with grpc.aio.insecure_channel(f"localhost:{server.port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            assert await predict(stub, "half_plus_two") == 3.0
            (repository / "models.config").write_text(config_text(repository, "half_plus_three"))

            async def two_is_gone() -> bool:
                try:
                    await predict(stub, "half_plus_two")
                except grpc.aio.AioRpcError as exc:
                    return exc.code() == grpc.StatusCode.NOT_FOUND
                return False

            await eventually(two_is_gone)
            # The new model was loaded before the old one left.
            assert await predict(stub, "half_plus_three") == 4.0
            (repository / "models.config").write_text("model_config_list { broken")
            await asyncio.sleep(1.5)  # a broken file is logged; the models stay
            assert await predict(stub, "half_plus_three") == 4.0
    finally:
        await server.stop(0)


async def test_with_a_zero_poll_period_the_file_is_read_once(repository: Path) -> None:
    server = await start(repository, poll_s=0)
    try:
        (repository / "models.config").write_text(config_text(repository, "half_plus_three"))
        await asyncio.sleep(1.5)
        assert server.manager.model_names == ["half_plus_two"]
    finally:
        await server.stop(0)


async def test_reload_request_adds_removes_and_labels(repository: Path, clients: Clients) -> None:
    predictions, models = clients.predictions, clients.models
    response = await models.HandleReloadConfigRequest(
        model_management_pb2.ReloadConfigRequest(
            config=config_proto(repository, "half_plus_three", "two_versions")
        ),
        timeout=30,
    )
    assert response.status.error_code == 0
    assert await predict(predictions, "half_plus_three") == 4.0
    await expect_status(
        predict(predictions, "half_plus_two"),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(half_plus_two)",
    )

    labelled = 'model_version_policy { all {} } version_labels { key: "stable" value: 123 }'
    await models.HandleReloadConfigRequest(
        model_management_pb2.ReloadConfigRequest(
            config=config_proto(
                repository, "two_versions", labels="model_version_policy { all {} }"
            )
        ),
        timeout=30,
    )
    await models.HandleReloadConfigRequest(
        model_management_pb2.ReloadConfigRequest(
            config=config_proto(repository, "two_versions", labels=labelled)
        ),
        timeout=30,
    )
    spec = model_pb2.ModelSpec(name="two_versions", version_label="stable")
    request = predict_pb2.PredictRequest(model_spec=spec)
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([2.0], np.float32)))
    answered = await predictions.Predict(request, timeout=10)
    assert answered.model_spec.version.value == 123


@pytest.mark.parametrize(
    ("config", "code", "message"),
    [
        (
            'model_config_list { config { name: "rel" base_path: "relative/path" '
            'model_platform: "tensorflow" } }',
            grpc.StatusCode.INVALID_ARGUMENT,
            "Expected model rel to have an absolute path or URI",
        ),
        (
            "custom_model_config { }",
            grpc.StatusCode.INVALID_ARGUMENT,
            "Only ModelConfigList is currently supported",
        ),
        (
            'model_config_list { config { name: "gone" base_path: "ROOT/no/such/dir" '
            'model_platform: "tensorflow" } }',
            grpc.StatusCode.UNKNOWN,
            "1 model(s) did not become available: {{name: gone} due to error: Could not find "
            "base path ROOT/no/such/dir for servable gone}",
        ),
    ],
)
async def test_refused_reloads_answer_with_their_status(
    repository: Path, clients: Clients, config: str, code: grpc.StatusCode, message: str
) -> None:
    # ROOT: the folder the start-up model lives in, where reloads may take base paths from.
    config, message = (text.replace("ROOT", str(repository)) for text in (config, message))
    models = clients.models
    request = model_management_pb2.ReloadConfigRequest(
        config=text_format.Parse(config, model_server_config_pb2.ModelServerConfig())
    )
    await expect_status(models.HandleReloadConfigRequest(request, timeout=30), code, message)


async def test_a_label_must_name_an_available_version(repository: Path, clients: Clients) -> None:
    models = clients.models
    request = model_management_pb2.ReloadConfigRequest(
        config=config_proto(
            repository, "half_plus_two", labels='version_labels { key: "next" value: 999 }'
        )
    )
    await expect_status(
        models.HandleReloadConfigRequest(request, timeout=30),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Request to assign label to version 999 of model half_plus_two",
    )


@pytest.fixture
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder outside the repository holding a model a caller should not be able to load."""
    folder = tmp_path_factory.mktemp("elsewhere")
    copy_model("saved_model_half_plus_three", folder / "half_plus_three")
    return folder


async def reload(
    server: ModelServerHandle, folder: Path, *names: str
) -> model_management_pb2.ReloadConfigResponse:
    async with grpc.aio.insecure_channel(f"localhost:{server.port}") as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        request = model_management_pb2.ReloadConfigRequest(config=config_proto(folder, *names))
        return await stub.HandleReloadConfigRequest(request, timeout=30)


@pytest.mark.parametrize("route", ["outside", "dot-dot", "symlink"])
async def test_a_base_path_outside_the_allowed_roots_is_refused(
    repository: Path, elsewhere: Path, route: str
) -> None:
    # The same model outside the root, reached directly, through '..', or through a symlink
    # inside the root: each resolves outside and is refused before anything is loaded.
    if route == "outside":
        folder = elsewhere
    elif route == "dot-dot":
        folder = repository / ".." / elsewhere.name
        assert (folder / "half_plus_three").is_dir()
    else:
        folder = repository / "linked"
        folder.mkdir()
        (folder / "half_plus_three").symlink_to(elsewhere / "half_plus_three")
    server = await start(repository, poll_s=0)
    try:
        await expect_status(
            reload(server, folder, "half_plus_three"),
            grpc.StatusCode.INVALID_ARGUMENT,
            f"model_config_list.config[0].base_path: {folder / 'half_plus_three'} is not under "
            "a directory the server allows (--model_base_path_allowed_roots)",
        )
        assert server.manager.model_names == ["half_plus_two"]
    finally:
        await server.stop(0)


async def test_the_flag_names_the_roots_reloads_may_use(repository: Path, elsewhere: Path) -> None:
    server = await start(
        repository, poll_s=0, model_base_path_allowed_roots=f"{repository},{elsewhere}"
    )
    try:
        response = await reload(server, elsewhere, "half_plus_three")
        assert response.status.error_code == 0
        assert server.manager.model_names == ["half_plus_three"]
    finally:
        await server.stop(0)


async def test_the_operators_config_file_is_not_bound_by_the_roots(
    repository: Path, elsewhere: Path
) -> None:
    server = await start(repository, poll_s=1)
    try:
        (repository / "models.config").write_text(config_text(elsewhere, "half_plus_three"))

        async def served() -> bool:
            await asyncio.sleep(0)
            return server.manager.model_names == ["half_plus_three"]

        await eventually(served)
    finally:
        await server.stop(0)
