"""A new forecaster version published while forecasts stream: no stream fails, every stream is
answered by one version from its first value to its last, and new streams use the new version."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from servers import Stack, republish, start_stack

from services.generated.gateway.v1 import gateway_pb2
from training.series import load_airpassengers_split

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROLLOUT_TIMEOUT_S = 60.0


async def test_streams_survive_a_rollout_on_one_version_each(full_repository: Path) -> None:
    stack: Stack = await start_stack(full_repository)
    request = gateway_pb2.StreamForecastRequest(
        history=load_airpassengers_split().train.tolist(), horizon=240
    )
    streamed: list[list[int]] = []  # the versions of each finished stream's values
    failures: list[grpc.aio.AioRpcError] = []
    new_version_streamed = asyncio.Event()
    stop = asyncio.Event()

    async def keep_streaming() -> None:
        while not stop.is_set():
            versions = []
            try:
                async for point in stack.stub.StreamForecast(request, timeout=60):
                    versions.append(point.model.version)
                    await asyncio.sleep(0.002)  # a client reading at its own pace
            except grpc.aio.AioRpcError as exc:
                failures.append(exc)
                continue
            streamed.append(versions)
            if versions[0] == 2:
                new_version_streamed.set()

    try:
        clients = [asyncio.create_task(keep_streaming()) for _ in range(6)]
        await asyncio.sleep(1.0)
        assert await asyncio.to_thread(republish, full_repository / "forecaster", 1) == 2
        await asyncio.wait_for(new_version_streamed.wait(), ROLLOUT_TIMEOUT_S)
        stop.set()
        await asyncio.gather(*clients)
    finally:
        await stack.close()

    assert not failures, [f"{f.code().name}: {f.details()}" for f in failures[:3]]
    assert all(len(versions) == 240 for versions in streamed)
    assert all(len(set(versions)) == 1 for versions in streamed)
    assert {versions[0] for versions in streamed} == {1, 2}
