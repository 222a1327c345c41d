"""Real model servers and gateways on ephemeral ports, started in the test's event loop."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from services.gateway.server import GatewayHandle, start_gateway
from services.gateway.settings import GatewaySettings
from services.generated.gateway.v1 import gateway_pb2_grpc
from services.modelserver.server import ModelServerHandle, start_model_server
from services.modelserver.settings import ModelServerSettings
from services.suite.model_config import write_model_config
from training.publish import publish_version

POLL_S = 0.2


@dataclass
class Stack:
    """A model server serving the repository's models, a gateway in front and a client stub."""

    repository: Path
    model_server: ModelServerHandle
    gateway: GatewayHandle
    channel: grpc.aio.Channel
    stub: gateway_pb2_grpc.GatewayServiceStub

    async def close(self) -> None:
        await self.channel.close(grace=None)
        await self.gateway.stop(0)
        await self.model_server.stop(0)


async def start_model_server_for(
    repository: Path, port: int = 0, **settings: Any
) -> ModelServerHandle:
    """A model server for every model in the repository, from a models.config as in production;
    ``settings`` adds flags (enable_batching=True, ...)."""
    config = _model_config_for(repository)
    return await start_model_server(
        ModelServerSettings(
            port=port,
            model_config_file=str(config),
            file_system_poll_wait_seconds=POLL_S,
            **settings,
        )
    )


def _model_config_for(repository: Path) -> Path:
    names = sorted(path.name for path in repository.iterdir() if path.is_dir())
    return write_model_config(repository, names)


async def start_stack(repository: Path, **model_server_settings: Any) -> Stack:
    model_server = await start_model_server_for(repository, **model_server_settings)
    gateway = await start_gateway(
        GatewaySettings(
            port=0,
            model_server=f"localhost:{model_server.port}",
            model_refresh_s=POLL_S,
            metrics_port=0,
            backend_timeout_s=5.0,
        )
    )
    channel = grpc.aio.insecure_channel(f"localhost:{gateway.port}")
    return Stack(
        repository, model_server, gateway, channel, gateway_pb2_grpc.GatewayServiceStub(channel)
    )


def republish(model_root: Path, version: int) -> int:
    """Publishes a copy of an existing version as the next version; returns its number."""
    return publish_version(
        model_root,
        lambda target, _new: shutil.copytree(model_root / str(version), target, dirs_exist_ok=True),
    ).version
