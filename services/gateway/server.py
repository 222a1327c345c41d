"""Assembles the gateway: domain core, gRPC server, health, reflection, background refresh."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection

from services.gateway.backend import ModelServerClient
from services.gateway.catalog import ModelCatalog, ModelEndpoint
from services.gateway.classifier import WineClassifier
from services.gateway.settings import GatewaySettings
from services.gateway.transport.servicer import GatewayServicer
from services.gateway.transport.status import ErrorMappingInterceptor
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name


@dataclass
class GatewayHandle:
    """A running gateway: its bound port and how to stop it."""

    server: grpc.aio.Server
    port: int
    catalog: ModelCatalog
    health: health_aio.HealthServicer
    _backend: ModelServerClient
    _refresher: asyncio.Task[None]

    async def stop(self, grace: float | None = None) -> None:
        """Fails health checks first, then lets in-flight calls finish within `grace`."""
        await self.health.enter_graceful_shutdown()
        self._refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._refresher
        await self.server.stop(grace)
        await self._backend.close()


async def start_gateway(settings: GatewaySettings) -> GatewayHandle:
    """Starts serving on settings.host:settings.port (0 picks a free port)."""
    backend = ModelServerClient(settings.model_server, max_message_bytes=settings.max_message_bytes)
    catalog = ModelCatalog(backend, settings.backend_timeout_s)
    classifier = WineClassifier(
        backend, catalog, settings.classifier_model, settings.max_batch_size
    )
    catalog.add(ModelEndpoint(settings.classifier_model, "Classify", classifier.schemas.get))

    server = grpc.aio.server(
        interceptors=[ErrorMappingInterceptor()],
        options=[
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.max_receive_message_length", settings.max_message_bytes),
        ],
    )
    gateway_pb2_grpc.add_GatewayServiceServicer_to_server(
        GatewayServicer(classifier, catalog, settings.backend_timeout_s), server
    )
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    await server.start()
    refresher = asyncio.create_task(
        _refresh_forever(catalog, health_servicer, settings.model_refresh_s)
    )
    log.info("gateway listening on port %d, model server %s", port, settings.model_server)
    return GatewayHandle(server, port, catalog, health_servicer, backend, refresher)


async def _refresh_forever(
    catalog: ModelCatalog, health_servicer: health_aio.HealthServicer, interval_s: float
) -> None:
    """Follows new model versions; health is SERVING while every model has a version."""
    while True:
        await catalog.refresh_all()
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if catalog.ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", SERVICE_NAME):
            await health_servicer.set(service, status)
        await asyncio.sleep(interval_s)
