"""The gateway's own TensorFlow Serving messages against tensorflow-serving-api's, as bytes.

The gateway builds and reads TensorFlow Serving's messages with classes of its own
(protos/tfserving). Whatever it writes must parse into TensorFlow Serving's classes with the same
content, and whatever TensorFlow Serving writes must parse into the gateway's. Both sets of
classes are loaded in this one process, as they are in the model server and the tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import any_pb2, descriptor_pool, json_format, text_format
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tensorflow.core.framework import tensor_pb2 as tf_tensor_pb2
from tensorflow.core.framework import tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2 as tf_metadata_pb2,
)
from tensorflow_serving.apis import (
    get_model_status_pb2 as tf_status_pb2,
)
from tensorflow_serving.apis import (
    model_management_pb2 as tf_management_pb2,
)
from tensorflow_serving.apis import (
    predict_pb2 as tf_predict_pb2,
)

from services.gateway.model_server_api import SIGNATURE_DEF_MAP_TYPE, unpack_signature_defs
from services.gateway.signatures import read_signatures
from services.gateway.tensors import from_tensor_proto, to_tensor_proto
from services.generated.tfserving.v1 import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    predict_pb2,
    tensor_pb2,
)
from services.modelserver.tensors import tensor_to_proto
from services.suite.model_config import model_server_config

NUMERIC_DTYPES = st.sampled_from([np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_])
ARRAYS = hnp.arrays(NUMERIC_DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0))


def _as_dict(message: object) -> dict[str, object]:
    """A message's content by field name, comparable across the two sets of classes."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)  # type: ignore[arg-type]


def test_both_sets_of_classes_share_the_default_descriptor_pool() -> None:
    pool = descriptor_pool.Default()
    for ours, theirs in [
        (predict_pb2.PredictRequest, tf_predict_pb2.PredictRequest),
        (tensor_pb2.TensorProto, tf_tensor_pb2.TensorProto),
        (get_model_metadata_pb2.SignatureDefMap, tf_metadata_pb2.SignatureDefMap),
    ]:
        assert ours.DESCRIPTOR.full_name != theirs.DESCRIPTOR.full_name
        assert pool.FindMessageTypeByName(ours.DESCRIPTOR.full_name) is ours.DESCRIPTOR
        assert pool.FindMessageTypeByName(theirs.DESCRIPTOR.full_name) is theirs.DESCRIPTOR


def _gateway_predict_request() -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(output_filter=["probabilities", "class_ids"])
    request.model_spec.name = "classifier"
    request.model_spec.version.value = 3
    request.model_spec.signature_name = "serving_default"
    request.inputs["features"].CopyFrom(to_tensor_proto(np.arange(26, dtype=np.float32)[None]))
    request.inputs["words"].CopyFrom(to_tensor_proto(np.array(["king", "queen"], dtype=object)))
    return request


def test_a_predict_request_the_gateway_writes_is_the_one_tensorflow_serving_reads() -> None:
    ours = _gateway_predict_request()
    theirs = tf_predict_pb2.PredictRequest.FromString(ours.SerializeToString())
    assert theirs.model_spec.name == "classifier"
    assert theirs.model_spec.WhichOneof("version_choice") == "version"
    assert theirs.model_spec.version.value == 3
    assert list(theirs.output_filter) == ["probabilities", "class_ids"]
    np.testing.assert_array_equal(
        tf.make_ndarray(theirs.inputs["features"]), np.arange(26, dtype=np.float32)[None]
    )
    assert tf.make_ndarray(theirs.inputs["words"]).tolist() == [b"king", b"queen"]
    assert _as_dict(theirs) == _as_dict(ours)
    assert theirs.SerializeToString(deterministic=True) == ours.SerializeToString(
        deterministic=True
    )


def test_a_predict_request_tensorflow_serving_writes_is_the_one_the_gateway_reads() -> None:
    theirs = tf_predict_pb2.PredictRequest.FromString(
        _gateway_predict_request().SerializeToString()
    )
    theirs.model_spec.version_label = "stable"
    ours = predict_pb2.PredictRequest.FromString(theirs.SerializeToString())
    assert ours.model_spec.WhichOneof("version_choice") == "version_label"
    assert _as_dict(ours) == _as_dict(theirs)


@given(ARRAYS)
def test_tensor_content_answers_are_read_as_written(array: np.ndarray) -> None:
    response = tf_predict_pb2.PredictResponse()
    response.model_spec.name = "m"
    response.model_spec.version.value = 7
    response.outputs["y"].CopyFrom(tf.make_tensor_proto(array))
    ours = predict_pb2.PredictResponse.FromString(response.SerializeToString())
    assert ours.model_spec.version.value == 7
    decoded = from_tensor_proto(ours.outputs["y"])
    assert decoded.dtype == array.dtype
    np.testing.assert_array_equal(decoded, array)


@given(ARRAYS)
def test_typed_field_answers_are_read_as_written(array: np.ndarray) -> None:
    # The stand-in model server answers in float_val, int_val, ... as TensorFlow Serving does.
    response = tf_predict_pb2.PredictResponse()
    response.outputs["y"].CopyFrom(tensor_to_proto(array))
    assert not response.outputs["y"].tensor_content
    ours = predict_pb2.PredictResponse.FromString(response.SerializeToString())
    decoded = from_tensor_proto(ours.outputs["y"])
    assert decoded.dtype == array.dtype
    np.testing.assert_array_equal(decoded, array)


@given(ARRAYS)
def test_tensors_the_gateway_writes_are_what_tensorflow_reads(array: np.ndarray) -> None:
    theirs = tf.make_tensor_proto(0).__class__.FromString(
        to_tensor_proto(array).SerializeToString()
    )
    np.testing.assert_array_equal(tf.make_ndarray(theirs), array)


def _tensorflow_signature_defs() -> tf_metadata_pb2.SignatureDefMap:
    def info(name: str, dtype: int, dims: list[int] | None) -> meta_graph_pb2.TensorInfo:
        shape = tensor_shape_pb2.TensorShapeProto(unknown_rank=dims is None)
        for size in dims or []:
            shape.dim.add(size=size)
        return meta_graph_pb2.TensorInfo(name=name, dtype=dtype, tensor_shape=shape)

    signatures = tf_metadata_pb2.SignatureDefMap()
    serving = signatures.signature_def["serving_default"]
    serving.method_name = "tensorflow/serving/predict"
    serving.inputs["features"].CopyFrom(info("serving_features:0", types_pb2.DT_FLOAT, [-1, 13]))
    serving.outputs["class_ids"].CopyFrom(info("Identity:0", types_pb2.DT_INT64, [-1]))
    serving.outputs["anything"].CopyFrom(info("Identity_1:0", types_pb2.DT_HALF, None))
    signatures.signature_def["metadata"].inputs["rows"].CopyFrom(
        info("rows:0", types_pb2.DT_INT32, [-1])
    )
    signatures.signature_def["__saved_model_init_op"].outputs["x"].name = "NoOp"
    return signatures


def test_metadata_tensorflow_serving_writes_is_read_by_the_gateway() -> None:
    signatures = _tensorflow_signature_defs()
    response = tf_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = "classifier"
    response.model_spec.version.value = 2
    response.metadata["signature_def"].Pack(signatures)

    ours = get_model_metadata_pb2.GetModelMetadataResponse.FromString(response.SerializeToString())
    unpacked = unpack_signature_defs(ours.metadata["signature_def"])
    assert unpacked is not None
    assert _as_dict(unpacked) == _as_dict(signatures)
    assert read_signatures(unpacked.signature_def) == read_signatures(signatures.signature_def)
    assert (
        read_signatures(unpacked.signature_def)["serving_default"].inputs["features"].describe()
        == "float32 [-1, 13]"
    )


def test_metadata_the_gateway_packs_is_unpacked_by_tensorflow_serving() -> None:
    ours = get_model_metadata_pb2.SignatureDefMap.FromString(
        _tensorflow_signature_defs().SerializeToString()
    )
    packed = any_pb2.Any(
        type_url=f"type.googleapis.com/{SIGNATURE_DEF_MAP_TYPE}", value=ours.SerializeToString()
    )
    theirs = tf_metadata_pb2.SignatureDefMap()
    assert packed.Unpack(theirs)
    assert _as_dict(theirs) == _as_dict(_tensorflow_signature_defs())


def test_metadata_of_another_type_is_not_taken_for_signatures() -> None:
    packed = any_pb2.Any()
    packed.Pack(tf_status_pb2.GetModelStatusResponse())
    assert unpack_signature_defs(packed) is None


def test_version_states_tensorflow_serving_writes_are_read_by_the_gateway() -> None:
    response = tf_status_pb2.GetModelStatusResponse()
    for version, state in [(1, "END"), (2, "AVAILABLE"), (3, "LOADING")]:
        status = response.model_version_status.add(version=version)
        status.state = tf_status_pb2.ModelVersionStatus.State.Value(state)
    response.model_version_status[0].status.error_code = 5
    response.model_version_status[0].status.error_message = "not found"

    ours = get_model_status_pb2.GetModelStatusResponse.FromString(response.SerializeToString())
    state_name = get_model_status_pb2.ModelVersionStatus.State.Name
    assert [(s.version, state_name(s.state)) for s in ours.model_version_status] == [
        (1, "END"),
        (2, "AVAILABLE"),
        (3, "LOADING"),
    ]
    assert ours.model_version_status[0].status.error_message == "not found"
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "cnn"
    assert (
        tf_status_pb2.GetModelStatusRequest.FromString(request.SerializeToString()).model_spec.name
        == "cnn"
    )


def test_every_tensorflow_dtype_has_its_name_and_number() -> None:
    ours = {v.name: v.number for v in tensor_pb2.DataType.DESCRIPTOR.values}
    theirs = {v.name: v.number for v in types_pb2.DataType.DESCRIPTOR.values}
    assert ours == {name: number for name, number in theirs.items() if not name.endswith("_REF")}


def test_the_suites_model_config_is_tensorflow_servings_in_bytes_and_in_text(
    tmp_path: Path,
) -> None:
    ours = model_management_pb2.ReloadConfigRequest(
        config=model_server_config(tmp_path, ["classifier", "cnn"])
    )
    theirs = tf_management_pb2.ReloadConfigRequest.FromString(ours.SerializeToString())
    models = theirs.config.model_config_list.config
    assert [(m.name, m.base_path, m.model_platform) for m in models] == [
        ("classifier", str(tmp_path / "classifier"), "tensorflow"),
        ("cnn", str(tmp_path / "cnn"), "tensorflow"),
    ]
    assert {m.model_version_policy.latest.num_versions for m in models} == {2}
    # The config file, written from the suite's messages, reads as TensorFlow Serving's.
    assert text_format.MessageToString(ours.config) == text_format.MessageToString(theirs.config)


def test_a_reload_answer_tensorflow_serving_writes_is_read_by_the_suite() -> None:
    answer = tf_management_pb2.ReloadConfigResponse()
    answer.status.error_code = 3
    answer.status.error_message = "1 model(s) did not become available: {cnn}, "
    ours = model_management_pb2.ReloadConfigResponse.FromString(answer.SerializeToString())
    assert (ours.status.error_code, ours.status.error_message) == (3, answer.status.error_message)
