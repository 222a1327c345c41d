"""The model server's gRPC API against TensorFlow Serving's own test models and answers.

One server (ephemeral port) serves copies of the half_plus_two models and a model with a
zero-input signature; a real grpc.aio channel talks to it.
"""

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
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from status_assertions import expect_exact_status, expect_status
from tensorflow.core.example import example_pb2
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    input_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from tf_serving_testdata import TESTDATA, copy_model, needs_testdata

from services.modelserver.server import ModelServerHandle, start_model_server
from services.modelserver.settings import ModelServerSettings

pytestmark = needs_testdata

X = np.array([[1.0], [2.0], [5.0]], dtype=np.float32)
HALF_PLUS_TWO_OF_X = [[2.5], [3.0], [4.5]]
MESSAGE_LIMIT = 64 * 1024 * 1024


def save_constants_model(version_dir: Path) -> None:
    """A model whose `metadata` signature takes no inputs and returns constants."""
    module = tf.Module()
    module.metadata = tf.function(
        lambda: {"labels": tf.constant([b"cat", b"dog"]), "scale": tf.constant(2.0)},
        input_signature=[],
    )
    tf.saved_model.save(module, str(version_dir), signatures={"metadata": module.metadata})


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ModelServerHandle]:
    root = tmp_path_factory.mktemp("repository")
    copy_model("saved_model_half_plus_two_cpu", root / "default")
    copy_model("saved_model_half_plus_two_tf2_cpu", root / "half_plus_two_tf2")
    save_constants_model(root / "constants" / "1")
    models = "".join(
        f'config {{ name: "{name}" base_path: "{root / name}" model_platform: "tensorflow" }}\n'
        for name in ["default", "half_plus_two_tf2", "constants"]
    )
    config_file = root / "models.config"
    config_file.write_text(f"model_config_list {{\n{models}}}\n")
    handle = await start_model_server(
        ModelServerSettings(
            port=0,
            model_config_file=str(config_file),
            file_system_poll_wait_seconds=0,
            max_num_load_retries=0,
            enable_grpc_healthcheck_service=True,
        )
    )
    yield handle
    await handle.stop(0)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def channel(server: ModelServerHandle) -> AsyncIterator[grpc.aio.Channel]:
    limits = [
        ("grpc.max_send_message_length", MESSAGE_LIMIT),
        ("grpc.max_receive_message_length", MESSAGE_LIMIT),
    ]
    async with grpc.aio.insecure_channel(f"localhost:{server.port}", options=limits) as channel:
        yield channel


@pytest.fixture
def predictions(channel: grpc.aio.Channel) -> prediction_service_pb2_grpc.PredictionServiceStub:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture
def models(channel: grpc.aio.Channel) -> model_service_pb2_grpc.ModelServiceStub:
    return model_service_pb2_grpc.ModelServiceStub(channel)


def predict_request(
    name: str = "default", inputs: dict[str, Any] | None = None, **spec: Any
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=name, **spec))
    for alias, value in ({"x": X} if inputs is None else inputs).items():
        proto = value if isinstance(value, tensor_pb2.TensorProto) else tf.make_tensor_proto(value)
        request.inputs[alias].CopyFrom(proto)
    return request


@pytest.mark.parametrize("model", ["default", "half_plus_two_tf2"])
async def test_predict_half_plus_two(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub, model: str
) -> None:
    response = await predictions.Predict(predict_request(model))

    y = response.outputs["y"]
    assert tf.make_ndarray(y).tolist() == HALF_PLUS_TWO_OF_X
    # TensorFlow Serving answers Predict in the typed fields, not tensor_content.
    assert y.dtype == types_pb2.DT_FLOAT
    assert list(y.float_val) == [2.5, 3.0, 4.5]
    assert [dim.size for dim in y.tensor_shape.dim] == [3, 1]
    assert response.model_spec.name == model
    assert response.model_spec.version.value == 123
    assert response.model_spec.signature_name == "serving_default"


async def test_predict_by_version_and_named_signature(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    request = predict_request(
        inputs={"inputs": X}, version={"value": 123}, signature_name="regress_x2_to_y3"
    )
    response = await predictions.Predict(request)
    assert list(response.outputs) == ["outputs"]
    assert response.model_spec.signature_name == "regress_x2_to_y3"


async def test_string_inputs_serialized_examples(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    example = tf.train.Example(
        features=tf.train.Features(
            feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[2.0]))}
        )
    )
    request = predict_request(
        inputs={"inputs": np.array([example.SerializeToString()], dtype=object)},
        signature_name="classify_x_to_y",
    )
    response = await predictions.Predict(request)
    assert tf.make_ndarray(response.outputs["scores"]).tolist() == [[3.0]]


async def test_output_filter(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    request = predict_request()
    request.output_filter.append("y")
    response = await predictions.Predict(request)
    assert list(response.outputs) == ["y"]


async def test_signature_without_inputs_takes_an_empty_inputs_map(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    response = await predictions.Predict(
        predict_request("constants", inputs={}, signature_name="metadata")
    )
    assert list(response.outputs["labels"].string_val) == [b"cat", b"dog"]
    assert list(response.outputs["scale"].float_val) == [2.0]
    assert response.model_spec.version.value == 1


async def test_tensors_beyond_grpcs_default_4_mib(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    x = np.arange(2_000_000, dtype=np.float32).reshape(-1, 1)  # 8 MB each way
    response = await predictions.Predict(predict_request(inputs={"x": x}))
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["y"]), 0.5 * x + 2)


async def test_metadata_is_what_tensorflow_serving_returns(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    response = await predictions.GetModelMetadata(
        get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=model_pb2.ModelSpec(name="default"), metadata_field=["signature_def"]
        )
    )

    # The JSON shows the Any unpacked (no "@type"): compare model_spec and the unpacked map.
    answer = json.loads((TESTDATA / "half_plus_two_model_metadata.json").read_text())
    assert response.model_spec == json_format.ParseDict(answer["model_spec"], model_pb2.ModelSpec())
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_defs)
    assert response.metadata["signature_def"].type_url.endswith(
        "tensorflow.serving.SignatureDefMap"
    )
    assert signature_defs == _expected_signature_defs("half_plus_two_model_metadata.json")


async def test_tf2_metadata_keeps_the_init_op_signature_like_tensorflow_serving(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    response = await predictions.GetModelMetadata(
        get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=model_pb2.ModelSpec(name="half_plus_two_tf2"),
            metadata_field=["signature_def"],
        )
    )
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_defs)

    # Exactly the SavedModel's SignatureDefs, internal `__saved_model_init_op` included, as in
    # TensorFlow Serving's answer for a TF2 export of this model.
    saved_model = saved_model_pb2.SavedModel.FromString(
        (
            TESTDATA / "saved_model_half_plus_two_tf2_cpu" / "00000123" / "saved_model.pb"
        ).read_bytes()
    )
    assert dict(signature_defs.signature_def) == dict(saved_model.meta_graphs[0].signature_def)
    tf_serving_answer = _expected_signature_defs(
        "saved_model_half_plus_two_tf2_2_versions_metadata.json"
    )
    assert set(signature_defs.signature_def) == set(tf_serving_answer.signature_def)


async def test_signature_defaults_fill_missing_inputs(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    # The TF2 export declares x = [0.0] as the default of serving_default's only input.
    response = await predictions.Predict(predict_request("half_plus_two_tf2", inputs={}))
    assert tf.make_ndarray(response.outputs["y"]).tolist() == [2.0]


def _expected_signature_defs(json_name: str) -> get_model_metadata_pb2.SignatureDefMap:
    answer = json.loads((TESTDATA / json_name).read_text())
    return json_format.ParseDict(
        answer["metadata"]["signature_def"], get_model_metadata_pb2.SignatureDefMap()
    )


async def test_model_status(models: model_service_pb2_grpc.ModelServiceStub) -> None:
    response = await models.GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name="default"))
    )
    assert json_format.MessageToDict(response, preserving_proto_field_name=True) == {
        "model_version_status": [{"version": "123", "state": "AVAILABLE", "status": {}}]
    }


def _string_tensor() -> tensor_pb2.TensorProto:
    return tf.make_tensor_proto([["one"], ["two"]])


def _malformed_tensor() -> tensor_pb2.TensorProto:
    proto = tf.make_tensor_proto(X)
    proto.tensor_content = proto.tensor_content[:-1]  # one byte short of the shape
    return proto


def _filtered(output: str) -> predict_pb2.PredictRequest:
    request = predict_request()
    request.output_filter.append(output)
    return request


PREDICT_ERRORS = {
    "unknown model": (
        predict_request("nope"),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nope)",
    ),
    "unknown version": (
        predict_request(version={"value": 999}),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Specific(default, 999)",
    ),
    "unknown label": (
        predict_request(version_label="stable"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Unrecognized servable version label: stable",
    ),
    "no model spec": (
        predict_pb2.PredictRequest(),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Missing ModelSpec",
    ),
    "no model name": (
        predict_request(""),
        grpc.StatusCode.INVALID_ARGUMENT,
        "ModelSpec has no name specified.",
    ),
    "unknown signature": (
        predict_request(signature_name="nope"),
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature key "nope" not found.',
    ),
    "unknown input alias": (
        predict_request(inputs={"z": X}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Signature input alias: x(feed name: x:0) not found in request and no default value "
        "provided. Inputs expected to be in the request {z}, or default input alias set: ",
    ),
    "missing input": (
        predict_request(inputs={}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "input size does not match signature: 0!=1 len({}) != len({x}). "
        "Sent extra: {}. Missing but required: {x}.",
    ),
    "extra input": (
        predict_request(inputs={"x": X, "z": X}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "input size does not match signature: 2!=1 len({x,z}) != len({x}). "
        "Sent extra: {z}. Missing but required: {}.",
    ),
    "wrong dtype": (
        predict_request(inputs={"x": _string_tensor()}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Expects arg[0] to be float but string is provided",
    ),
    "int64 for float": (
        predict_request(inputs={"x": X.astype(np.int64)}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Expects arg[0] to be float but int64 is provided",
    ),
    "unknown dtype": (
        predict_request(inputs={"x": tensor_pb2.TensorProto(dtype=999)}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "tensor parsing error: x",
    ),
    "unparsable example": (
        predict_request(
            inputs={"inputs": np.array([b"not an example"], dtype=object)},
            signature_name="regress_x_to_y",
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        # TensorFlow's own message, node and all, as TensorFlow Serving passes it on.
        "Could not parse example input, value: 'not an example'\n"
        "\t [[{{node ParseExample/ParseExample}}]]",
    ),
    "malformed tensor": (
        predict_request(inputs={"x": _malformed_tensor()}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "tensor parsing error: x",
    ),
    "unknown output": (
        _filtered("nope"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "output tensor alias not found in signature: nope Outputs expected to be in the set {y}.",
    ),
}


@pytest.mark.parametrize("case", PREDICT_ERRORS)
async def test_predict_errors_like_tensorflow_serving(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub, case: str
) -> None:
    request, code, details = PREDICT_ERRORS[case]
    await expect_exact_status(predictions.Predict(request), code, details)
    # The server is unharmed and answers the next call.
    response = await predictions.Predict(predict_request())
    assert tf.make_ndarray(response.outputs["y"]).tolist() == HALF_PLUS_TWO_OF_X


def _shaped(dtype: int, dims: list[int], **values: Any) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=dtype, **values)
    proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims)
    return proto


@pytest.mark.parametrize(
    ("tensor", "reason"),
    [
        (  # 4 MiB of floats from one value: TensorFlow would repeat it
            _shaped(types_pb2.DT_FLOAT, [2**20, 1], float_val=[1.0]),
            "shape of 1048576 elements but 1 values given; a shorter list is filled only up to "
            "1048576 bytes",
        ),
        (  # 4 MiB of zeros from no values at all
            _shaped(types_pb2.DT_FLOAT, [2**20, 1]),
            "shape of 1048576 elements but 0 values given",
        ),
        (  # 3 MiB of TensorFlow strings from one
            _shaped(types_pb2.DT_STRING, [2**17, 1], string_val=[b"x"]),
            "shape of 131072 elements but 1 values given",
        ),
        (  # 8 GiB
            _shaped(types_pb2.DT_FLOAT, [2**31, 1], float_val=[1.0]),
            "shape of 2147483648 elements is 8589934592 bytes, more than a 2147483647-byte "
            "message can carry",
        ),
        (
            _shaped(types_pb2.DT_FLOAT, [1] * 255, float_val=[1.0]),
            "shape has 255 dimensions, more than 254",
        ),
    ],
)
async def test_a_shape_bigger_than_its_content_is_refused_before_allocating(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
    tensor: tensor_pb2.TensorProto,
    reason: str,
) -> None:
    await expect_status(
        predictions.Predict(predict_request(inputs={"x": tensor})),
        grpc.StatusCode.INVALID_ARGUMENT,
        f"tensor parsing error: x: {reason}",
    )
    # A short list within the fill allowance is still TensorFlow's: the last value repeats.
    small = _shaped(types_pb2.DT_FLOAT, [4, 1], float_val=[2.0])
    response = await predictions.Predict(predict_request(inputs={"x": small}))
    assert tf.make_ndarray(response.outputs["y"]).tolist() == [[3.0]] * 4


@pytest.mark.parametrize(
    ("fields", "details"),
    [
        (["signature_def", "nope"], "Metadata field nope is not supported"),
        ([], "GetModelMetadataRequest must specify at least one metadata_field"),
    ],
)
async def test_metadata_errors(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
    fields: list[str],
    details: str,
) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=model_pb2.ModelSpec(name="default"), metadata_field=fields
    )
    await expect_exact_status(
        predictions.GetModelMetadata(request), grpc.StatusCode.INVALID_ARGUMENT, details
    )


async def test_metadata_of_unknown_model(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=model_pb2.ModelSpec(name="nope"), metadata_field=["signature_def"]
    )
    await expect_exact_status(
        predictions.GetModelMetadata(request),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nope)",
    )


@pytest.mark.parametrize(
    ("spec", "details"),
    [
        ({"name": "nope"}, "Could not find any versions of model nope"),
        ({"name": "default", "version": {"value": 7}}, "Could not find version 7 of model default"),
    ],
)
async def test_model_status_errors(
    models: model_service_pb2_grpc.ModelServiceStub, spec: dict[str, Any], details: str
) -> None:
    request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(**spec))
    await expect_exact_status(models.GetModelStatus(request), grpc.StatusCode.NOT_FOUND, details)


def example_input(*xs: float, context: dict[str, float] | None = None) -> input_pb2.Input:
    """tf.Examples with a float feature x, optionally sent with a context."""
    examples = []
    for x in xs:
        example = example_pb2.Example()
        example.features.feature["x"].float_list.value.append(x)
        examples.append(example)
    if context is None:
        return input_pb2.Input(example_list=input_pb2.ExampleList(examples=examples))
    shared = example_pb2.Example()
    for name, value in context.items():
        shared.features.feature[name].float_list.value.append(value)
    return input_pb2.Input(
        example_list_with_context=input_pb2.ExampleListWithContext(
            examples=examples, context=shared
        )
    )


@pytest.mark.parametrize("model", ["default", "half_plus_two_tf2"])
async def test_classify_and_regress_tf_examples(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub, model: str
) -> None:
    classified = await predictions.Classify(
        classification_pb2.ClassificationRequest(
            model_spec=model_pb2.ModelSpec(name=model, signature_name="classify_x_to_y"),
            input=example_input(2.0, 4.0),
        )
    )
    scores = [[c.score for c in row.classes] for row in classified.result.classifications]
    assert scores == [[3.0], [4.0]]
    assert [c.label for c in classified.result.classifications[0].classes] == [""]
    assert (classified.model_spec.name, classified.model_spec.signature_name) == (
        model,
        "classify_x_to_y",
    )
    assert classified.model_spec.version.value == 123

    regressed = await predictions.Regress(
        regression_pb2.RegressionRequest(
            model_spec=model_pb2.ModelSpec(name=model, signature_name="regress_x_to_y"),
            input=example_input(2.0),
        )
    )
    assert [r.value for r in regressed.result.regressions] == [3.0]
    assert regressed.model_spec.version.value == 123


async def test_examples_merge_with_their_context(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    # The example's own x overrides the context's, as protobuf merges the two.
    request = regression_pb2.RegressionRequest(
        model_spec=model_pb2.ModelSpec(name="default", signature_name="regress_x_to_y"),
        input=example_input(2.0, 6.0, context={"x": 100.0}),
    )
    response = await predictions.Regress(request)
    assert [r.value for r in response.result.regressions] == [3.0, 5.0]


async def test_multi_inference_runs_each_task(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    request = inference_pb2.MultiInferenceRequest(input=example_input(2.0))
    for signature, method in [
        ("regress_x_to_y", "tensorflow/serving/regress"),
        ("classify_x_to_y", "tensorflow/serving/classify"),
    ]:
        task = request.tasks.add(method_name=method)
        task.model_spec.name = "default"
        task.model_spec.signature_name = signature
    response = await predictions.MultiInference(request)
    assert response.results[0].regression_result.regressions[0].value == 3.0
    assert response.results[1].classification_result.classifications[0].classes[0].score == 3.0
    assert [r.model_spec.signature_name for r in response.results] == [
        "regress_x_to_y",
        "classify_x_to_y",
    ]


@pytest.mark.parametrize(
    ("signature", "input_", "details"),
    [
        ("classify_x_to_y", input_pb2.Input(), "Input is empty."),
        ("nope", None, "No signature was found with the name: nope"),
        ("serving_default", None, "does not take serialized tf.Examples"),
    ],
)
async def test_classify_errors(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
    signature: str,
    input_: input_pb2.Input | None,
    details: str,
) -> None:
    request = classification_pb2.ClassificationRequest(
        model_spec=model_pb2.ModelSpec(name="default", signature_name=signature),
        input=example_input(2.0) if input_ is None else input_,
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await predictions.Classify(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details in (raised.value.details() or "")


async def test_multi_inference_tasks_must_share_a_model(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    request = inference_pb2.MultiInferenceRequest(input=example_input(2.0))
    for name in ("default", "half_plus_two_tf2"):
        task = request.tasks.add(method_name="tensorflow/serving/regress")
        task.model_spec.name = name
        task.model_spec.signature_name = "regress_x_to_y"
    await expect_exact_status(
        predictions.MultiInference(request),
        grpc.StatusCode.INVALID_ARGUMENT,
        "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
    )


@pytest.mark.parametrize("service", ["", "default", "half_plus_two_tf2", "constants"])
async def test_health_serving_once_models_are_loaded(
    channel: grpc.aio.Channel, service: str
) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    response = await health.Check(health_pb2.HealthCheckRequest(service=service))
    assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_services(channel: grpc.aio.Channel) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {service.name async for r in call for service in r.list_services_response.service}
    assert {
        "tensorflow.serving.PredictionService",
        "tensorflow.serving.ModelService",
        "grpc.health.v1.Health",
    } <= names
