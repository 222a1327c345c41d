"""Request TensorProtos to tensors and result arrays to TensorProtos, by TensorFlow Serving's rules.

Requests are parsed by TensorFlow's own `Tensor::FromProto` (through `tf.io.parse_tensor`), so the
same protos are accepted and rejected as by TensorFlow Serving: a typed field shorter than the
shape repeats its last value, `tensor_content` must match the shape exactly. Responses use the
typed repeated fields (`float_val`, ...), TensorFlow Serving's default for Predict.

Before anything is allocated, the shape is checked against what the proto carries, since a few
bytes of `tensor_shape` can describe gigabytes: TensorFlow's fill of a short value list (and of
an empty one, with zeros) is honoured only up to MAX_FILLED_TENSOR_BYTES, a rank above
TensorFlow's 254 is refused as TensorFlow refuses it, and no tensor may exceed what one message
can carry.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

# The largest tensor a request may describe, like the largest message (2 GiB).
MAX_TENSOR_BYTES = 2**31 - 1
# A tensor whose typed field holds fewer values than its shape (TensorFlow repeats the last
# one, or fills zeros) may be at most this big: past it, the shape must match the content.
MAX_FILLED_TENSOR_BYTES = 1 << 20
# TensorShape::kMaxDimensions.
MAX_RANK = 254
# tf.string reports size 0; each element is a TensorFlow tstring of 24 bytes at least.
_TSTRING_BYTES = 24
# Each value of these fields is half of one complex element.
_PAIRED_FIELDS = frozenset({"scomplex_val", "dcomplex_val"})

# DataTypeString() names that differ from tf.DType.name; TensorFlow's messages use the former.
_TF_TYPE_NAMES = {"float32": "float", "float64": "double", "float16": "half"}

# The repeated field TensorFlow's Tensor::AsProtoField fills for each dtype.
_INT_VAL_TYPES = frozenset(
    {
        types_pb2.DT_INT32,
        types_pb2.DT_INT16,
        types_pb2.DT_INT8,
        types_pb2.DT_UINT8,
        types_pb2.DT_UINT16,
    }
)
_HALF_VAL_TYPES = frozenset({types_pb2.DT_HALF, types_pb2.DT_BFLOAT16})
# The numeric types numpy reads directly from a request, and their typed field.
_FIELD_BY_TYPE = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    **dict.fromkeys(_INT_VAL_TYPES, "int_val"),
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
}


class TensorParseError(Exception):
    """The TensorProto does not describe a valid tensor."""


class TensorBoundsError(TensorParseError):
    """The TensorProto's shape is out of bounds for the content it carries; says why."""


def dtype_name(dtype: tf.DType) -> str:
    """The name TensorFlow's C++ messages use for a dtype ("float", "string", "int64")."""
    name: str = dtype.name
    return _TF_TYPE_NAMES.get(name, name)


def tensor_from_proto(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """Parses a request tensor; raises TensorParseError if TensorFlow would reject it.

    Tensors that give exactly their shape's worth of values (numeric ones as raw
    ``tensor_content`` or a typed field, strings in ``string_val``) are read by numpy straight
    from the message; everything else (half floats, fewer values than the shape) goes through
    TensorFlow's own parser, an eager op that costs far more than the read."""
    try:
        dtype = tf.dtypes.as_dtype(proto.dtype)
    except TypeError as exc:
        raise TensorParseError(f"unknown dtype {proto.dtype}") from exc
    if dtype == tf.dtypes.resource or dtype == tf.dtypes.variant or dtype._is_ref_dtype:
        raise TensorParseError(f"dtype {dtype.name} cannot be sent in a request")
    sizes = [dim.size for dim in proto.tensor_shape.dim]
    _check_bounds(proto, sizes, dtype.size or _TSTRING_BYTES)
    fast = _strings(proto, sizes) if proto.dtype == types_pb2.DT_STRING else _numeric(proto, sizes)
    if fast is not None:
        return fast
    try:
        return np.asarray(tf.io.parse_tensor(proto.SerializeToString(), out_type=dtype))
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as exc:
        raise TensorParseError("invalid TensorProto") from exc


def _check_bounds(proto: tensor_pb2.TensorProto, sizes: list[int], element_bytes: int) -> None:
    """Raises TensorBoundsError for a shape that is invalid, bigger than a message can carry, or
    bigger than its content past the fill allowance; reads only the proto's lengths."""
    if len(sizes) > MAX_RANK:
        raise TensorBoundsError(f"shape has {len(sizes)} dimensions, more than {MAX_RANK}")
    if any(size < 0 for size in sizes):
        raise TensorBoundsError(f"shape {sizes} has a negative dimension")
    count = math.prod(sizes)
    size = count * element_bytes
    if size > MAX_TENSOR_BYTES:
        raise TensorBoundsError(
            f"shape of {count} elements is {size} bytes, more than a {MAX_TENSOR_BYTES}-byte "
            "message can carry"
        )
    if proto.tensor_content or size <= MAX_FILLED_TENSOR_BYTES:
        return  # tensor_content must match the shape exactly, which TensorFlow checks
    carried = max(
        (
            len(values) // (2 if descriptor.name in _PAIRED_FIELDS else 1)
            for descriptor, values in proto.ListFields()
            if descriptor.name.endswith("_val")
        ),
        default=0,
    )
    if carried < count:
        raise TensorBoundsError(
            f"shape of {count} elements but {carried} values given; a shorter list is filled "
            f"only up to {MAX_FILLED_TENSOR_BYTES} bytes"
        )


def tf_dtype_of(array: np.ndarray) -> tf.DType:
    """The TensorFlow dtype of a parsed request tensor (object arrays hold strings)."""
    return tf.string if array.dtype == object else tf.dtypes.as_dtype(array.dtype)


def _numeric(proto: tensor_pb2.TensorProto, sizes: list[int]) -> np.ndarray | None:
    """The tensor read by numpy, or None to leave it to TensorFlow's parser."""
    field = _FIELD_BY_TYPE.get(proto.dtype)
    if field is None or proto.tensor_shape.unknown_rank:
        return None
    dtype = np.dtype(tf.dtypes.as_dtype(proto.dtype).as_numpy_dtype).newbyteorder("<")
    count = math.prod(sizes)
    if proto.tensor_content:
        if len(proto.tensor_content) != count * dtype.itemsize:
            return None  # TensorFlow refuses it, with its reason
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(sizes)
    values = getattr(proto, field)
    if len(values) != count:
        return None  # fewer values repeat the last one: TensorFlow's rule, left to it
    try:
        return np.array(values, dtype=dtype).reshape(sizes)
    except (OverflowError, ValueError):
        return None


def _strings(proto: tensor_pb2.TensorProto, sizes: list[int]) -> np.ndarray | None:
    """A string tensor as the object array of bytes a session takes, or None to leave it to
    TensorFlow's parser (a shorter list, or strings encoded in ``tensor_content``)."""
    if proto.tensor_content or proto.tensor_shape.unknown_rank:
        return None
    values = proto.string_val
    if len(values) != math.prod(sizes):
        return None
    strings = np.empty(len(values), dtype=object)
    strings[:] = list(values)
    return strings.reshape(sizes)


def tensor_to_proto(value: Any) -> tensor_pb2.TensorProto:
    """Serializes a result (a numpy value from the session) into its dtype's typed field."""
    array = np.asarray(value)
    # Sessions return string tensors as object arrays of bytes.
    dtype = tf.string if array.dtype == object else tf.dtypes.as_dtype(array.dtype)
    proto = tensor_pb2.TensorProto(
        dtype=dtype.as_datatype_enum, tensor_shape=_shape_proto(array.shape)
    )
    flat = array.reshape(-1)
    enum = proto.dtype
    if enum == types_pb2.DT_FLOAT:
        proto.float_val.extend(flat.tolist())
    elif enum == types_pb2.DT_DOUBLE:
        proto.double_val.extend(flat.tolist())
    elif enum in _INT_VAL_TYPES:
        proto.int_val.extend(flat.astype(np.int64).tolist())
    elif enum == types_pb2.DT_INT64:
        proto.int64_val.extend(flat.tolist())
    elif enum == types_pb2.DT_UINT32:
        proto.uint32_val.extend(flat.tolist())
    elif enum == types_pb2.DT_UINT64:
        proto.uint64_val.extend(flat.tolist())
    elif enum == types_pb2.DT_BOOL:
        proto.bool_val.extend(flat.tolist())
    elif enum == types_pb2.DT_STRING:
        proto.string_val.extend(flat.tolist())
    elif enum in _HALF_VAL_TYPES:
        # Both travel as their 16-bit patterns.
        proto.half_val.extend(flat.view(np.uint16).tolist())
    elif enum == types_pb2.DT_COMPLEX64:
        proto.scomplex_val.extend(flat.view(np.float32).tolist())
    elif enum == types_pb2.DT_COMPLEX128:
        proto.dcomplex_val.extend(flat.view(np.float64).tolist())
    else:
        # Rare types (quantized, float8, ...): TensorFlow's own encoding.
        return tf.make_tensor_proto(array, dtype=dtype)
    return proto


def _shape_proto(shape: tuple[int, ...]) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in shape]
    )
