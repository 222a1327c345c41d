"""A model server given --tensorflow_session_config_file runs every version's session with it."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_service_pb2_grpc
from tf_serving_testdata import copy_model, needs_testdata

from services.modelserver.server import start_model_server
from services.modelserver.settings import ModelServerSettings
from services.modelserver.versions import ServableRequest

pytestmark = needs_testdata


async def test_a_server_with_a_session_config_file_serves_with_that_config(
    tmp_path: Path,
) -> None:
    copy_model("saved_model_half_plus_two_cpu", tmp_path / "default")
    session_config = tmp_path / "session.config"
    session_config.write_text("experimental { disable_thread_spinning: true }\n")
    handle = await start_model_server(
        ModelServerSettings(
            port=0,
            model_name="default",
            model_base_path=str(tmp_path / "default"),
            file_system_poll_wait_seconds=0,
            tensorflow_session_config_file=str(session_config),
            tensorflow_intra_op_parallelism=1,
        )
    )
    try:
        servable = handle.manager.servable(ServableRequest("default"))
        # TensorFlow's Session keeps the ConfigProto it was made with, and has no public reader.
        config = servable._session._config
        assert config.experimental.disable_thread_spinning
        assert config.intra_op_parallelism_threads == 1

        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="default"))
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[1.0], [3.0]], np.float32)))
        async with grpc.aio.insecure_channel(f"localhost:{handle.port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            response = await stub.Predict(request, timeout=10)
        assert list(response.outputs["y"].float_val) == [2.5, 3.5]
    finally:
        await handle.stop(0)
