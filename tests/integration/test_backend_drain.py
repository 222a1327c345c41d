"""Retry throttling leaves the retries a rolling restart needs: while one of two model servers
drains (it refuses new calls with UNAVAILABLE before it stops), the calls it refuses are retried
on the other one, and no call fails. Real model servers serving TensorFlow Serving's
half_plus_two, and the gateway's own model server client, under closed-loop load."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from tf_serving_testdata import copy_model, needs_testdata

from services.gateway import errors
from services.gateway.backend import ModelServerClient
from services.gateway.domain import Deadline
from services.gateway.metrics import GatewayMetrics
from services.modelserver.server import ModelServerHandle, start_model_server
from services.modelserver.settings import ModelServerSettings

pytestmark = [needs_testdata, pytest.mark.asyncio(loop_scope="session")]

WORKERS = 8
X = np.array([[1.0], [2.0]], np.float32)


async def model_server(base_path: Path, port: int = 0) -> ModelServerHandle:
    return await start_model_server(
        ModelServerSettings(
            port=port,
            model_name="half_plus_two",
            model_base_path=str(base_path),
            file_system_poll_wait_seconds=0,
        )
    )


async def test_a_replica_draining_under_load_fails_no_call(tmp_path: Path) -> None:
    base_path = copy_model("saved_model_half_plus_two_cpu", tmp_path / "half_plus_two")
    servers = [await model_server(base_path), await model_server(base_path)]
    target = "ipv4:" + ",".join(f"127.0.0.1:{server.port}" for server in servers)
    client = ModelServerClient(target, max_message_bytes=2**20, metrics=GatewayMetrics())
    outcomes: Counter[str] = Counter()
    running = True

    async def worker() -> None:
        while running:
            try:
                await client.predict(
                    "half_plus_two", 123, "serving_default", {"x": X}, Deadline.after(5)
                )
                outcomes["OK"] += 1
            except errors.GatewayError as exc:
                outcomes[type(exc).__name__] += 1

    workers = [asyncio.create_task(worker()) for _ in range(WORKERS)]
    try:
        await asyncio.sleep(1)
        for index in range(len(servers)):
            port = servers[index].port
            await servers[index].stop(5)  # drains, as on SIGTERM
            await asyncio.sleep(0.5)  # the other one serves alone meanwhile
            servers[index] = await model_server(base_path, port)
            await asyncio.sleep(1)
    finally:
        running = False
        await asyncio.gather(*workers)
        await client.close()
        for server in servers:
            await server.stop(0)
    print(f"two model servers drained in turn under load: {dict(outcomes)}")
    assert set(outcomes) == {"OK"}, outcomes
