"""Public API messages (gateway.v1) <-> domain values."""

from __future__ import annotations

from collections.abc import Sequence

from services.gateway.backend import VersionStatus
from services.gateway.catalog import ModelState
from services.gateway.classifier import ClassifyResult, WineSample
from services.generated.gateway.v1 import gateway_pb2


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


def list_models_response(states: Sequence[ModelState]) -> gateway_pb2.ListModelsResponse:
    return gateway_pb2.ListModelsResponse(
        models=[
            gateway_pb2.ModelInfo(
                name=state.endpoint.name,
                rpc=state.endpoint.rpc,
                serving_version=state.serving_version or 0,
                versions=[_version_status(v) for v in state.versions],
            )
            for state in states
        ]
    )


def _version_status(status: VersionStatus) -> gateway_pb2.ModelVersionStatus:
    state_name = f"MODEL_VERSION_STATE_{status.state}"
    names = gateway_pb2.ModelVersionState.keys()
    if state_name not in names:
        state_name = "MODEL_VERSION_STATE_UNSPECIFIED"
    state = gateway_pb2.ModelVersionState.Value(state_name)
    return gateway_pb2.ModelVersionStatus(version=status.version, state=state)
