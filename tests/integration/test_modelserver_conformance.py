"""The cases of TensorFlow Serving's own integration test (tensorflow_model_server_test.py) that
need a server process: the `tensorflow_model_server` command started with the flags that test
uses, its model and config files, and the answers it expects."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_service_pb2_grpc
from tf_serving_testdata import TESTDATA, copy_model, needs_testdata

from benchmarks.stack import free_port

pytestmark = [needs_testdata, pytest.mark.asyncio(loop_scope="session")]

COMMAND = str(Path(sys.executable).parent / "tensorflow_model_server")
READY_TIMEOUT_S = 120


class ServerProcess:
    """tensorflow_model_server as TensorFlow Serving's test base starts it."""

    def __init__(self, tmp_path: Path, *flags: str) -> None:
        self.port = free_port()
        self.socket_path = tmp_path / "tf-serving.sock"
        self.command = [
            COMMAND,
            f"--port={self.port}",
            f"--rest_api_port={free_port()}",
            "--rest_api_timeout_in_ms=5000",
            f"--grpc_socket_path={self.socket_path}",
            *flags,
        ]
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    async def wait_until_ready(self) -> None:
        """As the test base does: a Predict to a missing model answers 'Servable ...'."""
        async with grpc.aio.insecure_channel(f"localhost:{self.port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name="intentionally_missing_model")
            )
            for _ in range(READY_TIMEOUT_S * 4):
                try:
                    await stub.Predict(request, timeout=5)
                except grpc.aio.AioRpcError as exc:
                    if "Servable" in (exc.details() or ""):
                        return
                assert self.process is not None and self.process.returncode is None
                await asyncio.sleep(0.25)
        raise AssertionError("the server never became ready")

    async def stop(self) -> str:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.terminate()
        _, stderr = await self.process.communicate()
        return stderr.decode()


ServerFactory = Callable[..., Awaitable[ServerProcess]]


@pytest_asyncio.fixture(loop_scope="session")
async def serve(tmp_path: Path) -> AsyncIterator[ServerFactory]:
    """Starts servers with extra flags, waits until they are ready, stops them after."""
    started: list[ServerProcess] = []

    async def start(*flags: str) -> ServerProcess:
        server = ServerProcess(tmp_path, *flags)
        started.append(server)
        await server.start()
        await server.wait_until_ready()
        return server

    yield start
    for server in started:
        await server.stop()


async def predict(
    target: str, model: str, output_filter: Sequence[str] = (), batch: bool = False
) -> tuple[float, int]:
    """VerifyPredictRequest of the test base: x = 2.0, one value of y and the version."""
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model, signature_name="serving_default"),
        output_filter=list(output_filter),
    )
    shape = [1, 1] if batch else [1]
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([2.0], dtype=tf.float32, shape=shape))
    async with grpc.aio.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = await stub.Predict(request, timeout=20)
    y = response.outputs["y"]
    assert y.dtype == tf.float32.as_datatype_enum
    assert len(y.float_val) == 1
    assert response.model_spec.signature_name == "serving_default"
    return y.float_val[0], response.model_spec.version.value


def good_model_config(tmp_path: Path) -> Path:
    text = (TESTDATA / "good_model_config.txt").read_text()
    text = text.replace(
        "${TEST_HALF_PLUS_TWO_DIR}",
        str(copy_model("saved_model_half_plus_two_cpu", tmp_path / "half_plus_two")),
    ).replace(
        "${TEST_HALF_PLUS_THREE_DIR}",
        str(copy_model("saved_model_half_plus_three", tmp_path / "half_plus_three")),
    )
    path = tmp_path / "good_model_config.txt"
    path.write_text(text)
    return path


async def test_good_model_config(serve: ServerFactory, tmp_path: Path) -> None:
    server = await serve(f"--model_config_file={good_model_config(tmp_path)}")
    target = f"localhost:{server.port}"
    for output_filter in ((), ("y",)):
        assert await predict(target, "half_plus_two", output_filter) == (3.0, 123)
        assert await predict(target, "half_plus_three", output_filter) == (4.0, 123)


async def test_predict_over_the_unix_socket_with_batching(
    serve: ServerFactory, tmp_path: Path
) -> None:
    model = copy_model("saved_model_half_plus_two_cpu", tmp_path / "default")
    server = await serve(
        "--model_name=default",
        f"--model_base_path={model}",
        "--enable_batching",
        f"--batching_parameters_file={TESTDATA / 'batching_config.txt'}",
    )
    assert await predict(f"unix:{server.socket_path}", "default") == (3.0, 123)
    assert await predict(f"localhost:{server.port}", "default", batch=True) == (3.0, 123)


async def test_good_grpc_channel_arguments(serve: ServerFactory, tmp_path: Path) -> None:
    model = copy_model("saved_model_half_plus_two_cpu", tmp_path / "default")
    server = await serve(
        "--model_name=default",
        f"--model_base_path={model}",
        "--grpc_channel_arguments=grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb",
    )
    assert await predict(f"localhost:{server.port}", "default") == (3.0, 123)


async def test_bad_model_config_fails_at_start(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, f"--model_config_file={TESTDATA / 'bad_model_config.txt'}")
    await server.start()
    assert server.process is not None
    code = await asyncio.wait_for(server.process.wait(), READY_TIMEOUT_S)
    stderr = await server.stop()
    assert code != 0
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in stderr
    assert "Invalid protobuf file" in stderr
    assert str(TESTDATA / "bad_model_config.txt") in stderr
