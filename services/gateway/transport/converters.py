"""Public API messages (gateway.v1) <-> domain values."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.gateway import errors
from services.gateway.backend import VersionStatus
from services.gateway.catalog import ModelState
from services.gateway.classifier import ClassifyResult, WineSample
from services.gateway.domain import ModelVersion
from services.gateway.encoder import EncodeResult
from services.gateway.forecast import ForecastPoint, Method
from services.gateway.images import ImageInput
from services.gateway.recognizer import DigitsResult
from services.gateway.signatures import Signature, TensorSpec
from services.gateway.words import Analogy, SimilarWordsResult
from services.generated.gateway.v1 import gateway_pb2

_METHODS: dict[int, Method] = {
    gateway_pb2.GENERATION_METHOD_UNSPECIFIED: Method.STATEFUL,
    gateway_pb2.GENERATION_METHOD_STATEFUL: Method.STATEFUL,
    gateway_pb2.GENERATION_METHOD_WINDOW: Method.WINDOW,
}


def wine_samples(request: gateway_pb2.ClassifyRequest) -> list[WineSample]:
    samples = []
    for sample in request.samples:
        form = sample.WhichOneof("features")
        if form == "named":
            samples.append(WineSample(named=dict(sample.named.values)))
        elif form == "ordered":
            samples.append(WineSample(ordered=list(sample.ordered.values)))
        else:
            samples.append(WineSample())
    return samples


def classify_response(result: ClassifyResult) -> gateway_pb2.ClassifyResponse:
    names = result.class_names
    return gateway_pb2.ClassifyResponse(
        classifications=[
            gateway_pb2.Classification(
                class_id=class_id, class_name=names[class_id], probabilities=probabilities
            )
            for class_id, probabilities in zip(
                result.class_ids.tolist(), result.probabilities.tolist(), strict=True
            )
        ],
        class_names=names,
        model=gateway_pb2.ModelVersionRef(name=result.model.name, version=result.model.version),
    )


def model_ref(model: ModelVersion) -> gateway_pb2.ModelVersionRef:
    return gateway_pb2.ModelVersionRef(name=model.name, version=model.version)


def images(messages: Sequence[gateway_pb2.Image]) -> list[ImageInput]:
    inputs = []
    for image in messages:
        form = image.WhichOneof("source")
        if form == "encoded":
            inputs.append(ImageInput(encoded=image.encoded))
        elif form == "raw":
            inputs.append(ImageInput(raw=list(image.raw.values)))
        else:
            inputs.append(ImageInput())
    return inputs


def digits_response(result: DigitsResult) -> gateway_pb2.RecognizeDigitsResponse:
    return gateway_pb2.RecognizeDigitsResponse(
        predictions=[
            gateway_pb2.DigitPrediction(digit=digit, probabilities=probabilities)
            for digit, probabilities in zip(
                result.digits.tolist(), result.probabilities.tolist(), strict=True
            )
        ],
        model=model_ref(result.model),
    )


def method(value: int) -> Method:
    """The generation method named by its enum number."""
    if value not in _METHODS:
        raise errors.InvalidInput("method", f"unknown generation method {value}")
    return _METHODS[value]


def forecast_response(points: Sequence[ForecastPoint]) -> gateway_pb2.ForecastResponse:
    return gateway_pb2.ForecastResponse(
        values=[point.value for point in points],
        model=model_ref(points[0].model) if points else None,
    )


def forecast_point(point: ForecastPoint) -> gateway_pb2.StreamForecastResponse:
    return gateway_pb2.StreamForecastResponse(
        step=point.step, value=point.value, model=model_ref(point.model)
    )


def word_query(request: gateway_pb2.SimilarWordsRequest) -> str | Analogy:
    if request.WhichOneof("query") == "analogy":
        return Analogy(list(request.analogy.positive), list(request.analogy.negative))
    return request.word


def similar_words_response(result: SimilarWordsResult) -> gateway_pb2.SimilarWordsResponse:
    return gateway_pb2.SimilarWordsResponse(
        neighbors=[
            gateway_pb2.Neighbor(word=neighbor.word, score=neighbor.score)
            for neighbor in result.neighbors
        ],
        model=model_ref(result.model),
    )


def encode_response(result: EncodeResult) -> gateway_pb2.EncodeResponse:
    codes = [gateway_pb2.LatentCode(values=code) for code in result.codes.tolist()]
    if result.reconstruction_errors is not None:
        for code, error in zip(codes, result.reconstruction_errors.tolist(), strict=True):
            code.reconstruction_error = error
    return gateway_pb2.EncodeResponse(codes=codes, model=model_ref(result.model))


def list_models_response(states: Sequence[ModelState]) -> gateway_pb2.ListModelsResponse:
    return gateway_pb2.ListModelsResponse(models=[model_info(state) for state in states])


def model_info(state: ModelState, signatures: Sequence[Signature] = ()) -> gateway_pb2.ModelInfo:
    return gateway_pb2.ModelInfo(
        name=state.endpoint.name,
        rpc=state.endpoint.rpc,
        serving_version=state.serving_version or 0,
        versions=[_version_status(v) for v in state.versions],
        signatures=[
            gateway_pb2.SignatureInfo(
                name=signature.name,
                inputs=_tensors(signature.inputs.values()),
                outputs=_tensors(signature.outputs.values()),
            )
            for signature in sorted(signatures, key=lambda s: s.name)
        ],
    )


def _tensors(specs: Iterable[TensorSpec]) -> list[gateway_pb2.TensorInfo]:
    return [
        gateway_pb2.TensorInfo(
            name=spec.name, dtype=spec.dtype, shape=[] if spec.shape is None else spec.shape
        )
        for spec in sorted(specs, key=lambda s: s.name)
    ]


def _version_status(status: VersionStatus) -> gateway_pb2.ModelVersionStatus:
    state_name = f"MODEL_VERSION_STATE_{status.state}"
    names = gateway_pb2.ModelVersionState.keys()
    if state_name not in names:
        state_name = "MODEL_VERSION_STATE_UNSPECIFIED"
    state = gateway_pb2.ModelVersionState.Value(state_name)
    return gateway_pb2.ModelVersionStatus(version=status.version, state=state)
