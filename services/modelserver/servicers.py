"""gRPC servicers of TensorFlow Serving's API: thin adapters over the data plane."""

from __future__ import annotations

from typing import Any

import grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from services.modelserver.config_reload import ConfigReloader
from services.modelserver.dataplane import DataPlane
from services.modelserver.grpc_errors import translate_errors

Context = grpc.aio.ServicerContext[Any, Any]


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):  # type: ignore[misc]
    """tensorflow.serving.PredictionService."""

    def __init__(self, dataplane: DataPlane) -> None:
        self._dataplane = dataplane

    @translate_errors
    async def Predict(
        self, request: predict_pb2.PredictRequest, context: Context
    ) -> predict_pb2.PredictResponse:
        return await self._dataplane.predict(request)

    @translate_errors
    async def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: Context
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        return self._dataplane.get_model_metadata(request)

    @translate_errors
    async def Classify(
        self, request: classification_pb2.ClassificationRequest, context: Context
    ) -> classification_pb2.ClassificationResponse:
        return await self._dataplane.classify(request)

    @translate_errors
    async def Regress(
        self, request: regression_pb2.RegressionRequest, context: Context
    ) -> regression_pb2.RegressionResponse:
        return await self._dataplane.regress(request)

    @translate_errors
    async def MultiInference(
        self, request: inference_pb2.MultiInferenceRequest, context: Context
    ) -> inference_pb2.MultiInferenceResponse:
        return await self._dataplane.multi_inference(request)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):  # type: ignore[misc]
    """tensorflow.serving.ModelService."""

    def __init__(self, dataplane: DataPlane, reloader: ConfigReloader) -> None:
        self._dataplane = dataplane
        self._reloader = reloader

    @translate_errors
    async def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: Context
    ) -> get_model_status_pb2.GetModelStatusResponse:
        return self._dataplane.get_model_status(request)

    @translate_errors
    async def HandleReloadConfigRequest(
        self, request: model_management_pb2.ReloadConfigRequest, context: Context
    ) -> model_management_pb2.ReloadConfigResponse:
        await self._reloader.apply(request.config)
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = 0  # OK; failures answer with their status instead
        return response
