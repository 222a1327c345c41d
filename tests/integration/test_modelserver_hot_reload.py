"""New versions published while the model server runs: swapped in without a failed request."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import numpy as np
import pytest
import pytest_asyncio
import tensorflow as tf
from addresses import tcp_connects
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tf_serving_testdata import TESTDATA, needs_testdata

from benchmarks.stack import free_port
from services.modelserver.errors import StartupError
from services.modelserver.server import ModelServerHandle, start_model_server
from services.modelserver.settings import ModelServerSettings

pytestmark = needs_testdata

TWO_VERSIONS = TESTDATA / "saved_model_half_plus_two_2_versions"
MODEL = "half_plus_two"
POLL_S = 0.2


def publish(version_dir: Path, base_path: Path, version: int) -> Path:
    """Publishes a version atomically: copy into a hidden sibling, then rename it into place."""
    staging = base_path / f".{version}.tmp"
    shutil.copytree(version_dir, staging, copy_function=shutil.copyfile)
    for path in [staging, *staging.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return staging.rename(base_path / str(version))


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


class Client:
    """The calls these tests make, over one real channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)

    async def predicted_version(self) -> int:
        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=MODEL))
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[1.0]], np.float32)))
        response = await self._predictions.Predict(request, timeout=5)
        assert tf.make_ndarray(response.outputs["y"]).tolist() == [[2.5]]
        version: int = response.model_spec.version.value
        return version

    async def states(self) -> dict[int, tuple[str, str]]:
        response = await self._models.GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name=MODEL))
        )
        return {
            status.version: (
                get_model_status_pb2.ModelVersionStatus.State.Name(status.state),
                status.status.error_message,
            )
            for status in response.model_version_status
        }

    async def health(self, service: str) -> int:
        response = await self._health.Check(health_pb2.HealthCheckRequest(service=service))
        status: int = response.status
        return status


@pytest_asyncio.fixture(loop_scope="session")
async def base_path(tmp_path: Path) -> Path:
    path = tmp_path / MODEL
    path.mkdir()
    return path


@pytest.fixture
def settings(base_path: Path) -> ModelServerSettings:
    return ModelServerSettings(
        port=free_port(),
        model_name=MODEL,
        model_base_path=str(base_path),
        file_system_poll_wait_seconds=POLL_S,
        enable_grpc_healthcheck_service=True,
        max_num_load_retries=0,
    )


@pytest_asyncio.fixture(loop_scope="session")
async def server(settings: ModelServerSettings) -> AsyncIterator[ModelServerHandle]:
    handle = await start_model_server(settings)
    yield handle
    await handle.stop(0)


@pytest_asyncio.fixture(loop_scope="session")
async def client(server: ModelServerHandle) -> AsyncIterator[Client]:
    async with grpc.aio.insecure_channel(f"localhost:{server.port}") as channel:
        yield Client(channel)


@pytest.fixture
def with_version_123(base_path: Path) -> None:
    publish(TWO_VERSIONS / "00000123", base_path, 123)


@pytest.mark.usefixtures("with_version_123")
async def test_new_version_is_swapped_in_without_failed_requests(
    base_path: Path, client: Client
) -> None:
    assert await client.predicted_version() == 123
    seen: list[int] = []
    failures: list[BaseException] = []
    stop = asyncio.Event()

    async def keep_predicting() -> None:
        while not stop.is_set():
            try:
                seen.append(await client.predicted_version())
            except Exception as exc:  # every failure counts, whatever it is
                failures.append(exc)

    callers = [asyncio.create_task(keep_predicting()) for _ in range(4)]
    await asyncio.sleep(0.3)
    await asyncio.to_thread(publish, TWO_VERSIONS / "00000124", base_path, 124)
    await wait_until(lambda: _newest_is(seen, 124))
    await asyncio.sleep(0.3)  # keep calling across the unload of 123
    stop.set()
    await asyncio.gather(*callers)

    assert failures == []
    assert {123, 124} <= set(seen)
    assert await client.predicted_version() == 124
    assert await client.states() == {124: ("AVAILABLE", ""), 123: ("END", "")}


async def _newest_is(seen: list[int], version: int) -> bool:
    return bool(seen) and seen[-1] == version


@pytest.mark.usefixtures("with_version_123")
async def test_broken_version_leaves_the_serving_one_in_place(
    base_path: Path, client: Client
) -> None:
    broken = publish(TWO_VERSIONS / "00000124", base_path, 124)
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")

    async def gave_up() -> bool:
        return (await client.states()).get(124, ("", ""))[0] == "END"

    await wait_until(gave_up)
    state, error = (await client.states())[124]
    assert (state, error) == ("END", f"Can't parse {broken / 'saved_model.pb'} as binary proto")
    assert await client.predicted_version() == 123
    assert await client.health(MODEL) == health_pb2.HealthCheckResponse.SERVING

    # A fixed version under a new number is picked up as usual.
    publish(TWO_VERSIONS / "00000124", base_path, 125)

    async def serves_125() -> bool:
        return await client.predicted_version() == 125

    await wait_until(serves_125)


async def test_no_port_opens_until_a_version_is_published_and_then_health_follows_it(
    base_path: Path, settings: ModelServerSettings
) -> None:
    # As tensorflow_model_server: with a model that has no version, nothing listens, for as
    # long as that lasts; the first version opens the port.
    starting = asyncio.create_task(start_model_server(settings))
    await asyncio.sleep(10 * POLL_S)
    assert not starting.done()
    assert not tcp_connects("127.0.0.1", settings.port)

    publish(TWO_VERSIONS / "00000123", base_path, 123)
    handle = await asyncio.wait_for(starting, timeout=30)
    try:
        async with grpc.aio.insecure_channel(f"localhost:{handle.port}") as channel:
            client = Client(channel)
            assert await client.health("") == health_pb2.HealthCheckResponse.SERVING
            assert await client.predicted_version() == 123

            shutil.rmtree(base_path / "123")

            async def not_serving() -> bool:
                return bool(
                    await client.health(MODEL) == health_pb2.HealthCheckResponse.NOT_SERVING
                )

            await wait_until(not_serving)
            assert await client.health("") == health_pb2.HealthCheckResponse.NOT_SERVING
            assert await client.states() == {123: ("END", "")}
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await client.predicted_version()
            assert raised.value.code() == grpc.StatusCode.NOT_FOUND
            assert raised.value.details() == f"Servable not found for request: Latest({MODEL})"
    finally:
        await handle.stop(0)


async def test_a_model_whose_only_version_fails_to_load_fails_the_start(
    base_path: Path, settings: ModelServerSettings
) -> None:
    broken = publish(TWO_VERSIONS / "00000123", base_path, 123)
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    with pytest.raises(StartupError) as raised:
        await asyncio.wait_for(start_model_server(settings), timeout=30)
    assert str(raised.value) == (
        f"1 model(s) did not become available: {{{{name: {MODEL}}} due to error: "
        f"Can't parse {broken / 'saved_model.pb'} as binary proto}}, "
    )
    assert not tcp_connects("127.0.0.1", settings.port)


async def test_a_missing_base_path_holds_back_every_model_as_tensorflow_serving_does(
    tmp_path: Path,
) -> None:
    # TensorFlow Serving polls every base path in one pass, and one that is missing fails the
    # pass: no model's versions change until it is back.
    first, second = tmp_path / "first", tmp_path / "second"
    for base_path in (first, second):
        base_path.mkdir()
        publish(TWO_VERSIONS / "00000123", base_path, 123)
    config = tmp_path / "models.config"
    config.write_text(
        "model_config_list {\n"
        + "".join(
            f'  config {{ name: "{path.name}" base_path: "{path}" model_platform: "tensorflow" }}\n'
            for path in (first, second)
        )
        + "}\n"
    )
    handle = await start_model_server(
        ModelServerSettings(
            port=0, model_config_file=str(config), file_system_poll_wait_seconds=POLL_S
        )
    )
    try:
        async with grpc.aio.insecure_channel(f"localhost:{handle.port}") as channel:
            models = model_service_pb2_grpc.ModelServiceStub(channel)

            async def versions(name: str) -> dict[int, str]:
                response = await models.GetModelStatus(
                    get_model_status_pb2.GetModelStatusRequest(
                        model_spec=model_pb2.ModelSpec(name=name)
                    )
                )
                return {
                    status.version: get_model_status_pb2.ModelVersionStatus.State.Name(status.state)
                    for status in response.model_version_status
                }

            shutil.rmtree(second)
            publish(TWO_VERSIONS / "00000124", first, 124)
            await asyncio.sleep(10 * POLL_S)
            assert await versions("first") == {123: "AVAILABLE"}
            assert await versions("second") == {123: "AVAILABLE"}  # still serves, as it did

            second.mkdir()

            async def first_moved_on() -> bool:
                return (await versions("first")).get(124) == "AVAILABLE"

            await wait_until(first_moved_on)
            assert await versions("second") == {123: "END"}
    finally:
        await handle.stop(0)
