"""The client's output: gateway responses as lines of text for people, or as JSON for scripts.

Each response type has one function that turns it, and what the request knew that the response
does not repeat (file names, sample names, month labels), into lines. The model version that
answered is said once per response, on the first line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from services.generated.gateway.v1 import gateway_pb2

# Labels a forecast step (1 for the value right after the history) for the reader.
StepLabel = Callable[[int], str]


def json_line(response: Message) -> str:
    """The protobuf JSON mapping of one response on one line, for `jq` and other scripts."""
    fields = json_format.MessageToDict(
        response,
        preserving_proto_field_name=True,
        # Zero values too: class_id 0 is an answer, not an absent field.
        always_print_fields_with_no_presence=True,
    )
    if isinstance(response, gateway_pb2.ListModelsResponse):
        # ListModels never fills ModelInfo.signatures (the proto: "filled by GetModel only"), so
        # the key would always be `[]` and read as "this model has no signatures".
        for model in fields["models"]:
            model.pop("signatures", None)
    return json.dumps(fields)


def model_line(model: gateway_pb2.ModelVersionRef) -> str:
    return f"{model.name} version {model.version}"


def _with_model(response: Any, lines: Iterable[str]) -> list[str]:
    """The lines of a response with a `model` field (a ModelVersionRef), after the model version
    that computed them, where the response says one."""
    header = [model_line(response.model)] if response.HasField("model") else []
    return header + list(lines)


def _padded(labels: Sequence[str]) -> list[str]:
    """Labels padded to one width, so that what follows them lines up."""
    width = max((len(label) for label in labels), default=0)
    return [label.ljust(width) for label in labels]


def _probability(probabilities: Sequence[float], index: int) -> str:
    return f"{probabilities[index]:.2f}" if 0 <= index < len(probabilities) else "?"


def classify(response: gateway_pb2.ClassifyResponse, sample_names: Sequence[str]) -> list[str]:
    """One line per sample: its class, the class's probability, then the other classes'.

    `sample 1: class_0  0.97  (class_1 0.02, class_2 0.01)`
    """
    names = _labels(sample_names, len(response.classifications), "sample")
    lines = []
    for name, result in zip(names, response.classifications, strict=True):
        others = [
            f"{_class_name(response, class_id)} {probability:.2f}"
            for class_id, probability in enumerate(result.probabilities)
            if class_id != result.class_id
        ]
        line = f"{name} {result.class_name}  {_probability(result.probabilities, result.class_id)}"
        lines.append(f"{line}  ({', '.join(others)})" if others else line)
    return _with_model(response, lines)


def _class_name(response: gateway_pb2.ClassifyResponse, class_id: int) -> str:
    names = response.class_names
    return names[class_id] if class_id < len(names) else f"class {class_id}"


def digits(response: gateway_pb2.RecognizeDigitsResponse, file_names: Sequence[str]) -> list[str]:
    """One line per image: `seven.png: 7  (0.99)`, the digit and its probability."""
    lines = [
        f"{name} {prediction.digit}  ({_probability(prediction.probabilities, prediction.digit)})"
        for name, prediction in zip(
            _labels(file_names, len(response.predictions), "image"),
            response.predictions,
            strict=True,
        )
    ]
    return _with_model(response, lines)


def _labels(names: Sequence[str], count: int, unnamed: str) -> list[str]:
    """`count` labels `name:` padded to one width, so that what follows them lines up; answers
    beyond the names given are `<unnamed> N:`, so that none is left out."""
    numbered = [f"{unnamed} {number}" for number in range(len(names) + 1, count + 1)]
    return _padded([f"{name}:" for name in [*names[:count], *numbered]])


def forecast(response: gateway_pb2.ForecastResponse, label: StepLabel, decimals: int) -> list[str]:
    """One line per value: `1960-01  417.3`."""
    lines = [
        _forecast_line(label(step), value, decimals)
        for step, value in enumerate(response.values, start=1)
    ]
    return _with_model(response, lines)


def forecast_stream(
    points: Iterable[gateway_pb2.StreamForecastResponse], label: StepLabel, decimals: int
) -> Iterator[str]:
    """One line per value as it comes, after the model version once (every point of a stream
    comes from one version)."""
    for number, point in enumerate(points):
        if number == 0 and point.HasField("model"):
            yield model_line(point.model)
        yield _forecast_line(label(point.step), point.value, decimals)


def _forecast_line(label: str, value: float, decimals: int) -> str:
    return f"{label}  {value:.{decimals}f}"


def forecast_decimals(history: Sequence[float]) -> int:
    """Decimals that show four significant digits of the history's largest value, so that 417.3
    and 0.7071 are both readable: the forecast continues the history's scale."""
    largest = max((abs(value) for value in history if math.isfinite(value)), default=0.0)
    if largest == 0.0:
        return 1
    return min(6, max(1, 3 - math.floor(math.log10(largest))))


def months_after(first_year: int, first_month: int, known: int) -> StepLabel:
    """Steps labelled by calendar month (`1960-01`) for a monthly series that begins in
    `first_year`-`first_month` and has `known` values: step 1 is the month after the last."""
    first = first_year * 12 + first_month - 1

    def label(step: int) -> str:
        month = first + known - 1 + step
        return f"{month // 12}-{month % 12 + 1:02d}"

    return label


def steps_ahead(step: int) -> str:
    """A step of a history of unknown dates: `t+1` is the value right after it."""
    return f"t+{step}"


def similar_words(response: gateway_pb2.SimilarWordsResponse) -> list[str]:
    """One line per neighbour, nearest first: `premier  0.812`."""
    words = _padded([neighbor.word for neighbor in response.neighbors])
    lines = [
        f"{word}  {neighbor.score:.3f}"
        for word, neighbor in zip(words, response.neighbors, strict=True)
    ]
    return _with_model(response, lines)


def codes(response: gateway_pb2.EncodeResponse, input_names: Sequence[str]) -> list[str]:
    """One line per input: its reconstruction error, when asked for, then its latent code.

    `seven.png: error 0.0123  code 0.52 -1.03 ...`
    """
    lines = []
    names = _labels(input_names, len(response.codes), "input")
    for name, code in zip(names, response.codes, strict=True):
        error = (
            f"error {code.reconstruction_error:.4f}  "
            if code.HasField("reconstruction_error")
            else ""
        )
        values = " ".join(f"{value:.2f}" for value in code.values)
        lines.append(f"{name} {error}code {values}")
    return _with_model(response, lines)


def models(response: gateway_pb2.ListModelsResponse) -> list[str]:
    """A table, one model a row: its name, RPC, serving version and its versions' states."""
    rows = [["MODEL", "RPC", "SERVING", "VERSIONS"]]
    for model in response.models:
        rows.append([model.name, model.rpc, _serving(model), _versions(model.versions)])
    return _table(rows)


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as columns aligned by padding, two spaces apart; the last column is not padded."""
    columns = list(zip(*rows, strict=True))
    padded = [_padded(column) for column in columns[:-1]] + [list(columns[-1])]
    return ["  ".join(cells) for cells in zip(*padded, strict=True)]


def _serving(model: gateway_pb2.ModelInfo) -> str:
    # 0 is the proto's "no version is available", not a version.
    return str(model.serving_version) if model.serving_version else "none"


def _versions(versions: Iterable[gateway_pb2.ModelVersionStatus]) -> str:
    """`2 available, 1 unloading`: each version with its state, newest first as reported."""
    described = [f"{version.version} {_state(version.state)}" for version in versions]
    return ", ".join(described) or "none"


def _state(state: gateway_pb2.ModelVersionState.ValueType) -> str:
    """`MODEL_VERSION_STATE_AVAILABLE` as `available`."""
    name = gateway_pb2.ModelVersionState.Name(state)
    return name.removeprefix("MODEL_VERSION_STATE_").lower()


def model(response: gateway_pb2.GetModelResponse) -> list[str]:
    """The model, its versions, then each signature of its serving version with its tensors."""
    info = response.model
    lines = [
        f"model    {info.name}",
        f"rpc      {info.rpc}",
        f"serving  {_serving(info)}",
        f"versions {_versions(info.versions)}",
    ]
    for signature in info.signatures:
        lines.append(f"signature {signature.name}")
        rows = [["input", *_tensor(tensor)] for tensor in signature.inputs]
        rows += [["output", *_tensor(tensor)] for tensor in signature.outputs]
        if rows:
            lines += [f"  {line}" for line in _table(rows)]
    return lines


def _tensor(tensor: gateway_pb2.TensorInfo) -> list[str]:
    return [tensor.name, tensor.dtype, _shape(tensor.shape)]


def _shape(shape: Sequence[int]) -> str:
    """`[?, 28, 28]`: ? for a dimension of any size (-1 in the proto); a scalar has none."""
    if not shape:
        return "scalar"
    return "[" + ", ".join("?" if size == -1 else str(size) for size in shape) + "]"
