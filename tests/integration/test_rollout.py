"""A new classifier version published while requests flow is served within seconds, and no
request fails on the way."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from servers import Stack, republish
from sklearn.datasets import load_wine

from services.generated.gateway.v1 import gateway_pb2

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROLLOUT_TIMEOUT_S = 30.0


async def test_new_version_is_served_without_failed_requests(private_stack: Stack) -> None:
    request = gateway_pb2.ClassifyRequest()
    request.samples.add().ordered.values.extend(load_wine().data[0].tolist())
    failures: list[grpc.aio.AioRpcError] = []
    versions: list[int] = []
    stop = asyncio.Event()
    new_version_served = asyncio.Event()

    async def keep_classifying() -> None:
        while not stop.is_set():
            try:
                response = await private_stack.stub.Classify(request, timeout=10)
                versions.append(response.model.version)
                if response.model.version == 2:
                    new_version_served.set()
            except grpc.aio.AioRpcError as exc:
                failures.append(exc)

    clients = [asyncio.create_task(keep_classifying()) for _ in range(4)]
    await asyncio.sleep(0.5)
    root = private_stack.repository / "classifier"
    assert await asyncio.to_thread(republish, root, 1) == 2

    await asyncio.wait_for(new_version_served.wait(), ROLLOUT_TIMEOUT_S)
    await asyncio.sleep(1.0)  # keep going while the model server unloads version 1
    stop.set()
    await asyncio.gather(*clients)

    assert not failures, [f"{f.code().name}: {f.details()}" for f in failures[:3]]
    assert versions[0] == 1 and versions[-1] == 2
    models = await private_stack.stub.ListModels(gateway_pb2.ListModelsRequest(), timeout=10)
    (classifier,) = [model for model in models.models if model.name == "classifier"]
    assert classifier.serving_version == 2
