"""Real model servers and gateways on ephemeral ports, started in the test's event loop."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import grpc

from services.gateway.server import GatewayHandle, start_gateway
from services.gateway.settings import GatewaySettings
from services.generated.gateway.v1 import gateway_pb2_grpc
from services.modelserver.server import ModelServerHandle, start_model_server
from services.modelserver.settings import ModelServerSettings
from training.publish import publish_version

POLL_S = 0.2


@dataclass
class Stack:
    """A model server serving `repository/classifier`, a gateway in front and a client stub."""

    repository: Path
    model_server: ModelServerHandle
    gateway: GatewayHandle
    channel: grpc.aio.Channel
    stub: gateway_pb2_grpc.GatewayServiceStub

    async def close(self) -> None:
        await self.channel.close(grace=None)
        await self.gateway.stop(0)
        await self.model_server.stop(0)


async def start_model_server_for(repository: Path, port: int = 0) -> ModelServerHandle:
    return await start_model_server(
        ModelServerSettings(
            port=port,
            model_name="classifier",
            model_base_path=str(repository / "classifier"),
            file_system_poll_wait_seconds=POLL_S,
        )
    )


async def start_stack(repository: Path) -> Stack:
    model_server = await start_model_server_for(repository)
    gateway = await start_gateway(
        GatewaySettings(
            port=0,
            model_server=f"localhost:{model_server.port}",
            model_refresh_s=POLL_S,
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
