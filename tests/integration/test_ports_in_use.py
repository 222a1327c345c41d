"""A server refuses a port that something already listens on: it fails at start with one line
naming the port and exits with status 1, instead of sharing the port (gRPC's SO_REUSEPORT
default), which would split the connections between two processes."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from servers import start_model_server_for

from benchmarks.stack import free_port
from services.gateway.server import GatewayHandle, start_gateway
from services.gateway.settings import GatewaySettings
from services.modelserver.server import ModelServerHandle
from services.suite.model_config import write_model_config

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Time a server that should refuse its port gets to start (the model server imports TensorFlow).
START_TIMEOUT_S = 120


async def start_on_busy_port(module: str, *flags: str) -> tuple[int, list[str]]:
    """Runs `python -m <module> <flags>`; returns its exit status and its stderr lines. One that
    starts listening after all fails the test and is stopped."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *flags,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert process.stdout is not None and process.stderr is not None
    stderr = asyncio.create_task(process.stderr.read())

    async def port_line() -> str | None:
        assert process.stdout is not None
        async for line in process.stdout:
            if b"listening on port" in line:
                return line.decode()
        return None  # it exited

    try:
        listening = await asyncio.wait_for(port_line(), START_TIMEOUT_S)
        assert listening is None, f"{module} {' '.join(flags)} started anyway: {listening}"
        code = await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return code, (await stderr).decode().splitlines()


def errors(lines: list[str], marker: str) -> list[str]:
    return [line for line in lines if marker in line]


@pytest.fixture
def plain_listener() -> Iterator[int]:
    """A port that a plain IPv4 socket listens on, as any other program might."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


@pytest_asyncio.fixture(loop_scope="session")
async def first_gateway() -> AsyncIterator[GatewayHandle]:
    """A gateway holding a gRPC, a health and a metrics port."""
    gateway = await start_gateway(
        GatewaySettings(
            host="localhost",
            port=0,
            metrics_port=0,
            health_port=0,
            model_server=f"localhost:{free_port()}",  # nothing there: not needed here
        )
    )
    yield gateway
    await gateway.stop(0)


@pytest.mark.parametrize("flag", ["port", "metrics_port", "health_port"])
async def test_a_gateway_refuses_a_port_another_gateway_listens_on(
    first_gateway: GatewayHandle, flag: str
) -> None:
    busy = getattr(first_gateway, flag)
    ports = {"port": 0, "metrics_port": 0, "health_port": 0, flag: busy}
    code, stderr = await start_on_busy_port(
        "services.gateway",
        "--host=localhost",
        *(f"--{name}={port}" for name, port in ports.items()),
        f"--model_server=localhost:{first_gateway.port}",
    )
    assert code == 1, stderr
    assert errors(stderr, "error") == [
        f"gateway: error: --{flag}: port {busy} is already in use (localhost); "
        "stop what listens on it or choose another port"
    ]


async def test_a_gateway_refuses_a_port_any_program_listens_on(plain_listener: int) -> None:
    # gRPC binds both 127.0.0.1 and ::1 for "localhost", and reports success if only one of
    # them was free: the gateway must not settle for half of localhost.
    code, stderr = await start_on_busy_port(
        "services.gateway", "--host=localhost", f"--port={plain_listener}", "--metrics_port=0"
    )
    assert code == 1, stderr
    assert errors(stderr, "error") == [
        f"gateway: error: --port: port {plain_listener} is already in use (localhost); "
        "stop what listens on it or choose another port"
    ]


@pytest_asyncio.fixture(loop_scope="session")
async def first_model_server(classifier_repository: Path) -> AsyncIterator[ModelServerHandle]:
    """A model server holding a gRPC and a REST port."""
    server = await start_model_server_for(classifier_repository, rest_api_port=free_port())
    yield server
    await server.stop(0)


@pytest.mark.parametrize("flag", ["port", "rest_api_port"])
async def test_a_model_server_refuses_a_port_another_model_server_listens_on(
    first_model_server: ModelServerHandle, classifier_repository: Path, flag: str
) -> None:
    busy = first_model_server.port if flag == "port" else first_model_server.rest_port
    ports = {"port": 0, "rest_api_port": free_port(), flag: busy}
    config = write_model_config(classifier_repository, ["classifier"])
    code, stderr = await start_on_busy_port(
        "services.modelserver",
        f"--model_config_file={config}",
        *(f"--{name}={port}" for name, port in ports.items()),
    )
    assert code == 1, stderr
    (line,) = errors(stderr, "Failed to start server")
    assert line.endswith(
        f"Failed to start server. Error: --{flag}: port {busy} is already in use (localhost); "
        "stop what listens on it or choose another port"
    ), stderr
    # Refused before loading any model, not once they have all loaded.
    assert not errors(stderr, "Successfully loaded"), stderr
