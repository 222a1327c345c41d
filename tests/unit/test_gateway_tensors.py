"""numpy <-> TensorProto conversion, checked against TensorFlow's own converters."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from services.gateway.tensors import (
    TensorConversionError,
    dtype_name,
    from_tensor_proto,
    to_tensor_proto,
)

NUMERIC_DTYPES = st.sampled_from([np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_])


@given(hnp.arrays(NUMERIC_DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0)))
def test_to_tensor_proto_is_what_tensorflow_reads(array: np.ndarray) -> None:
    np.testing.assert_array_equal(tf.make_ndarray(to_tensor_proto(array)), array)


@given(hnp.arrays(NUMERIC_DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0)))
def test_from_tensor_proto_reads_what_tensorflow_writes(array: np.ndarray) -> None:
    decoded = from_tensor_proto(tf.make_tensor_proto(array))
    assert decoded.dtype == array.dtype
    np.testing.assert_array_equal(decoded, array)


def test_big_endian_arrays_are_sent_little_endian() -> None:
    array = np.arange(6, dtype=">f4").reshape(2, 3)
    np.testing.assert_array_equal(tf.make_ndarray(to_tensor_proto(array)), array)


def test_typed_value_fields_are_read() -> None:
    proto = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=2)]
        ),
        float_val=[1.5, -2.0],
    )
    np.testing.assert_array_equal(from_tensor_proto(proto), np.array([1.5, -2.0], np.float32))


def test_short_value_list_repeats_its_last_value_like_tensorflow() -> None:
    proto = tf.make_tensor_proto(7, dtype=tf.int64, shape=[2, 2])
    np.testing.assert_array_equal(from_tensor_proto(proto), np.full((2, 2), 7, np.int64))


def test_strings_become_bytes() -> None:
    decoded = from_tensor_proto(tf.make_tensor_proto([b"class_0", b"class_1"]))
    assert decoded.tolist() == [b"class_0", b"class_1"]


@given(
    st.lists(st.text(), max_size=6).map(lambda words: np.array(words, dtype=object))
    | st.lists(st.binary(), max_size=6).map(lambda words: np.array(words, dtype=object))
)
def test_text_goes_as_utf8_strings_that_tensorflow_reads(words: np.ndarray) -> None:
    decoded = tf.make_ndarray(to_tensor_proto(words))
    expected = [word if isinstance(word, bytes) else word.encode() for word in words]
    assert decoded.tolist() == expected


def test_unicode_array_keeps_its_shape() -> None:
    proto = to_tensor_proto(np.array([["König", "queen"]]))
    assert tf.make_ndarray(proto).tolist() == [["König".encode(), b"queen"]]


@pytest.mark.parametrize(
    ("enum", "name"),
    [
        (types_pb2.DT_FLOAT, "float32"),
        (types_pb2.DT_INT64, "int64"),
        (types_pb2.DT_STRING, "string"),
        (types_pb2.DT_BOOL, "bool"),
        (types_pb2.DT_HALF, "half"),
    ],
)
def test_dtype_names_are_tensorflows(enum: int, name: str) -> None:
    assert dtype_name(enum) == name
    if enum != types_pb2.DT_HALF:
        assert tf.dtypes.as_dtype(enum).name == name


def test_truncated_tensor_content_is_rejected() -> None:
    proto = to_tensor_proto(np.zeros((2, 3), np.float32))
    proto.tensor_content = proto.tensor_content[:-4]
    with pytest.raises(TensorConversionError, match="needs 24"):
        from_tensor_proto(proto)


def test_unsupported_dtypes_are_rejected() -> None:
    with pytest.raises(TensorConversionError, match="unsupported"):
        to_tensor_proto(np.zeros(2, np.complex64))
    with pytest.raises(TensorConversionError, match="DT_COMPLEX64"):
        from_tensor_proto(tensor_pb2.TensorProto(dtype=types_pb2.DT_COMPLEX64))
