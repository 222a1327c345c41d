"""Signatures read from live metadata, and the gateway's tensors checked against them."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from services.gateway import errors
from services.gateway.signatures import read_signatures, require


def signature_def(**inputs: tuple[tf.DType, list[int] | None]) -> meta_graph_pb2.SignatureDef:
    definition = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    for alias, (dtype, shape) in inputs.items():
        info = definition.inputs[alias]
        info.name = f"{alias}:0"
        info.dtype = dtype.as_datatype_enum
        info.tensor_shape.CopyFrom(tf.TensorShape(shape).as_proto())
    definition.outputs["y"].dtype = tf.float32.as_datatype_enum
    return definition


SIGNATURES = read_signatures(
    {
        "__saved_model_init_op": meta_graph_pb2.SignatureDef(),
        "serving_default": signature_def(images=(tf.float32, [None, 28, 28])),
        "similar": signature_def(words=(tf.string, [None]), k=(tf.int32, [])),
        "anything": signature_def(x=(tf.float32, None)),
    }
)


def test_internal_signatures_are_left_out() -> None:
    assert sorted(SIGNATURES) == ["anything", "serving_default", "similar"]


def test_specs_keep_dtype_names_and_shapes() -> None:
    images = SIGNATURES["serving_default"].inputs["images"]
    assert (images.dtype, images.shape) == ("float32", (-1, 28, 28))
    assert SIGNATURES["similar"].inputs["k"].shape == ()
    assert SIGNATURES["anything"].inputs["x"].shape is None


def test_fitting_inputs_pass() -> None:
    SIGNATURES["serving_default"].check_inputs("cnn", {"images": np.zeros((5, 28, 28), np.float32)})
    SIGNATURES["similar"].check_inputs(
        "word2vec", {"words": np.array(["king"], dtype=object), "k": np.int32(3)}
    )
    SIGNATURES["anything"].check_inputs("m", {"x": np.zeros((1, 2, 3, 4), np.float32)})


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"images": np.zeros((5, 32, 32), np.float32)}, "images is float32 [-1, 28, 28]"),
        ({"images": np.zeros((5, 28, 28), np.float64)}, "the gateway built float64 [5, 28, 28]"),
        ({"pixels": np.zeros((5, 28, 28), np.float32)}, "takes inputs ['images']"),
    ],
)
def test_misfits_are_contract_errors_naming_the_input(inputs: dict, message: str) -> None:
    with pytest.raises(errors.ModelContractError) as raised:
        SIGNATURES["serving_default"].check_inputs("cnn", inputs)
    assert message in raised.value.message


def test_a_missing_signature_is_named() -> None:
    with pytest.raises(errors.ModelContractError, match="cnn version 3 has no step signature"):
        require(SIGNATURES, "cnn", 3, "step")
