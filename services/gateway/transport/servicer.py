"""gateway.v1.GatewayService: decode the request, call the domain core, encode the answer."""

from __future__ import annotations

from typing import Any

import grpc

from services.gateway.backend import Deadline
from services.gateway.catalog import ModelCatalog
from services.gateway.classifier import WineClassifier
from services.gateway.transport import converters
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    """Thin adapter: no validation or model logic lives here."""

    def __init__(
        self, classifier: WineClassifier, catalog: ModelCatalog, default_timeout_s: float
    ) -> None:
        self._classifier = classifier
        self._catalog = catalog
        self._default_timeout_s = default_timeout_s

    async def Classify(
        self, request: gateway_pb2.ClassifyRequest, context: Context
    ) -> gateway_pb2.ClassifyResponse:
        result = await self._classifier.classify(
            converters.wine_samples(request),
            request.model_version or None,
            self._deadline(context),
        )
        return converters.classify_response(result)

    async def ListModels(
        self, request: gateway_pb2.ListModelsRequest, context: Context
    ) -> gateway_pb2.ListModelsResponse:
        states = await self._catalog.states(self._deadline(context))
        return converters.list_models_response(states)

    def _deadline(self, context: Context) -> Deadline:
        """The client's own deadline, or the default one when the client set none."""
        remaining = context.time_remaining()
        return Deadline.after(self._default_timeout_s if remaining is None else remaining)
