"""numpy <-> TensorProto without TensorFlow ops on the request path.

Numeric tensors travel as raw little-endian bytes in `tensor_content`: building `float_val` from an
ndarray element by element is two orders of magnitude slower.
"""

from __future__ import annotations

import math
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from services.generated.tfserving.v1 import tensor_pb2

DataType: TypeAlias = tensor_pb2.DataType.ValueType

_NUMPY_BY_DTYPE: dict[DataType, np.dtype[Any]] = {
    tensor_pb2.DT_FLOAT: np.dtype("<f4"),
    tensor_pb2.DT_DOUBLE: np.dtype("<f8"),
    tensor_pb2.DT_INT32: np.dtype("<i4"),
    tensor_pb2.DT_INT64: np.dtype("<i8"),
    tensor_pb2.DT_UINT8: np.dtype("u1"),
    tensor_pb2.DT_BOOL: np.dtype("?"),
}
_DTYPE_BY_NUMPY = {dtype: enum for enum, dtype in _NUMPY_BY_DTYPE.items()}

# The typed repeated field TensorFlow uses for each dtype when tensor_content is empty.
_VALUE_FIELD = {
    tensor_pb2.DT_FLOAT: "float_val",
    tensor_pb2.DT_DOUBLE: "double_val",
    tensor_pb2.DT_INT32: "int_val",
    tensor_pb2.DT_UINT8: "int_val",
    tensor_pb2.DT_INT64: "int64_val",
    tensor_pb2.DT_BOOL: "bool_val",
}


class TensorConversionError(ValueError):
    """A TensorProto or an array cannot be converted."""


def to_tensor_proto(array: npt.NDArray[Any]) -> tensor_pb2.TensorProto:
    """Encodes a numeric ndarray as a TensorProto with `tensor_content`; text (str, bytes or
    object arrays of them) as DT_STRING, UTF-8 encoded."""
    tensor = tensor_pb2.TensorProto()
    write_tensor_proto(tensor, array)
    return tensor


def write_tensor_proto(tensor: tensor_pb2.TensorProto, array: npt.NDArray[Any]) -> None:
    """Encodes ``array`` as to_tensor_proto does, into an empty ``tensor``: a request's map
    entry is filled where it is, rather than built apart and copied in."""
    if array.dtype.kind in "USO":
        values = [item if isinstance(item, bytes) else str(item).encode() for item in array.flat]
        tensor.dtype = tensor_pb2.DT_STRING
        _write_shape(tensor.tensor_shape, array.shape)
        tensor.string_val.extend(values)
        return
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    enum = _DTYPE_BY_NUMPY.get(dtype)
    if enum is None:
        raise TensorConversionError(f"unsupported array dtype {array.dtype}")
    tensor.dtype = enum
    _write_shape(tensor.tensor_shape, array.shape)
    tensor.tensor_content = np.ascontiguousarray(array, dtype=dtype).tobytes()


def _write_shape(proto: tensor_pb2.TensorShapeProto, shape: tuple[int, ...]) -> None:
    for size in shape:
        proto.dim.add(size=size)


def dtype_name(enum: DataType) -> str:
    """TensorFlow's short name of a DataType enum value: float32, int64, string, ..."""
    if enum == tensor_pb2.DT_STRING:
        return "string"
    dtype = _NUMPY_BY_DTYPE.get(enum)
    if dtype is None:
        return _enum_name(enum).removeprefix("DT_").lower()
    return "bool" if dtype.kind == "b" else dtype.name


def _enum_name(enum: DataType) -> str:
    if enum not in tensor_pb2.DataType.values():
        return f"DT_{int(enum)}"  # a type newer than the gateway's copy of the enum
    return tensor_pb2.DataType.Name(enum)


def from_tensor_proto(proto: tensor_pb2.TensorProto) -> npt.NDArray[Any]:
    """Decodes a TensorProto into an ndarray (strings become an object array of bytes)."""
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    count = math.prod(shape)  # numpy's prod costs a hundred times more for a few dims
    if proto.dtype == tensor_pb2.DT_STRING:
        return _reshape(np.array(list(proto.string_val), dtype=object), shape, count)
    dtype = _NUMPY_BY_DTYPE.get(proto.dtype)
    if dtype is None:
        raise TensorConversionError(f"unsupported tensor dtype {_enum_name(proto.dtype)}")
    if proto.tensor_content:
        if len(proto.tensor_content) != count * dtype.itemsize:
            raise TensorConversionError(
                f"tensor_content holds {len(proto.tensor_content)} bytes, shape {shape} needs "
                f"{count * dtype.itemsize}"
            )
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    field = getattr(proto, _VALUE_FIELD[proto.dtype])
    values = np.fromiter(field, dtype, len(field))
    return _reshape(values, shape, count)


def _reshape(values: npt.NDArray[Any], shape: tuple[int, ...], count: int) -> npt.NDArray[Any]:
    # TensorFlow allows a shorter value list and repeats its last element to fill the shape.
    if values.size == count:
        return values.reshape(shape)
    if 0 < values.size < count:
        padded = np.concatenate([values, np.repeat(values[-1:], count - values.size)])
        return padded.reshape(shape)
    raise TensorConversionError(f"{values.size} values do not fill shape {shape}")
