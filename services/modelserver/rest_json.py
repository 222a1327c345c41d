"""TensorFlow Serving's REST JSON: request bodies to tensors and tf.Examples, results to answers.

The row format (``"instances"``) lists one entry per example, stacked into the 0th dimension;
the columnar format (``"inputs"``) gives each input's whole tensor. Binary strings travel as
``{"b64": "..."}``; outputs whose name ends in ``_bytes`` are answered that way too. Errors
carry TensorFlow Serving's messages.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.example import example_pb2
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2, input_pb2, regression_pb2

from services.modelserver.errors import InvalidArgumentError
from services.modelserver.tensors import dtype_name

ROW_KEY = "instances"
COLUMNAR_KEY = "inputs"
# numpy's limit on dimensions; a string tensor nested deeper is not one.
_MAX_DIMS = 64


def predict_inputs(
    body: Mapping[str, Any], inputs: Mapping[str, meta_graph_pb2.TensorInfo]
) -> tuple[dict[str, tensor_pb2.TensorProto], bool]:
    """The request tensors of a :predict body, and whether it used the row format."""
    if (ROW_KEY in body) == (COLUMNAR_KEY in body):
        if ROW_KEY in body:
            raise InvalidArgumentError(
                "JSON Value: Not formatted correctly expecting only one of 'inputs' or "
                "'instances' keys to exist"
            )
        raise InvalidArgumentError("Missing 'inputs' or 'instances' key")
    if ROW_KEY in body:
        return _rows(body[ROW_KEY], inputs), True
    return _columns(body[COLUMNAR_KEY], inputs), False


def predict_answer(outputs: Mapping[str, tensor_pb2.TensorProto], row_format: bool) -> Any:
    """The JSON answer: ``{"predictions": ...}`` for rows, ``{"outputs": ...}`` for columns."""
    values = {name: _json_value(name, proto) for name, proto in outputs.items()}
    if not row_format:
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    sizes = {name: _batch_size(name, proto) for name, proto in outputs.items()}
    if len(set(sizes.values())) > 1:
        raise InvalidArgumentError(
            "Output tensors have different batch sizes in the row format: "
            + ", ".join(f"{name}: {size}" for name, size in sizes.items())
        )
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    count = next(iter(sizes.values()), 0)
    return {
        "predictions": [{name: value[i] for name, value in values.items()} for i in range(count)]
    }


def _rows(
    instances: Any, inputs: Mapping[str, meta_graph_pb2.TensorInfo]
) -> dict[str, tensor_pb2.TensorProto]:
    # A numeric array arrives as numpy's already (json_body.py).
    if not isinstance(instances, list | np.ndarray):
        raise InvalidArgumentError("Excepting 'instances' to be an list/array")
    if len(instances) == 0:
        raise InvalidArgumentError("No values in 'instances' array")
    named = isinstance(instances, list) and all(
        isinstance(row, dict) and not _is_b64(row) for row in instances
    )
    if not named:
        if len(inputs) != 1:
            raise InvalidArgumentError(
                "instances is a plain list, but expecting list of objects as multiple input "
                "tensors required as per tensorinfo_map"
            )
        [(name, info)] = inputs.items()
        return {name: _tensor(instances, info.dtype, f"'{ROW_KEY}'")}
    columns: dict[str, list[Any]] = {name: [] for name in inputs}
    for index, row in enumerate(instances):
        if set(row) != set(inputs):
            raise InvalidArgumentError(
                f"Failed to process element: {index} of 'instances' list. JSON object: "
                f"keys {sorted(row)} do not match the signature's inputs {sorted(inputs)}"
            )
        for name, value in row.items():
            columns[name].append(value)
    return {
        name: _tensor(values, inputs[name].dtype, f"'{ROW_KEY}' key {name}")
        for name, values in columns.items()
    }


def _columns(
    value: Any, inputs: Mapping[str, meta_graph_pb2.TensorInfo]
) -> dict[str, tensor_pb2.TensorProto]:
    if len(inputs) == 1 and not (isinstance(value, dict) and not _is_b64(value)):
        [(name, info)] = inputs.items()
        return {name: _tensor(value, info.dtype, f"'{COLUMNAR_KEY}'")}
    if not isinstance(value, dict):
        raise InvalidArgumentError(
            f"'inputs' must be an object of named inputs, as the signature has {len(inputs)} inputs"
        )
    for name in inputs:
        if name not in value:
            raise InvalidArgumentError(f"Missing named input: {name} in 'inputs' object.")
    # A name the signature lacks goes through with its JSON type, so that Predict refuses it
    # with its usual message.
    return {
        name: _tensor(
            item,
            inputs[name].dtype if name in inputs else types_pb2.DT_INVALID,
            f"'{COLUMNAR_KEY}' key {name}",
        )
        for name, item in value.items()
    }


def _tensor(value: Any, dtype: int, where: str) -> tensor_pb2.TensorProto:
    """A JSON value of the given TensorFlow dtype as a TensorProto."""
    if dtype == types_pb2.DT_STRING:
        array = np.array(_strings(value, where), dtype=object)
        # Ragged nesting leaves lists inside the object array instead of a shape.
        if array.ndim > _MAX_DIMS or not all(isinstance(item, bytes) for item in array.flat):
            raise InvalidArgumentError(f"{where}: ragged lists are not a tensor")
        return tf.make_tensor_proto(array, dtype=tf.string)
    tf_dtype = tf.dtypes.as_dtype(dtype) if dtype != types_pb2.DT_INVALID else None
    expected = dtype_name(tf_dtype) if tf_dtype else "a number"
    try:
        # numpy reads the JSON types first: a string or null is refused, not converted.
        array = np.array(value)
    except (TypeError, ValueError, OverflowError) as exc:
        if "inhomogeneous" in str(exc):
            raise InvalidArgumentError(f"{where}: ragged lists are not a tensor") from exc
        raise InvalidArgumentError(
            f"{where}: JSON Value: {_preview(value)} is not of expected type: {expected}"
        ) from exc
    if array.dtype == object and not _has_numbers_only(value):
        raise InvalidArgumentError(f"{where}: ragged lists or mixed types are not a tensor")
    if array.dtype.kind not in "biuf":
        # Object: an integer past 64 bits among numbers; U: a string.
        reason = "is out of range" if array.dtype == object else "is not of expected type"
        raise InvalidArgumentError(f"{where}: JSON Value: {_preview(value)} {reason}: {expected}")
    if tf_dtype is None:
        return tf.make_tensor_proto(array)
    if tf_dtype.is_integer:
        _check_integral(array, where, tf_dtype.name)
        _check_range(array, value, where, tf_dtype)
    return tf.make_tensor_proto(array.astype(tf_dtype.as_numpy_dtype))


def _has_numbers_only(value: Any) -> bool:
    """Whether an object array came from numbers only (big integers), not from ragged lists."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif not isinstance(item, int | float):
            return False
    return True


def _check_range(array: np.ndarray, value: Any, where: str, tf_dtype: tf.DType) -> None:
    # numpy's astype wraps an integer that does not fit; TensorFlow Serving refuses it.
    if array.size == 0:
        return
    limits = np.iinfo(tf_dtype.as_numpy_dtype)
    if array.min() < limits.min or array.max() > limits.max:
        raise InvalidArgumentError(
            f"{where}: JSON Value: {_preview(value)} is out of range for {tf_dtype.name}"
        )


def _preview(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[:20].tolist()
    try:
        text = json.dumps(value)
    except (RecursionError, ValueError):
        return "(a value nested too deeply to show)"
    return text if len(text) <= 80 else text[:77] + "..."


def _strings(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return [_strings(item, where) for item in value]
    if isinstance(value, dict) and _is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, TypeError) as exc:
            raise InvalidArgumentError(f"{where}: 'b64' value is not valid base64") from exc
    if isinstance(value, str):
        return value.encode()
    shown = _preview(value) if isinstance(value, np.ndarray) else repr(value)
    kind = "number" if isinstance(value, np.ndarray) else type(value).__name__
    raise InvalidArgumentError(
        f"{where}: JSON Value: {shown} Type: {kind} is not of expected type: string"
    )


def _check_integral(array: np.ndarray, where: str, dtype_name: str) -> None:
    """Integers must arrive as JSON integers: 2.5 for an int input loses precision."""
    if array.dtype.kind != "f":
        return
    lossy = ~(np.isfinite(array) & (np.floor(array) == array))
    if lossy.any():
        item = array[lossy].flat[0]
        raise InvalidArgumentError(
            f"{where}: Cannot convert JSON value: {item} to {dtype_name} without loss of precision."
        )


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _json_value(name: str, proto: tensor_pb2.TensorProto) -> Any:
    array = tf.make_ndarray(proto)
    if proto.dtype == types_pb2.DT_STRING:
        return _encode_strings(array.tolist(), binary=name.endswith("_bytes"))
    if proto.dtype in (types_pb2.DT_HALF, types_pb2.DT_BFLOAT16):
        array = array.astype(np.float32)
    return array.tolist()


def _encode_strings(value: Any, binary: bool) -> Any:
    if isinstance(value, list):
        return [_encode_strings(item, binary) for item in value]
    if not binary:
        try:
            return value.decode()
        except UnicodeDecodeError:
            pass  # not text: sent as base64 below
    return {"b64": base64.b64encode(value).decode()}


def _batch_size(name: str, proto: tensor_pb2.TensorProto) -> int:
    if not proto.tensor_shape.dim:
        raise InvalidArgumentError(f"Tensor name: {name} has no shape information ")
    return int(proto.tensor_shape.dim[0].size)


def examples_input(body: Mapping[str, Any], method: str) -> input_pb2.Input:
    """The tf.Examples of a :classify or :regress body (``examples``, optional ``context``)."""
    if "examples" not in body:
        raise InvalidArgumentError(
            f"When method is {method}, key 'examples' is expected and was not found"
        )
    rows = body["examples"]
    if not isinstance(rows, list):
        raise InvalidArgumentError("Expecting 'examples' value to be an list/array")
    if not rows:
        raise InvalidArgumentError("'examples' value is an empty array")
    examples = [_example(row, f"examples[{index}]") for index, row in enumerate(rows)]
    if "context" not in body:
        return input_pb2.Input(example_list=input_pb2.ExampleList(examples=examples))
    return input_pb2.Input(
        example_list_with_context=input_pb2.ExampleListWithContext(
            examples=examples, context=_example(body["context"], "context")
        )
    )


def classify_answer(result: classification_pb2.ClassificationResult) -> Any:
    return {
        "results": [
            [[entry.label, entry.score] for entry in classification.classes]
            for classification in result.classifications
        ]
    }


def regress_answer(result: regression_pb2.RegressionResult) -> Any:
    return {"results": [regression.value for regression in result.regressions]}


def _example(features: Any, where: str) -> example_pb2.Example:
    if not isinstance(features, dict):
        raise InvalidArgumentError(f"{where}: expected an object of feature names and values")
    example = example_pb2.Example()
    for name, value in features.items():
        values = value if isinstance(value, list) else [value]
        feature = example.features.feature[name]
        if all(isinstance(v, bool | int) for v in values):
            feature.int64_list.value.extend(int(v) for v in values)
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            feature.float_list.value.extend(float(v) for v in values)
        elif all(isinstance(v, str) or _is_b64(v) for v in values):
            feature.bytes_list.value.extend(_strings(values, f"{where}.{name}"))
        else:
            raise InvalidArgumentError(
                f'{where}.{name}: a feature is a number, a string or {{"b64": ...}}, or a '
                "list of one of these"
            )
    return example
