"""Versions replay their warm-up requests when they load, and one whose warm-up fails never
serves: the model server reports why, as TensorFlow Serving does."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import get_model_status_pb2, model_pb2, model_service_pb2_grpc

from services.modelserver.errors import StartupError
from services.modelserver.server import ModelServerHandle, start_model_server
from services.modelserver.settings import ModelServerSettings
from training.warmup import WarmupRequest, read_warmup_requests, write_warmup_requests

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _status(port: int) -> get_model_status_pb2.ModelVersionStatus:
    async with grpc.aio.insecure_channel(f"localhost:{port}") as channel:
        response = await model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(
                model_spec=model_pb2.ModelSpec(name="classifier")
            ),
            timeout=10,
        )
    (status,) = response.model_version_status
    return status


async def _serve(base_path: Path) -> ModelServerHandle:
    server = await start_model_server(
        ModelServerSettings(
            port=0,
            model_name="classifier",
            model_base_path=str(base_path),
            file_system_poll_wait_seconds=0,
            max_num_load_retries=0,
        )
    )
    return server


async def test_warmup_requests_run_before_the_version_serves(
    classifier_models_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    version_dir = classifier_models_dir / "classifier" / "1"
    recorded = len(read_warmup_requests(version_dir))
    caplog.set_level(logging.INFO, logger="services.modelserver.warmup")

    server = await _serve(version_dir.parent)
    try:
        status = await _status(server.port)
    finally:
        await server.stop(0)

    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert f"Finished warming up classifier version 1 with {recorded} requests" in caplog.text


async def test_a_version_whose_warmup_fails_does_not_serve(
    classifier_models_dir: Path, tmp_path: Path
) -> None:
    base_path = tmp_path / "classifier"
    shutil.copytree(classifier_models_dir / "classifier", base_path)
    wrong_width = np.ones((1, 5), np.float32)
    write_warmup_requests(
        base_path / "1", "classifier", [WarmupRequest("serving_default", {"features": wrong_width})]
    )

    # Its only version: as TensorFlow Serving, the server does not start.
    with pytest.raises(StartupError) as raised:
        await _serve(base_path)
    assert str(raised.value).startswith(
        "1 model(s) did not become available: {{name: classifier} due to error: Failed to warm up: "
    )
