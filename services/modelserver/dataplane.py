"""The model server's API behind the transport: Predict, GetModelMetadata, GetModelStatus.

Requests and responses are TensorFlow Serving's own messages; failures are domain errors
(errors.py) with TensorFlow Serving's messages. Model execution runs on a worker thread pool
so the event loop keeps answering while TensorFlow computes.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
)

from services.modelserver.errors import InvalidArgumentError, NotFoundError
from services.modelserver.manager import ModelManager, VersionStatus
from services.modelserver.predict import resolve_signature_name, run_predict
from services.modelserver.servable import Servable

SIGNATURE_DEF_FIELD = "signature_def"


class DataPlane:
    """Answers the API calls from the versions the manager serves."""

    def __init__(self, manager: ModelManager, executor: Executor) -> None:
        self._manager = manager
        self._executor = executor

    async def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        model_spec = _required_model_spec(request)
        servable = self._servable_for(model_spec)
        signature_name = resolve_signature_name(model_spec.signature_name)
        outputs = await asyncio.get_running_loop().run_in_executor(
            self._executor,
            run_predict,
            servable,
            signature_name,
            request.inputs,
            list(request.output_filter),
        )
        response = predict_pb2.PredictResponse(outputs=outputs)
        response.model_spec.name = model_spec.name
        response.model_spec.signature_name = signature_name
        response.model_spec.version.value = servable.version
        return response

    def get_model_metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        model_spec = _required_model_spec(request)
        if not request.metadata_field:
            raise InvalidArgumentError(
                "GetModelMetadataRequest must specify at least one metadata_field"
            )
        for metadata_field in request.metadata_field:
            if metadata_field != SIGNATURE_DEF_FIELD:
                raise InvalidArgumentError(f"Metadata field {metadata_field} is not supported")
        servable = self._servable_for(model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.metadata[SIGNATURE_DEF_FIELD].Pack(servable.signature_def_map)
        return response

    def get_model_status(
        self, request: get_model_status_pb2.GetModelStatusRequest
    ) -> get_model_status_pb2.GetModelStatusResponse:
        model_spec = _required_model_spec(request)
        name = model_spec.name
        statuses = self._manager.version_statuses(name)
        # Like TensorFlow Serving, a version_label is not resolved here: it lists all versions.
        if model_spec.HasField("version"):
            version = model_spec.version.value
            if version not in statuses:
                raise NotFoundError(f"Could not find version {version} of model {name}")
            statuses = {version: statuses[version]}
        elif not statuses:
            raise NotFoundError(f"Could not find any versions of model {name}")
        response = get_model_status_pb2.GetModelStatusResponse()
        for version, status in statuses.items():
            _add_version_status(response, version, status)
        return response

    def _servable_for(self, model_spec: model_pb2.ModelSpec) -> Servable:
        if not model_spec.name:
            raise InvalidArgumentError("ModelSpec has no name specified.")
        choice = model_spec.WhichOneof("version_choice")
        request = self._manager.resolve(
            model_spec.name,
            version=model_spec.version.value if choice == "version" else None,
            version_label=model_spec.version_label if choice == "version_label" else None,
        )
        return self._manager.servable(request)


def _required_model_spec(
    request: (
        predict_pb2.PredictRequest
        | get_model_metadata_pb2.GetModelMetadataRequest
        | get_model_status_pb2.GetModelStatusRequest
    ),
) -> model_pb2.ModelSpec:
    if not request.HasField("model_spec"):
        raise InvalidArgumentError("Missing ModelSpec")
    return request.model_spec


def _add_version_status(
    response: get_model_status_pb2.GetModelStatusResponse, version: int, status: VersionStatus
) -> None:
    entry = response.model_version_status.add()
    entry.version = version
    entry.state = int(status.state)
    entry.status.error_code = status.error_code
    entry.status.error_message = status.error_message
