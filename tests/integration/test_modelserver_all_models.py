"""The model server serves all five trained models from one config file, and answers every
signature of each exactly as the SavedModel does in process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import pytest_asyncio
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    model_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from services.modelserver.server import start_model_server
from services.modelserver.settings import ModelServerSettings
from services.suite.model_config import model_config_text
from training.jobs import JOBS
from training.warmup import read_warmup_requests

pytestmark = pytest.mark.asyncio(loop_scope="session")

INTERNAL_SIGNATURES = {"__saved_model_init_op"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stub(
    all_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[prediction_service_pb2_grpc.PredictionServiceStub]:
    models_dir = next(iter(all_models.values())).parent.parent
    config = tmp_path_factory.mktemp("config") / "models.config"
    config.write_text(model_config_text(models_dir, list(all_models)))
    server = await start_model_server(
        ModelServerSettings(port=0, model_config_file=str(config), file_system_poll_wait_seconds=0)
    )
    channel = grpc.aio.insecure_channel(
        f"localhost:{server.port}", options=[("grpc.max_receive_message_length", 64 << 20)]
    )
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    await channel.close()
    await server.stop(0)


def _signature_names(version_dir: Path) -> set[str]:
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((version_dir / "saved_model.pb").read_bytes())
    return set(saved_model.meta_graphs[0].signature_def) - INTERNAL_SIGNATURES


async def test_the_five_models_are_the_jobs(all_models: dict[str, Path]) -> None:
    assert sorted(all_models) == sorted(JOBS)


@pytest.mark.parametrize("name", list(JOBS))
async def test_every_signature_answers_as_in_process(
    name: str,
    all_models: dict[str, Path],
    stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    version_dir = all_models[name]
    requests = read_warmup_requests(version_dir)
    # The warm-up requests exercise every signature, so replaying them here calls each one.
    served = {request.model_spec.signature_name for request in requests}
    assert served >= _signature_names(version_dir) - {"serving_default"}
    loaded = tf.saved_model.load(str(version_dir))

    for request in requests:
        signature = request.model_spec.signature_name or "serving_default"
        over_grpc = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=name, signature_name=signature)
        )
        for alias, tensor in request.inputs.items():
            over_grpc.inputs[alias].CopyFrom(tensor)
        response = await stub.Predict(over_grpc, timeout=30)

        assert response.model_spec.version.value == int(version_dir.name)
        inputs = {alias: tf.make_ndarray(proto) for alias, proto in request.inputs.items()}
        expected = loaded.signatures[signature](**inputs)
        assert set(response.outputs) == set(expected), signature
        for alias, value in expected.items():
            got = tf.make_ndarray(response.outputs[alias])
            if value.dtype == tf.string:
                np.testing.assert_array_equal(got, value.numpy(), err_msg=f"{signature}/{alias}")
            else:
                np.testing.assert_allclose(
                    got, value.numpy(), rtol=1e-5, atol=1e-5, err_msg=f"{signature}/{alias}"
                )


@pytest.mark.parametrize("name", list(JOBS))
async def test_metadata_lists_the_signatures(
    name: str,
    all_models: dict[str, Path],
    stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=model_pb2.ModelSpec(name=name), metadata_field=["signature_def"]
    )
    response = await stub.GetModelMetadata(request, timeout=10)
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_defs)
    assert set(signature_defs.signature_def) - INTERNAL_SIGNATURES == _signature_names(
        all_models[name]
    )
