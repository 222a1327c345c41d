"""Assembles the model server: models, data plane, gRPC server, health and reflection."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from tensorflow_serving.apis import (
    model_service_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
)

from services.common.decoding import RequestDecoding
from services.common.layers import Layered
from services.common.listen import NO_PORT_SHARING, ListenError, add_grpc_port, refuse_port_in_use
from services.common.shutdown import ShutdownGate
from services.generated.modelserver.config.v1 import server_files_pb2
from services.modelserver.batching import BatchingOptions
from services.modelserver.config import (
    load_model_definitions,
    read_session_config_file,
    read_text_proto,
)
from services.modelserver.config_reload import ConfigReloader, allowed_roots
from services.modelserver.dataplane import DataPlane
from services.modelserver.errors import StartupError
from services.modelserver.manager import ModelManager
from services.modelserver.model_slot import ModelsUnavailableError
from services.modelserver.monitoring import DEFAULT_PATH as DEFAULT_METRICS_PATH
from services.modelserver.monitoring import ServingMetrics
from services.modelserver.rest import RestApi, RestOptions, start_rest_api
from services.modelserver.servable import session_config
from services.modelserver.servicers import ModelServicer, PredictionServicer
from services.modelserver.settings import ModelServerSettings
from services.modelserver.warmup import load_and_warm_up

logger = logging.getLogger(__name__)

# tensorflow_model_server accepts messages up to 2 GiB each way (SetMaxMessageSize(kint32max)).
MAX_MESSAGE_BYTES = 2**31 - 1
OVERALL_HEALTH = ""

_PREDICTION_SERVICE = prediction_service_pb2.DESCRIPTOR.services_by_name[
    "PredictionService"
].full_name
_MODEL_SERVICE = model_service_pb2.DESCRIPTOR.services_by_name["ModelService"].full_name


@dataclass
class ModelServerHandle:
    """A running model server: its bound port, its model manager, and how to stop it."""

    port: int
    manager: ModelManager
    server: grpc.aio.Server
    health: health_aio.HealthServicer
    executor: ThreadPoolExecutor
    metrics: ServingMetrics
    gate: ShutdownGate
    rest_port: int | None = None  # None: the REST API is off
    _rest: web.AppRunner | None = field(default=None, repr=False)
    _config_poller: asyncio.Task[None] | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    async def stop(self, grace: float | None = None) -> None:
        """Fails health checks, refuses new calls and stops polling; lets the calls in flight
        finish within `grace` seconds (None or 0: cancels them at once)."""
        if self._stopped:
            return
        self._stopped = True
        await self.health.enter_graceful_shutdown()
        self.gate.close()
        if self._config_poller is not None:
            self._config_poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._config_poller
        await self.manager.stop()
        if self._rest is not None:
            await self._rest.shutdown()
        grace = await self.gate.wait_for_calls(grace)
        await self.server.stop(grace)
        if self._rest is not None:
            await self._rest.cleanup()
        # Computations already running finish in their threads; don't block the loop meanwhile.
        await asyncio.to_thread(self.executor.shutdown, wait=True, cancel_futures=True)
        logger.info("Model server on port %d stopped", self.port)


async def start_model_server(settings: ModelServerSettings) -> ModelServerHandle:
    """Loads the configured models and serves them; returns once the server is listening.

    Returns only once every configured model has a version serving, as TensorFlow Serving
    listens only then; waits for a model without versions for as long as it has none. Raises
    StartupError for a bad config, a port that cannot be bound, or a model whose newest version
    fails to load. A model that loses its last version later is reported NOT_SERVING by the
    health service.
    """
    definitions = load_model_definitions(settings)
    batching = BatchingOptions.from_file(settings.batching_parameters_file)
    gate = ShutdownGate("model server")
    server = grpc.aio.server(options=channel_options(settings.grpc_channel_arguments))
    # Each method wrapped in the layers once, as its service registers, not on every call.
    layered = Layered(server, [gate, RequestDecoding()])
    try:
        # Both ports are bound only once the models have loaded, as tensorflow_model_server
        # binds them: refuse a busy one now, not minutes later.
        refuse_port_in_use("--port", settings.host, settings.port)
        refuse_port_in_use("--rest_api_port", settings.host, settings.rest_api_port)
    except ListenError as exc:
        raise StartupError(str(exc)) from exc

    health_servicer = health_aio.HealthServicer()
    health_reporter = _HealthReporter(health_servicer, [d.name for d in definitions])
    await health_reporter.report_nothing_loaded()
    manager = ModelManager(
        definitions,
        poll_wait_seconds=settings.file_system_poll_wait_seconds,
        max_num_load_retries=settings.max_num_load_retries,
        load_retry_interval_seconds=settings.load_retry_interval_micros / 1e6,
        loader=functools.partial(
            load_and_warm_up,
            config=session_config(
                settings.tensorflow_intra_op_parallelism,
                settings.tensorflow_inter_op_parallelism,
                read_session_config_file(settings.tensorflow_session_config_file),
            ),
            enable_warmup=settings.enable_model_warmup,
        ),
        on_availability_change=health_reporter.report,
    )
    executor = ThreadPoolExecutor(thread_name_prefix="modelserver-predict")
    metrics = ServingMetrics()
    dataplane = DataPlane(
        manager,
        executor,
        metrics,
        batching if settings.enable_batching else None,
        check_method_names=settings.enable_signature_method_name_check,
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(dataplane), layered
    )
    reloader = ConfigReloader(
        manager,
        settings.allow_version_labels_for_unavailable_models,
        allowed_roots(settings.allowed_roots(), definitions),
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelServicer(dataplane, reloader), layered
    )
    services = [_PREDICTION_SERVICE, _MODEL_SERVICE, reflection.SERVICE_NAME]
    if settings.enable_grpc_healthcheck_service:
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, layered)
        services.append(health.SERVICE_NAME)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        reflection.aio.ReflectionServicer(services),  # type: ignore[attr-defined]
        layered,
    )

    handle = ModelServerHandle(
        settings.port, manager, server, health_servicer, executor, metrics, gate
    )
    try:
        # Like tensorflow_model_server, wait until every model serves and only then listen:
        # a model without versions keeps the port closed, however long that takes.
        await manager.start()
        try:
            await manager.wait_until_all_available()
        except ModelsUnavailableError as exc:
            raise StartupError(str(exc)) from exc
        try:
            handle.port = add_grpc_port(server, "--port", settings.host, settings.port)
        except ListenError as exc:
            raise StartupError(str(exc)) from exc
        if settings.grpc_socket_path:
            _listen_on_socket(server, settings.grpc_socket_path)
        await server.start()
        if settings.model_config_file and settings.model_config_file_poll_wait_seconds > 0:
            handle._config_poller = asyncio.create_task(
                reloader.poll_file(
                    settings.model_config_file, settings.model_config_file_poll_wait_seconds
                ),
                name="model config poller",
            )
        if settings.rest_api_port:
            rest = RestApi(dataplane, metrics, _rest_options(settings))
            handle._rest, handle.rest_port = await start_rest_api(
                rest, settings.host.strip("[]"), settings.rest_api_port
            )
    except BaseException:
        await handle.stop(None)
        raise
    logger.info("Serving models %s on port %d", manager.model_names, handle.port)
    if handle.rest_port is not None:
        logger.info("Exporting HTTP/REST API at:localhost:%d ...", handle.rest_port)
    return handle


def _rest_options(settings: ModelServerSettings) -> RestOptions:
    metrics_path = None
    if settings.monitoring_config_file:
        config = read_text_proto(
            "monitoring_config_file",
            settings.monitoring_config_file,
            server_files_pb2.MonitoringConfig(),
        )
        if config.prometheus_config.enable:
            metrics_path = config.prometheus_config.path or DEFAULT_METRICS_PATH
    return RestOptions(
        timeout_s=settings.rest_api_timeout_in_ms / 1000,
        enable_cors=settings.rest_api_enable_cors_support,
        metrics_path=metrics_path,
    )


def channel_options(grpc_channel_arguments: str) -> list[tuple[str, int | str]]:
    """gRPC server options: TensorFlow Serving's message limits and no sharing of the port
    with another server, then --grpc_channel_arguments.

    Like tensorflow_model_server, values that parse as 32-bit integers are passed as integers.
    """
    options: dict[str, int | str] = dict(
        [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            NO_PORT_SHARING,
        ]
    )
    for argument in filter(None, (part.strip() for part in grpc_channel_arguments.split(","))):
        key, separator, value = argument.partition("=")
        if not separator or not key:
            raise StartupError(f"--grpc_channel_arguments: expected key=value, got '{argument}'")
        options[key] = _int32_or_str(value)
    return list(options.items())


def _listen_on_socket(server: grpc.aio.Server, path: str) -> None:
    # A socket file left by an earlier server (or by another one sharing the path, as
    # TensorFlow Serving's own tests do) must not stop this one from starting.
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    try:
        server.add_insecure_port(f"unix:{path}")
    except RuntimeError as exc:
        raise StartupError(f"--grpc_socket_path: cannot listen on {path}: {exc}") from exc


def _int32_or_str(value: str) -> int | str:
    try:
        number = int(value)
    except ValueError:
        return value
    return number if -(2**31) <= number < 2**31 else value


class _HealthReporter:
    """Mirrors model availability into grpc.health.v1: one service per model, and overall
    (the empty name and TensorFlow Serving's two service names)."""

    def __init__(self, servicer: health_aio.HealthServicer, model_names: list[str]) -> None:
        self._servicer = servicer
        self._available = dict.fromkeys(model_names, False)

    async def report_nothing_loaded(self) -> None:
        for name in self._available:
            await self._servicer.set(name, _serving_status(False))
        await self._set_overall(not self._available)

    async def report(self, model_name: str, available: bool | None) -> None:
        """A model's availability changed; None: it left the config."""
        if available is None:
            self._available.pop(model_name, None)
            await self._servicer.set(model_name, _serving_status(False))
        else:
            self._available[model_name] = available
            await self._servicer.set(model_name, _serving_status(available))
        await self._set_overall(all(self._available.values()))

    async def _set_overall(self, serving: bool) -> None:
        for service in (OVERALL_HEALTH, _PREDICTION_SERVICE, _MODEL_SERVICE):
            await self._servicer.set(service, _serving_status(serving))


def _serving_status(serving: bool) -> int:
    if serving:
        return int(health_pb2.HealthCheckResponse.SERVING)
    return int(health_pb2.HealthCheckResponse.NOT_SERVING)
