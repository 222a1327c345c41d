"""gateway.v1.GatewayService: decode the request, call the domain core, encode the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc

from services.gateway.backend import ModelServerClient
from services.gateway.catalog import ModelCatalog
from services.gateway.classifier import WineClassifier
from services.gateway.domain import Deadline
from services.gateway.encoder import Encoder
from services.gateway.forecast import Forecaster
from services.gateway.metrics import GatewayMetrics
from services.gateway.recognizer import DigitRecognizer
from services.gateway.transport import converters
from services.gateway.words import WordVectors
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class DomainCores:
    """The domain objects behind the RPCs."""

    backend: ModelServerClient
    catalog: ModelCatalog
    classifier: WineClassifier
    recognizer: DigitRecognizer
    forecaster: Forecaster
    words: WordVectors
    encoder: Encoder
    metrics: GatewayMetrics


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    """Thin adapter: no validation or model logic lives here."""

    def __init__(self, cores: DomainCores, default_timeout_s: float) -> None:
        self._cores = cores
        self._default_timeout_s = default_timeout_s

    async def Classify(
        self, request: gateway_pb2.ClassifyRequest, context: Context
    ) -> gateway_pb2.ClassifyResponse:
        result = await self._cores.classifier.classify(
            converters.wine_samples(request),
            request.model_version or None,
            self._deadline(context),
        )
        with self._cores.metrics.stage(result.model.name, "postprocess"):
            return converters.classify_response(result)

    async def RecognizeDigits(
        self, request: gateway_pb2.RecognizeDigitsRequest, context: Context
    ) -> gateway_pb2.RecognizeDigitsResponse:
        result = await self._cores.recognizer.recognize(
            converters.images(request.images),
            request.model_version or None,
            self._deadline(context),
        )
        with self._cores.metrics.stage(result.model.name, "postprocess"):
            return converters.digits_response(result)

    async def Forecast(
        self, request: gateway_pb2.ForecastRequest, context: Context
    ) -> gateway_pb2.ForecastResponse:
        points = await self._cores.forecaster.forecast_all(
            list(request.history),
            request.horizon,
            converters.method(request.method),
            request.model_version or None,
            self._deadline(context),
        )
        return converters.forecast_response(points)

    async def StreamForecast(
        self, request: gateway_pb2.StreamForecastRequest, context: Context
    ) -> AsyncIterator[gateway_pb2.StreamForecastResponse]:
        async for point in self._cores.forecaster.forecast(
            list(request.history),
            request.horizon,
            converters.method(request.method),
            request.model_version or None,
            self._deadline(context),
        ):
            yield converters.forecast_point(point)

    async def SimilarWords(
        self, request: gateway_pb2.SimilarWordsRequest, context: Context
    ) -> gateway_pb2.SimilarWordsResponse:
        result = await self._cores.words.similar(
            converters.word_query(request),
            request.k,
            request.model_version or None,
            self._deadline(context),
        )
        with self._cores.metrics.stage(result.model.name, "postprocess"):
            return converters.similar_words_response(result)

    async def Encode(
        self, request: gateway_pb2.EncodeRequest, context: Context
    ) -> gateway_pb2.EncodeResponse:
        result = await self._cores.encoder.encode(
            converters.images(request.images),
            [list(vector.values) for vector in request.vectors],
            request.include_reconstruction_error,
            request.model_version or None,
            self._deadline(context),
        )
        with self._cores.metrics.stage(result.model.name, "postprocess"):
            return converters.encode_response(result)

    async def ListModels(
        self, request: gateway_pb2.ListModelsRequest, context: Context
    ) -> gateway_pb2.ListModelsResponse:
        states = await self._cores.catalog.states(self._deadline(context))
        return converters.list_models_response(states)

    async def GetModel(
        self, request: gateway_pb2.GetModelRequest, context: Context
    ) -> gateway_pb2.GetModelResponse:
        state, signatures = await self._cores.catalog.describe(
            request.name, self._deadline(context)
        )
        return gateway_pb2.GetModelResponse(model=converters.model_info(state, signatures))

    def _deadline(self, context: Context) -> Deadline:
        """The client's own deadline, or the default one when the client set none."""
        remaining = context.time_remaining()
        if remaining is None:
            return Deadline.after(
                self._default_timeout_s,
                f"the gateway's default deadline of {self._default_timeout_s:g} s "
                "(--backend_timeout_s; the call set none)",
            )
        return Deadline.after(
            remaining, f"the call's deadline ({remaining:.3g} s left when the gateway received it)"
        )
