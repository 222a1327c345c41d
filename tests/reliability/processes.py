"""The model server and the gateway as processes of their own, started the way the fault tests
need them, and the helpers those tests share: polling for a condition, reporting the calls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc
from load import Outcome, during, failures

from services.suite.children import Child
from services.suite.model_config import write_model_config

START_S = 120


def start_model_server(
    repository: Path, port: int, models: Sequence[str] = ("classifier",), poll_s: float = 0.2
) -> Child:
    """A model server for `models` of the repository, polling it for versions every `poll_s`;
    returns once it listens."""
    config = write_model_config(repository, models)
    child = Child(
        "modelserver",
        "services.modelserver",
        [
            f"--port={port}",
            f"--model_config_file={config}",
            f"--file_system_poll_wait_seconds={poll_s}",
            "--enable_grpc_healthcheck_service",
            # A version that fails to load is reported at once, not after TensorFlow Serving's
            # default five retries a minute apart.
            "--max_num_load_retries=0",
        ],
    )
    child.wait_for_port(START_S)
    return child


def start_gateway(model_server: str, *flags: str) -> Child:
    """A gateway in front of the model server target; `wait_for_port` gives its port."""
    return Child(
        "gateway",
        "services.gateway",
        [
            "--port=0",
            f"--model_server={model_server}",
            "--metrics_port=0",
            "--model_refresh_s=0.2",
            "--log_level=WARNING",
            *flags,
        ],
    )


async def until(check: Callable[[], object], what: str, timeout_s: float = 30) -> float:
    """Polls an async check until it returns truthy without raising; returns when it did."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if await check():  # type: ignore[misc]
                return time.monotonic()
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def report(name: str, outcomes: list[Outcome], window: tuple[float, float] | None = None) -> str:
    """Prints and returns how many calls were made and failed, inside and outside the window."""
    failed = failures(outcomes)
    inside = during(failed, *window) if window else []
    line = (
        f"{name}: {len(outcomes)} calls, {len(failed)} failed "
        f"({len(inside)} inside the fault window, {len(failed) - len(inside)} outside)"
    )
    print(line)
    return line
