"""Runs one Predict call on a loaded version, checking it the way TensorFlow Serving does.

The checks, their order and their messages follow TensorFlow Serving's `RunPredict`
(predict_util.cc) and TensorFlow's `saved_model::GetInputValues`. This is blocking TensorFlow
work: callers run it in a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from services.common.bounded import shorten
from services.modelserver.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    TensorFlowRuntimeError,
)
from services.modelserver.servable import Servable
from services.modelserver.tensors import (
    TensorBoundsError,
    TensorParseError,
    dtype_name,
    tensor_from_proto,
    tensor_to_proto,
    tf_dtype_of,
)

DEFAULT_SERVING_SIGNATURE = "serving_default"


def resolve_signature_name(requested: str) -> str:
    return requested or DEFAULT_SERVING_SIGNATURE


@dataclass(frozen=True)
class PreparedRun:
    """A checked Predict request: what to feed the session, what to fetch, and the aliases
    the fetched tensors are answered under."""

    feeds: dict[str, np.ndarray]
    fetches: list[str]
    output_aliases: list[str]


def run_predict(
    servable: Servable,
    signature_name: str,
    inputs: Mapping[str, tensor_pb2.TensorProto],
    output_filter: Sequence[str],
) -> dict[str, tensor_pb2.TensorProto]:
    """Computes the signature's outputs (all, or those in output_filter) for the given inputs."""
    prepared = prepare_predict(servable, signature_name, inputs, output_filter)
    return predict_outputs(prepared, run_session(servable, prepared.feeds, prepared.fetches))


def prepare_predict(
    servable: Servable,
    signature_name: str,
    inputs: Mapping[str, tensor_pb2.TensorProto],
    output_filter: Sequence[str],
) -> PreparedRun:
    """Checks a request against the signature and parses its tensors."""
    signature_def = servable.signature_def_map.signature_def.get(signature_name)
    if signature_def is None:
        raise FailedPreconditionError(
            f'Serving signature key "{shorten(signature_name)}" not found.'
        )

    _check_inputs_size(signature_def, inputs)
    arguments = _input_tensors(signature_def, inputs)
    output_aliases = _output_aliases(signature_def, output_filter)
    _check_input_dtypes(signature_def, arguments)

    feeds = {signature_def.inputs[alias].name: tensor for alias, tensor in arguments.items()}
    fetches = [signature_def.outputs[alias].name for alias in output_aliases]
    return PreparedRun(feeds, fetches, output_aliases)


def run_session(servable: Servable, feeds: Mapping[str, Any], fetches: Sequence[str]) -> list[Any]:
    """One run of the version's session, with TensorFlow's refusals as serving errors."""
    try:
        return servable.run(feeds, fetches)
    except tf.errors.OpError as exc:
        # TensorFlow's own verdict (a bad shape for an op, a value out of range, ...), passed
        # on with its code and message as TensorFlow Serving does.
        raise TensorFlowRuntimeError(exc.error_code, exc.message) from exc


def predict_outputs(
    prepared: PreparedRun, values: Sequence[Any]
) -> dict[str, tensor_pb2.TensorProto]:
    """The fetched values as the response's named output tensors."""
    return {
        alias: tensor_to_proto(value)
        for alias, value in zip(prepared.output_aliases, values, strict=True)
    }


def _check_inputs_size(
    signature_def: meta_graph_pb2.SignatureDef, inputs: Mapping[str, Any]
) -> None:
    expected, given = len(signature_def.inputs), len(inputs)
    if given > expected or (given < expected and not signature_def.defaults):
        requested = sorted(inputs)
        required = sorted(signature_def.inputs)
        extra = sorted(set(requested) - set(required))
        missing = sorted(set(required) - set(requested))
        raise InvalidArgumentError(
            f"input size does not match signature: {given}!={expected} "
            f"len({{{_join(requested)}}}) != len({{{_join(required)}}}). "
            f"Sent extra: {{{_join(extra)}}}. Missing but required: {{{_join(missing)}}}."
        )


def _input_tensors(
    signature_def: meta_graph_pb2.SignatureDef, inputs: Mapping[str, tensor_pb2.TensorProto]
) -> dict[str, np.ndarray]:
    """Every signature input, from the request or from the signature's defaults."""
    arguments: dict[str, np.ndarray] = {}
    for alias in sorted(signature_def.inputs):
        proto = inputs.get(alias)
        if proto is None:
            proto = signature_def.defaults.get(alias)
        if proto is None:
            feed_name = signature_def.inputs[alias].name
            raise InvalidArgumentError(
                f"Signature input alias: {alias}(feed name: {feed_name}) not found in request "
                f"and no default value provided. Inputs expected to be in the request "
                f"{{{_join(sorted(inputs))}}}, or default input alias set: "
                f"{_join(sorted(signature_def.defaults))}"
            )
        try:
            arguments[alias] = tensor_from_proto(proto)
        except TensorBoundsError as exc:
            # TensorFlow Serving's words, then why: this server refuses it before allocating.
            raise InvalidArgumentError(f"tensor parsing error: {alias}: {exc}") from exc
        except TensorParseError as exc:
            raise InvalidArgumentError(f"tensor parsing error: {alias}") from exc
    unused = [alias for alias in inputs if alias not in signature_def.inputs]
    if inputs and unused:
        used = sorted(alias for alias in inputs if alias in signature_def.inputs)
        raise InvalidArgumentError(
            f"Inputs contains invalid name. Used request inputs: {_join(used)}, "
            f"request input: {_join(sorted(inputs))}"
        )
    return arguments


def _output_aliases(
    signature_def: meta_graph_pb2.SignatureDef, output_filter: Sequence[str]
) -> list[str]:
    """The outputs to return: those named in output_filter, else all of the signature's."""
    if not output_filter:
        return list(signature_def.outputs)
    seen: set[str] = set()
    for alias in output_filter:
        if alias not in signature_def.outputs:
            raise InvalidArgumentError(
                f"output tensor alias not found in signature: {alias} Outputs expected to be "
                f"in the set {{{_join(sorted(signature_def.outputs))}}}."
            )
        if alias in seen:
            raise InvalidArgumentError(f"duplicate output tensor alias: {alias}")
        seen.add(alias)
    return list(output_filter)


def _check_input_dtypes(
    signature_def: meta_graph_pb2.SignatureDef, arguments: Mapping[str, np.ndarray]
) -> None:
    # TensorFlow Serving's session rejects a mistyped feed with this message; the argument
    # index follows the order of the signature's inputs (sorted here, hash order there).
    for index, alias in enumerate(sorted(signature_def.inputs)):
        info = signature_def.inputs[alias]
        if info.dtype == types_pb2.DT_INVALID:
            continue  # a composite input (ragged, sparse) names no single dtype
        expected = tf.dtypes.as_dtype(info.dtype)
        given = tf_dtype_of(arguments[alias])
        if given != expected:
            raise InvalidArgumentError(
                f"Expects arg[{index}] to be {dtype_name(expected)} but "
                f"{dtype_name(given)} is provided"
            )


def _join(names: Sequence[str]) -> str:
    return ",".join(names)
