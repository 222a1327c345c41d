"""TensorProto conversion: TensorFlow's parsing rules for requests, typed fields for responses."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from services.modelserver.tensors import (
    TensorParseError,
    dtype_name,
    tensor_from_proto,
    tensor_to_proto,
)


def _proto(dtype: int, dims: list[int], **values: object) -> tensor_pb2.TensorProto:
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in dims]
    )
    return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape, **values)


@pytest.mark.parametrize(
    ("array", "field"),
    [
        (np.array([[1.5], [-2.0]], np.float32), "float_val"),
        (np.array([1.25, 2.5], np.float64), "double_val"),
        (np.array([1, -2, 3], np.int32), "int_val"),
        (np.array([-128, 127], np.int8), "int_val"),
        (np.array([0, 255], np.uint8), "int_val"),
        (np.array([2**40, -1], np.int64), "int64_val"),
        (np.array([2**32 - 1], np.uint32), "uint32_val"),
        (np.array([2**64 - 1], np.uint64), "uint64_val"),
        (np.array([True, False]), "bool_val"),
        (np.array([b"cat", b"dog"], object), "string_val"),
        (np.array([1.0, 0.5], np.float16), "half_val"),
        (np.array([1 + 2j], np.complex64), "scomplex_val"),
        (np.array([1 - 2j], np.complex128), "dcomplex_val"),
        (np.float32(3.5), "float_val"),
    ],
)
def test_results_use_the_typed_field_and_round_trip(array: np.ndarray, field: str) -> None:
    proto = tensor_to_proto(array)
    assert not proto.tensor_content
    assert len(getattr(proto, field)) > 0
    decoded = tf.make_ndarray(proto)
    assert decoded.shape == np.shape(array)
    np.testing.assert_array_equal(decoded, array)


def test_bfloat16_results_travel_as_bit_patterns() -> None:
    value = tf.constant([1.0, -2.0], tf.bfloat16).numpy()
    proto = tensor_to_proto(value)
    assert proto.dtype == types_pb2.DT_BFLOAT16
    np.testing.assert_array_equal(tf.make_ndarray(proto).astype(np.float32), [1.0, -2.0])


def test_request_tensor_from_tensor_content() -> None:
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    tensor = tensor_from_proto(tf.make_tensor_proto(array))
    np.testing.assert_array_equal(tensor, array)


def test_fewer_values_than_the_shape_repeat_the_last_like_tensorflow() -> None:
    tensor = tensor_from_proto(_proto(types_pb2.DT_FLOAT, [3], float_val=[1.0, 2.0]))
    assert tensor.tolist() == [1.0, 2.0, 2.0]


@pytest.mark.parametrize(
    "proto",
    [
        _proto(types_pb2.DT_FLOAT, [3], tensor_content=b"\0" * 11),  # not 3 floats
        _proto(types_pb2.DT_FLOAT, [-1], float_val=[1.0]),
        _proto(types_pb2.DT_FLOAT, [2**20, 2**20], float_val=[1.0]),  # 4 TiB
        _proto(types_pb2.DT_STRING, [2**30], string_val=[b"x"]),  # 24 GiB
        _proto(types_pb2.DT_FLOAT, [2**18 + 1], float_val=[1.0]),  # just past the fill allowance
        _proto(types_pb2.DT_COMPLEX64, [2**17 + 1], scomplex_val=[1.0, 2.0]),
        _proto(types_pb2.DT_FLOAT, [1] * 255, float_val=[1.0]),  # past TensorFlow's rank
        _proto(types_pb2.DT_INVALID, [1], float_val=[1.0]),
        _proto(999, [1]),
        _proto(types_pb2.DT_RESOURCE, [1]),
        _proto(types_pb2.DT_FLOAT_REF, [1], float_val=[1.0]),
    ],
)
def test_invalid_request_tensors_are_refused(proto: tensor_pb2.TensorProto) -> None:
    with pytest.raises(TensorParseError):
        tensor_from_proto(proto)


def test_a_short_list_fills_up_to_the_allowance_and_a_full_one_is_read_at_any_size() -> None:
    filled = tensor_from_proto(_proto(types_pb2.DT_FLOAT, [2**18], float_val=[1.0]))  # 1 MiB
    assert filled.shape == (2**18,) and filled[-1] == 1.0
    full = _proto(types_pb2.DT_FLOAT, [2**19], float_val=np.ones(2**19, np.float32).tolist())
    assert tensor_from_proto(full).shape == (2**19,)


def test_dtype_names_are_tensorflows() -> None:
    assert [dtype_name(d) for d in (tf.float32, tf.float64, tf.string, tf.int64)] == [
        "float",
        "double",
        "string",
        "int64",
    ]


@pytest.mark.parametrize(
    "proto",
    [
        tf.make_tensor_proto(np.arange(12, dtype=np.float32).reshape(3, 4)),  # tensor_content
        tf.make_tensor_proto(np.array([[1, 2], [3, 4]], np.int64)),
        tf.make_tensor_proto(np.array([True, False, True])),
        _proto(types_pb2.DT_FLOAT, [2, 2], float_val=[1.0, 2.0, 3.0, 4.0]),  # typed, exact
        _proto(types_pb2.DT_INT32, [], int_val=[7]),  # a scalar
        _proto(types_pb2.DT_INT8, [2], int_val=[300, -1]),  # out of int8: TensorFlow's rule
        _proto(types_pb2.DT_DOUBLE, [4], double_val=[0.5]),  # repeats the last value
        _proto(types_pb2.DT_STRING, [2], string_val=[b"a", b"b"]),
        _proto(types_pb2.DT_STRING, [], string_val=[b"scalar"]),
        _proto(types_pb2.DT_STRING, [2, 2], string_val=[b"", b"\xff\xfe", b"ab", b"a\0b"]),
        _proto(types_pb2.DT_STRING, [3], string_val=[b"x"]),  # repeats the last value
        _proto(types_pb2.DT_STRING, [2, 0]),
        tf.make_tensor_proto(np.array([[b"same", b"same"]], object)),
    ],
)
def test_numpy_and_tensorflow_read_requests_alike(proto: tensor_pb2.TensorProto) -> None:
    # What TensorFlow's own parser gives, as the session is fed it.
    expected = np.asarray(
        tf.io.parse_tensor(proto.SerializeToString(), tf.dtypes.as_dtype(proto.dtype))
    )
    parsed = tensor_from_proto(proto)
    assert parsed.shape == expected.shape
    np.testing.assert_array_equal(parsed, expected)
    assert parsed.dtype == expected.dtype
    assert [type(value) for value in parsed.flat] == [type(value) for value in expected.flat]
