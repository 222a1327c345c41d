"""TensorFlow's own TensorProto of an array, as the gateway encodes it.

Tests that speak to a model server with tensorflow-serving-api's classes build their tensors
with the gateway's encoder, so that they send what the gateway sends; the two TensorProto
classes share a wire format but not a Python type, so the tensor crosses as bytes.
"""

from __future__ import annotations

from typing import Any

import numpy.typing as npt
from tensorflow.core.framework import tensor_pb2

from services.gateway.tensors import to_tensor_proto


def tensorflow_tensor(array: npt.NDArray[Any]) -> tensor_pb2.TensorProto:
    return tensor_pb2.TensorProto.FromString(to_tensor_proto(array).SerializeToString())
