"""The model server's API behind the transport: Predict, GetModelMetadata, GetModelStatus.

Requests and responses are TensorFlow Serving's own messages; failures are domain errors
(errors.py) with TensorFlow Serving's messages. Model execution runs on a worker thread pool
so the event loop keeps answering while TensorFlow computes.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import Any

from tensorflow.core.framework import tensor_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    input_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from services.common.bounded import shorten
from services.modelserver.batching import BatchingOptions, BatchingSession
from services.modelserver.errors import InvalidArgumentError, NotFoundError
from services.modelserver.inference import (
    CLASSIFY_METHOD,
    REGRESS_METHOD,
    ExampleRun,
    classification_result,
    prepare_example_run,
    regression_result,
)
from services.modelserver.manager import ModelManager
from services.modelserver.monitoring import UNKNOWN_MODEL_LABEL, ServingMetrics
from services.modelserver.predict import (
    predict_outputs,
    prepare_predict,
    resolve_signature_name,
    run_predict,
    run_session,
)
from services.modelserver.servable import Servable
from services.modelserver.versions import VersionStatus

SIGNATURE_DEF_FIELD = "signature_def"


class DataPlane:
    """Answers the API calls from the versions the manager serves; with batching options, each
    version's model runs go through a BatchingSession of its own."""

    def __init__(
        self,
        manager: ModelManager,
        executor: Executor,
        metrics: ServingMetrics,
        batching: BatchingOptions | None = None,
        check_method_names: bool = False,
    ) -> None:
        self._manager = manager
        self._executor = executor
        self._metrics = metrics
        self._batching = batching
        self._check_method_names = check_method_names

    def _label(self, model_name: str) -> str:
        # The client names the model: only names in the config may become label values, so
        # that a client cannot grow the metrics without bound (TensorFlow Serving labels any).
        return model_name if self._manager.has_model(model_name) else UNKNOWN_MODEL_LABEL

    async def predict(
        self, request: predict_pb2.PredictRequest, entrypoint: str = "GRPC"
    ) -> predict_pb2.PredictResponse:
        model_spec = _required_model_spec(request)
        with self._metrics.request(self._label(model_spec.name), "Predict", entrypoint):
            return await self._predict(model_spec, request)

    async def _predict(
        self, model_spec: model_pb2.ModelSpec, request: predict_pb2.PredictRequest
    ) -> predict_pb2.PredictResponse:
        servable = self._servable_for(model_spec)
        signature_name = resolve_signature_name(model_spec.signature_name)
        loop = asyncio.get_running_loop()
        output_filter = list(request.output_filter)
        if self._batching is None:
            outputs = await loop.run_in_executor(
                self._executor, run_predict, servable, signature_name, request.inputs, output_filter
            )
        else:
            # Cheap (numpy reads the tensors): done here, without a hop to a worker thread.
            prepared = prepare_predict(servable, signature_name, request.inputs, output_filter)
            values = await self._batching_session(servable).run(prepared.feeds, prepared.fetches)
            outputs = predict_outputs(prepared, values)
        return predict_response(model_spec.name, signature_name, servable.version, outputs)

    async def classify(
        self, request: classification_pb2.ClassificationRequest, entrypoint: str = "GRPC"
    ) -> classification_pb2.ClassificationResponse:
        model_spec = _required_model_spec(request)
        with self._metrics.request(self._label(model_spec.name), "Classify", entrypoint):
            servable = self._servable_for(model_spec)
            run, values = await self._run_examples(
                servable, model_spec.signature_name, CLASSIFY_METHOD, request.input
            )
            response = classification_pb2.ClassificationResponse(
                result=classification_result(run, values)
            )
            _answered_by(response.model_spec, servable, run.signature_name)
            return response

    async def regress(
        self, request: regression_pb2.RegressionRequest, entrypoint: str = "GRPC"
    ) -> regression_pb2.RegressionResponse:
        model_spec = _required_model_spec(request)
        with self._metrics.request(self._label(model_spec.name), "Regress", entrypoint):
            servable = self._servable_for(model_spec)
            run, values = await self._run_examples(
                servable, model_spec.signature_name, REGRESS_METHOD, request.input
            )
            response = regression_pb2.RegressionResponse(result=regression_result(run, values))
            _answered_by(response.model_spec, servable, run.signature_name)
            return response

    async def multi_inference(
        self, request: inference_pb2.MultiInferenceRequest
    ) -> inference_pb2.MultiInferenceResponse:
        """Several classify and regress signatures of one model version on the same input."""
        if not request.tasks:
            raise InvalidArgumentError("Found no tasks in MultiInferenceRequest")
        names = {task.model_spec.name for task in request.tasks}
        if len(names) != 1:
            raise InvalidArgumentError(
                "All ModelSpecs in a MultiInferenceRequest must access the same model name."
            )
        seen: set[str] = set()
        for task in request.tasks:
            signature = resolve_signature_name(task.model_spec.signature_name)
            if signature in seen:
                raise InvalidArgumentError(f"Duplicate evaluation of signature: {signature}")
            seen.add(signature)
            if task.method_name not in (CLASSIFY_METHOD, REGRESS_METHOD):
                raise InvalidArgumentError(f"Unsupported signature method_name: {task.method_name}")
        first = request.tasks[0].model_spec
        with self._metrics.request(self._label(first.name), "MultiInference", "GRPC"):
            servable = self._servable_for(first)
            response = inference_pb2.MultiInferenceResponse()
            for task in request.tasks:
                run, values = await self._run_examples(
                    servable, task.model_spec.signature_name, task.method_name, request.input
                )
                result = response.results.add()
                _answered_by(result.model_spec, servable, run.signature_name)
                if task.method_name == CLASSIFY_METHOD:
                    result.classification_result.CopyFrom(classification_result(run, values))
                else:
                    result.regression_result.CopyFrom(regression_result(run, values))
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
                raise NotFoundError(f"Could not find version {version} of model {shorten(name)}")
            statuses = {version: statuses[version]}
        elif not statuses:
            raise NotFoundError(f"Could not find any versions of model {shorten(name)}")
        response = get_model_status_pb2.GetModelStatusResponse()
        for version, status in statuses.items():
            _add_version_status(response, version, status)
        return response

    def signature_inputs(
        self, model_spec: model_pb2.ModelSpec
    ) -> tuple[int, Mapping[str, meta_graph_pb2.TensorInfo]]:
        """The version that would answer, and the inputs of the signature the spec names;
        the REST API reads JSON by them."""
        servable = self._servable_for(model_spec)
        name = resolve_signature_name(model_spec.signature_name)
        signature_def = servable.signature_def_map.signature_def.get(name)
        if signature_def is None:
            raise InvalidArgumentError(
                f'Serving signature name: "{shorten(name)}" not found in signature def'
            )
        return servable.version, signature_def.inputs

    async def _run_examples(
        self,
        servable: Servable,
        signature_name: str,
        method: str,
        request_input: input_pb2.Input,
    ) -> tuple[ExampleRun, list[Any]]:
        run = prepare_example_run(
            servable, signature_name, method, request_input, self._check_method_names
        )
        if self._batching is None:
            values = await asyncio.get_running_loop().run_in_executor(
                self._executor, run_session, servable, run.feeds, run.fetches
            )
        else:
            values = await self._batching_session(servable).run(run.feeds, run.fetches)
        return run, list(values)

    def _batching_session(self, servable: Servable) -> BatchingSession:
        assert self._batching is not None
        if servable.batching_session is None:
            servable.batching_session = BatchingSession(
                functools.partial(run_session, servable),
                self._batching,
                self._executor,
                self._metrics.record_batch,
            )
        session: BatchingSession = servable.batching_session
        return session

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


def predict_response(
    model_name: str,
    signature_name: str,
    version: int,
    outputs: Mapping[str, tensor_pb2.TensorProto],
) -> predict_pb2.PredictResponse:
    """A Predict's answer: its output tensors, and the model spec that computed them."""
    response = predict_pb2.PredictResponse(outputs=outputs)
    response.model_spec.name = model_name
    response.model_spec.signature_name = signature_name
    response.model_spec.version.value = version
    return response


def _answered_by(spec: model_pb2.ModelSpec, servable: Servable, signature_name: str) -> None:
    spec.name = servable.name
    spec.version.value = servable.version
    spec.signature_name = signature_name


def _required_model_spec(
    request: (
        predict_pb2.PredictRequest
        | classification_pb2.ClassificationRequest
        | regression_pb2.RegressionRequest
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
