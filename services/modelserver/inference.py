"""Classify and Regress over serialized tf.Examples, by TensorFlow Serving's rules.

A classification or regression signature takes one string tensor of serialized tf.Example
protos. Examples sent with a context are merged with it the way TensorFlow Serving does it: the
context's serialized bytes followed by the example's, which protobuf parses as one message with
the example's features overriding the context's. Outputs become ClassificationResult and
RegressionResult messages; shapes and dtypes are checked with TensorFlow Serving's messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2, input_pb2, regression_pb2

from services.common.bounded import shorten
from services.modelserver.errors import FailedPreconditionError, InvalidArgumentError
from services.modelserver.predict import DEFAULT_SERVING_SIGNATURE
from services.modelserver.servable import Servable

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
CLASSES_OUTPUT = "classes"
SCORES_OUTPUT = "scores"
REGRESSION_OUTPUT = "outputs"


@dataclass(frozen=True)
class ExampleRun:
    """A checked Classify or Regress request: the feed, the fetches and what they hold."""

    signature_name: str
    feeds: dict[str, np.ndarray]
    fetches: list[str]
    fetched_aliases: list[str]
    size: int


def prepare_example_run(
    servable: Servable,
    signature_name: str,
    method: str,
    request_input: input_pb2.Input,
    check_method_name: bool,
) -> ExampleRun:
    """Checks the signature and serializes the request's examples into its one input."""
    name = signature_name or DEFAULT_SERVING_SIGNATURE
    signature = servable.signature_def_map.signature_def.get(name)
    if signature is None:
        raise InvalidArgumentError(f"No signature was found with the name: {shorten(name)}")
    kind = "classification" if method == CLASSIFY_METHOD else "regression"
    if check_method_name and signature.method_name != method:
        raise InvalidArgumentError(
            f"Expected {kind} signature method_name to be {method}. Was: {signature.method_name}"
        )
    if len(signature.inputs) != 1:
        raise InvalidArgumentError(
            f"Expected one input Tensor; signature {name} has {len(signature.inputs)}"
        )
    [input_info] = signature.inputs.values()
    if input_info.dtype != types_pb2.DT_STRING:
        raise InvalidArgumentError(
            f"Signature {name} does not take serialized tf.Examples (its input is not a string)"
        )
    serialized = serialized_examples(request_input)
    aliases = _fetched_aliases(signature, method)
    return ExampleRun(
        signature_name=name,
        feeds={input_info.name: np.array(serialized, dtype=object)},
        fetches=[signature.outputs[alias].name for alias in aliases],
        fetched_aliases=aliases,
        size=len(serialized),
    )


def serialized_examples(request_input: input_pb2.Input) -> list[bytes]:
    """One serialized tf.Example per example of the request, merged with its context."""
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        examples = [e.SerializeToString() for e in request_input.example_list.examples]
    elif kind == "example_list_with_context":
        listed = request_input.example_list_with_context
        context = listed.context.SerializeToString()
        examples = [context + e.SerializeToString() for e in listed.examples]
    else:
        examples = []
    if not examples:
        raise InvalidArgumentError("Input is empty.")
    return examples


def classification_result(
    run: ExampleRun, values: Sequence[Any]
) -> classification_pb2.ClassificationResult:
    outputs = dict(zip(run.fetched_aliases, (np.asarray(v) for v in values), strict=True))
    scores, classes = outputs.get(SCORES_OUTPUT), outputs.get(CLASSES_OUTPUT)
    for alias, array in ((SCORES_OUTPUT, scores), (CLASSES_OUTPUT, classes)):
        if array is not None and (array.ndim != 2 or array.shape[0] != run.size):
            raise InvalidArgumentError(
                f"Expected {alias} Tensor shape: [batch_size num_classes] but got "
                f"{list(array.shape)}"
            )
    if scores is not None and classes is not None and scores.shape != classes.shape:
        raise InvalidArgumentError(
            f"Tensors class and score should match in shape: {list(classes.shape)} vs "
            f"{list(scores.shape)}"
        )
    result = classification_pb2.ClassificationResult()
    for row in range(run.size):
        classification = result.classifications.add()
        columns = (scores if scores is not None else classes).shape[1]  # type: ignore[union-attr]
        for column in range(columns):
            entry = classification.classes.add()
            if classes is not None:
                entry.label = _text(classes[row, column])
            if scores is not None:
                entry.score = float(scores[row, column])
    return result


def regression_result(run: ExampleRun, values: Sequence[Any]) -> regression_pb2.RegressionResult:
    [outputs] = (np.asarray(v) for v in values)
    if not (outputs.shape == (run.size,) or (outputs.ndim == 2 and outputs.shape == (run.size, 1))):
        raise InvalidArgumentError(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but "
            f"got {list(outputs.shape)}"
        )
    result = regression_pb2.RegressionResult()
    for value in outputs.reshape(-1):
        result.regressions.add().value = float(value)
    return result


def _fetched_aliases(signature: meta_graph_pb2.SignatureDef, method: str) -> list[str]:
    if method == REGRESS_METHOD:
        info = signature.outputs.get(REGRESSION_OUTPUT)
        if info is None:
            raise InvalidArgumentError(
                f"No regression outputs found in signature: {REGRESSION_OUTPUT}"
            )
        if info.dtype != types_pb2.DT_FLOAT:
            raise InvalidArgumentError("Expected regression output to be a float Tensor")
        return [REGRESSION_OUTPUT]
    aliases = [alias for alias in (CLASSES_OUTPUT, SCORES_OUTPUT) if alias in signature.outputs]
    if not aliases:
        raise InvalidArgumentError(
            f"Expected classification signature outputs to contain at least one of "
            f"{CLASSES_OUTPUT} or {SCORES_OUTPUT}"
        )
    expected = {CLASSES_OUTPUT: types_pb2.DT_STRING, SCORES_OUTPUT: types_pb2.DT_FLOAT}
    for alias in aliases:
        if signature.outputs[alias].dtype != expected[alias]:
            raise FailedPreconditionError(
                f"Expected {alias} Tensor of type {types_pb2.DataType.Name(expected[alias])}"
            )
    return aliases


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
