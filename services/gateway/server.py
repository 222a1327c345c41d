"""Assembles the gateway: domain core, gRPC server, health, reflection, background refresh."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from services.common.decoding import RequestDecoding
from services.common.layers import HandlerLayer, Layered
from services.common.listen import NO_PORT_SHARING, ListenError, add_grpc_port
from services.common.shutdown import ShutdownGate
from services.gateway.backend import ModelServerClient
from services.gateway.catalog import ModelCatalog, ModelEndpoint
from services.gateway.classifier import WineClassifier
from services.gateway.digits import ImageLimits
from services.gateway.encoder import Encoder
from services.gateway.forecast import Forecaster, ForecastLimits
from services.gateway.metrics import GatewayMetrics
from services.gateway.recognizer import DigitRecognizer
from services.gateway.settings import GatewaySettings
from services.gateway.tls import server_credentials
from services.gateway.transport.auth import BearerTokenInterceptor
from services.gateway.transport.rpc_layer import RpcLayer
from services.gateway.transport.servicer import DomainCores, GatewayServicer
from services.gateway.words import WordVectors
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name


@dataclass
class GatewayHandle:
    """A running gateway: its bound port and how to stop it."""

    server: grpc.aio.Server
    port: int
    cores: DomainCores
    health: health_aio.HealthServicer
    metrics: GatewayMetrics
    metrics_port: int
    _metrics_server: WSGIServer
    _refresher: asyncio.Task[None]
    _gate: ShutdownGate
    # The plaintext health-only server (settings.health_port), if any.
    health_server: grpc.aio.Server | None = None
    health_port: int | None = None

    @property
    def catalog(self) -> ModelCatalog:
        return self.cores.catalog

    async def stop(self, grace: float | None = None) -> None:
        """Fails health checks and refuses new calls, lets the calls in flight finish within
        `grace` seconds, then stops gRPC (None or 0: at once, cancelling them)."""
        await self.health.enter_graceful_shutdown()
        self._gate.close()
        self._refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._refresher
        grace = await self._gate.wait_for_calls(grace)
        await self.server.stop(grace)
        if self.health_server is not None:
            await self.health_server.stop(None)
        await self.cores.forecaster.close()
        await self.cores.backend.close()
        self._metrics_server.shutdown()
        self._metrics_server.server_close()


async def start_gateway(settings: GatewaySettings) -> GatewayHandle:
    """Starts serving on settings.host:settings.port (0 picks a free port); raises
    TlsConfigError for certificate files that cannot serve TLS, and ListenError for a port
    that is in use or cannot be bound."""
    credentials = _credentials(settings)
    metrics = GatewayMetrics()
    backend = ModelServerClient(
        settings.model_server, max_message_bytes=settings.max_message_bytes, metrics=metrics
    )
    cores = _domain_cores(settings, backend, metrics)

    gate = ShutdownGate("gateway")
    token = settings.auth_token
    layers = handler_layers(metrics, gate, None if token is None else token.get_secret_value())
    server = grpc.aio.server(
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
        options=[
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            NO_PORT_SHARING,
            *_connection_age_options(settings),
        ],
    )
    # Each method wrapped in the layers once, here, rather than on every call.
    layered = Layered(server, layers)
    gateway_pb2_grpc.add_GatewayServiceServicer_to_server(
        GatewayServicer(cores, settings.backend_timeout_s),
        layered,  # type: ignore[arg-type]
    )
    health_servicer = health_aio.HealthServicer()
    # NOT_SERVING until the first refresh has reached the model server.
    await _set_health(health_servicer, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, layered)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        reflection.aio.ReflectionServicer(  # type: ignore[attr-defined]
            [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME]
        ),
        layered,
    )
    # Every port is bound before any of them serves: one in use fails the start, with nothing
    # left listening.
    bound = [server]
    try:
        port = add_grpc_port(server, "--port", settings.host, settings.port, credentials)
        health_server, health_port = _health_server(settings, health_servicer)
        if health_server is not None:
            bound.append(health_server)
        metrics_server, metrics_port = metrics.serve(settings.host, settings.metrics_port)
    except ListenError:
        for unstarted in bound:
            await unstarted.stop(None)
        await backend.close()
        raise
    await server.start()
    if health_server is not None:
        await health_server.start()
        log.info("health checks in plaintext on port %d", health_port)
    refresher = asyncio.create_task(
        _refresh_forever(cores.catalog, health_servicer, settings.model_refresh_s, metrics)
    )
    log.info(
        "gateway listening on port %d (%s), model server %s",
        port,
        _security_summary(settings),
        settings.model_server,
    )
    return GatewayHandle(
        server,
        port,
        cores,
        health_servicer,
        metrics,
        metrics_port,
        metrics_server,
        refresher,
        gate,
        health_server,
        health_port,
    )


def handler_layers(
    metrics: GatewayMetrics, gate: ShutdownGate, auth_token: str | None
) -> list[HandlerLayer]:
    """The layers around every handler of the gateway, outermost first."""
    # The first layer is the outermost: refused calls are counted and logged too.
    layers: list[HandlerLayer] = [RpcLayer(metrics)]
    if auth_token is not None:
        layers.append(BearerTokenInterceptor(auth_token))
    layers.append(gate)
    # Innermost: a call refused above is refused before its bytes are looked at.
    layers.append(RequestDecoding())
    return layers


def _connection_age_options(settings: GatewaySettings) -> list[tuple[str, int]]:
    """A client connection is asked to go (GOAWAY) once it is max_connection_age_s old, and
    closed when the calls on it have ended or the grace is over. Without it, a client keeps its
    first connection, so gateway pods added by the autoscaler get only new clients."""
    if settings.max_connection_age_s is None:
        return []
    return [
        ("grpc.max_connection_age_ms", round(settings.max_connection_age_s * 1000)),
        ("grpc.max_connection_age_grace_ms", round(settings.max_connection_age_grace_s * 1000)),
    ]


def _health_server(
    settings: GatewaySettings, health_servicer: health_aio.HealthServicer
) -> tuple[grpc.aio.Server | None, int | None]:
    """The same health service on a plaintext port of its own (bound, not yet started), when
    one is asked for: the gateway's own port may need TLS or a token, which probes do not
    carry. It serves nothing else, so it opens no way around either."""
    if settings.health_port is None:
        return None, None
    health_server = grpc.aio.server(options=[NO_PORT_SHARING])
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, health_server)
    health_port = add_grpc_port(health_server, "--health_port", settings.host, settings.health_port)
    return health_server, health_port


def _credentials(settings: GatewaySettings) -> grpc.ServerCredentials | None:
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    return server_credentials(
        settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
    )


def _security_summary(settings: GatewaySettings) -> str:
    if settings.tls_client_ca_file is not None:
        transport = "mutual TLS"
    elif settings.tls_cert_file is not None:
        transport = "TLS"
    else:
        transport = "plaintext"
    token = "bearer token required" if settings.auth_token is not None else "no token"
    return f"{transport}, {token}"


def _domain_cores(
    settings: GatewaySettings, backend: ModelServerClient, metrics: GatewayMetrics
) -> DomainCores:
    """One domain core per model, each registered in the catalog with what a new version of
    its model needs prepared before it serves."""
    catalog = ModelCatalog(backend, settings.backend_timeout_s, settings.unserved_model_note)
    images = ImageLimits(
        settings.max_image_bytes, settings.max_image_pixels, settings.max_request_pixels
    )
    classifier = WineClassifier(
        backend, catalog, settings.classifier_model, settings.max_batch_size, metrics
    )
    recognizer = DigitRecognizer(
        backend, catalog, settings.cnn_model, settings.max_batch_size, images, metrics
    )
    forecaster = Forecaster(
        backend,
        catalog,
        settings.forecaster_model,
        ForecastLimits(settings.max_history, settings.max_horizon),
        settings.max_generation_batch,
        metrics,
    )
    words = WordVectors(backend, catalog, settings.word2vec_model)
    encoder = Encoder(
        backend, catalog, settings.autoencoder_model, settings.max_batch_size, images, metrics
    )
    for endpoint in (
        ModelEndpoint(settings.classifier_model, "Classify", classifier.schemas.get),
        ModelEndpoint(settings.cnn_model, "RecognizeDigits", recognizer.schemas.get),
        ModelEndpoint(settings.forecaster_model, "Forecast", forecaster.schemas.get),
        ModelEndpoint(settings.word2vec_model, "SimilarWords", words.schemas.get),
        ModelEndpoint(settings.autoencoder_model, "Encode", encoder.schemas.get),
    ):
        catalog.add(endpoint)
    return DomainCores(
        backend, catalog, classifier, recognizer, forecaster, words, encoder, metrics
    )


# Health turns NOT_SERVING only after this many refresh rounds in a row reached no replica.
FAILED_REFRESHES_BEFORE_NOT_SERVING = 3


async def _refresh_forever(
    catalog: ModelCatalog,
    health_servicer: health_aio.HealthServicer,
    interval_s: float,
    metrics: GatewayMetrics,
) -> None:
    """Follows new model versions. Health is NOT_SERVING until a model server first answers,
    and again only once refreshes keep failing; models not loaded yet do not hold the others
    back (their RPCs answer UNAVAILABLE meanwhile). Nothing a refresh raises ends this loop."""
    failed_in_a_row = FAILED_REFRESHES_BEFORE_NOT_SERVING
    while True:
        try:
            reachable = await catalog.refresh_all()
        except Exception:
            log.exception("model refresh failed")
            metrics.refresh_failures.labels("unexpected").inc()
            reachable = False
        else:
            if not reachable:
                metrics.refresh_failures.labels("unreachable").inc()
        failed_in_a_row = 0 if reachable else failed_in_a_row + 1
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if failed_in_a_row < FAILED_REFRESHES_BEFORE_NOT_SERVING
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await _set_health(health_servicer, status)
        await asyncio.sleep(interval_s)


async def _set_health(health_servicer: health_aio.HealthServicer, status: int) -> None:
    for service in ("", SERVICE_NAME):
        await health_servicer.set(service, status)
