"""Assembles the model server: models, data plane, gRPC server, health and reflection."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection
from tensorflow_serving.apis import (
    model_service_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
)

from services.modelserver.config import load_model_definitions
from services.modelserver.dataplane import DataPlane
from services.modelserver.errors import StartupError
from services.modelserver.manager import ModelManager
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
    _stopped: bool = field(default=False, repr=False)

    async def stop(self, grace: float | None = None) -> None:
        """Fails health checks, stops polling, lets in-flight calls finish within `grace`."""
        if self._stopped:
            return
        self._stopped = True
        await self.health.enter_graceful_shutdown()
        await self.manager.stop()
        await self.server.stop(grace)
        # Computations already running finish in their threads; don't block the loop meanwhile.
        await asyncio.to_thread(self.executor.shutdown, wait=True, cancel_futures=True)
        logger.info("Model server on port %d stopped", self.port)


async def start_model_server(settings: ModelServerSettings) -> ModelServerHandle:
    """Loads the configured models and serves them; returns once the server is listening.

    Raises StartupError for a bad config or a port that cannot be bound. Models whose versions
    are on disk are served when this returns; a model without versions yet is reported
    NOT_SERVING by the health service until one appears.
    """
    definitions = load_model_definitions(settings)
    server = grpc.aio.server(options=channel_options(settings.grpc_channel_arguments))
    try:
        port = server.add_insecure_port(f"[::]:{settings.port}")
    except RuntimeError as exc:
        raise StartupError(f"--port: cannot listen on port {settings.port}: {exc}") from exc

    health_servicer = health_aio.HealthServicer()
    health_reporter = _HealthReporter(health_servicer, [d.name for d in definitions])
    await health_reporter.report_nothing_loaded()
    manager = ModelManager(
        definitions,
        poll_wait_seconds=settings.file_system_poll_wait_seconds,
        max_num_load_retries=settings.max_num_load_retries,
        load_retry_interval_seconds=settings.load_retry_interval_micros / 1e6,
        loader=load_and_warm_up,
        on_availability_change=health_reporter.report,
    )
    executor = ThreadPoolExecutor(thread_name_prefix="modelserver-predict")
    dataplane = DataPlane(manager, executor)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(dataplane), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(dataplane), server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [_PREDICTION_SERVICE, _MODEL_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME],
        server,
    )

    handle = ModelServerHandle(port, manager, server, health_servicer, executor)
    try:
        # Like tensorflow_model_server, load first and only then accept calls.
        await manager.start()
        await server.start()
    except BaseException:
        await handle.stop(None)
        raise
    logger.info("Serving models %s on port %d", manager.model_names, port)
    return handle


def channel_options(grpc_channel_arguments: str) -> list[tuple[str, int | str]]:
    """gRPC server options: TensorFlow Serving's message limits, then --grpc_channel_arguments.

    Like tensorflow_model_server, values that parse as 32-bit integers are passed as integers.
    """
    options: dict[str, int | str] = {
        "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
        "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    }
    for argument in filter(None, (part.strip() for part in grpc_channel_arguments.split(","))):
        key, separator, value = argument.partition("=")
        if not separator or not key:
            raise StartupError(f"--grpc_channel_arguments: expected key=value, got '{argument}'")
        options[key] = _int32_or_str(value)
    return list(options.items())


def _int32_or_str(value: str) -> int | str:
    try:
        number = int(value)
    except ValueError:
        return value
    return number if -(2**31) <= number < 2**31 else value


class _HealthReporter:
    """Mirrors model availability into grpc.health.v1: one service per model, and overall."""

    def __init__(self, servicer: health_aio.HealthServicer, model_names: list[str]) -> None:
        self._servicer = servicer
        self._available = dict.fromkeys(model_names, False)

    async def report_nothing_loaded(self) -> None:
        for name in self._available:
            await self._servicer.set(name, _serving_status(False))
        await self._servicer.set(OVERALL_HEALTH, _serving_status(not self._available))

    async def report(self, model_name: str, available: bool) -> None:
        self._available[model_name] = available
        await self._servicer.set(model_name, _serving_status(available))
        await self._servicer.set(OVERALL_HEALTH, _serving_status(all(self._available.values())))


def _serving_status(serving: bool) -> int:
    if serving:
        return int(health_pb2.HealthCheckResponse.SERVING)
    return int(health_pb2.HealthCheckResponse.NOT_SERVING)
