"""Faults under load, with real processes: a model server killed and restarted, a new version
published, a corrupt version published, each while eight clients drive the gateway; a model
server slowed past every deadline while a flood of clients does; a model server and a gateway
stopped with SIGTERM. Each test prints what happened (calls made, failed inside and outside the
fault)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from load import Load, Outcome, failures
from processes import START_S, report, start_gateway, start_model_server, until
from sklearn.datasets import load_wine
from slow_proxy import SlowProxy
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_tensors import tensorflow_tensor

from benchmarks.stack import free_port, memory_mib
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.suite.children import Child
from training.publish import publish_version

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

DEADLINE_S = 2.0
# The longest a call may take: its deadline, and slack for an event loop that a loaded machine
# runs late. A call that outlived its deadline would take as long as the backend holds it.
HUNG_S = DEADLINE_S + 1.5
# How long after the model server is back the gateway may take to answer again: its reconnect
# backoff is at most 1 s, the rest is slack for a loaded machine.
RECOVERY_S = 10.0
# The slow-backend test: calls the gateway admits at once, and the clients flooding it.
ADMITTED = 8
FLOOD = 64
FLOOD_ROUNDS = 3


@dataclass
class Processes:
    repository: Path
    model_server: Child
    model_server_port: int
    gateway: Child
    channel: grpc.aio.Channel

    @property
    def stub(self) -> gateway_pb2_grpc.GatewayServiceStub:
        return gateway_pb2_grpc.GatewayServiceStub(self.channel)


@pytest_asyncio.fixture(loop_scope="session")
async def processes(classifier_repository: Path) -> AsyncIterator[Processes]:
    port = free_port()
    model_server = await asyncio.to_thread(start_model_server, classifier_repository, port)
    gateway = start_gateway(f"localhost:{port}")
    gateway_port = await asyncio.to_thread(gateway.wait_for_port, START_S)
    channel = grpc.aio.insecure_channel(f"localhost:{gateway_port}")
    running = Processes(classifier_repository, model_server, port, gateway, channel)
    await until(lambda: _classify(running.stub, 10), "the gateway serves the classifier")
    yield running
    await channel.close()
    gateway.stop(timeout_s=15)
    running.model_server.stop(timeout_s=15)


def classify_request() -> gateway_pb2.ClassifyRequest:
    request = gateway_pb2.ClassifyRequest()
    request.samples.add().ordered.values.extend(load_wine().data[0].tolist())
    return request


async def _classify(stub: gateway_pb2_grpc.GatewayServiceStub, deadline_s: float) -> int:
    response = await stub.Classify(classify_request(), timeout=deadline_s)
    return int(response.model.version)


async def test_a_killed_model_server_fails_calls_fast_and_the_gateway_recovers_by_itself(
    processes: Processes,
) -> None:
    stub = processes.stub
    health = health_pb2_grpc.HealthStub(processes.channel)
    load = Load(lambda deadline: stub.Classify(classify_request(), timeout=deadline))
    load.start()
    await asyncio.sleep(2)

    killed_at = time.monotonic()
    processes.model_server.kill()

    async def not_serving() -> bool:
        answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        return bool(answer.status == health_pb2.HealthCheckResponse.NOT_SERVING)

    await until(not_serving, "the gateway's health turns NOT_SERVING", timeout_s=10)
    await asyncio.sleep(1)
    processes.model_server = await asyncio.to_thread(
        start_model_server, processes.repository, processes.model_server_port
    )
    back_at = time.monotonic()
    outcomes_so_far = load.outcomes

    async def answered_again() -> bool:
        return any(o.code == grpc.StatusCode.OK and o.started > back_at for o in outcomes_so_far)

    recovered_at = await until(answered_again, "calls succeed again", timeout_s=RECOVERY_S)
    await asyncio.sleep(2)
    outcomes = await load.stop()

    report("model server killed", outcomes, (killed_at, recovered_at))
    print(
        f"  outage {recovered_at - killed_at:.1f} s; calls succeeded again "
        f"{recovered_at - back_at:.2f} s after the model server was back"
    )
    assert max(o.ended - o.started for o in outcomes) < HUNG_S  # no call hung
    failed = failures(outcomes)
    assert failed, "the outage failed no call: the fault did not happen"
    assert {o.code for o in failed} == {grpc.StatusCode.UNAVAILABLE}
    assert not [o for o in failed if o.ended < killed_at or o.started > recovered_at]
    assert recovered_at - back_at < RECOVERY_S


async def test_a_new_version_published_under_load_fails_no_call(processes: Processes) -> None:
    stub = processes.stub
    load = Load(lambda deadline: _classify(stub, deadline))
    load.start()
    await asyncio.sleep(1)
    root = processes.repository / "classifier"
    new = publish_version(
        root, lambda target, _v: shutil.copytree(root / "1", target, dirs_exist_ok=True)
    ).version

    async def switched() -> bool:
        return await _classify(stub, 5) == new

    await until(switched, f"version {new} answers")
    await asyncio.sleep(1)
    outcomes = await load.stop()

    report("new version published", outcomes)
    assert not failures(outcomes)
    versions = [o.answer for o in outcomes]
    assert versions[0] == 1 and versions[-1] == new
    assert set(versions) == {1, new}


async def test_a_corrupt_version_is_reported_and_the_previous_one_keeps_serving(
    processes: Processes,
) -> None:
    stub = processes.stub
    serving = await _classify(stub, 5)
    load = Load(lambda deadline: _classify(stub, deadline))
    load.start()
    await asyncio.sleep(1)
    root = processes.repository / "classifier"

    def corrupt(target: Path, _version: int) -> None:
        shutil.copytree(root / str(serving), target, dirs_exist_ok=True)
        (target / "saved_model.pb").write_bytes(b"this is not a SavedModel")

    broken = publish_version(root, corrupt).version
    async with grpc.aio.insecure_channel(f"localhost:{processes.model_server_port}") as channel:
        models = model_service_pb2_grpc.ModelServiceStub(channel)
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "classifier"

        async def statuses() -> dict[int, Any]:
            response = await models.GetModelStatus(request, timeout=5)
            return {s.version: s for s in response.model_version_status}

        async def reported() -> bool:
            status = (await statuses()).get(broken)
            return status is not None and status.status.error_code != 0

        await until(reported, f"version {broken} is reported broken")
        status = (await statuses())[broken]
    await asyncio.sleep(1)
    outcomes = await load.stop()

    report("corrupt version published", outcomes)
    assert status.status.error_message
    assert not failures(outcomes)
    assert {o.answer for o in outcomes} == {serving}


async def test_a_slow_model_server_sheds_load_keeps_deadlines_and_memory(
    classifier_repository: Path,
) -> None:
    port = free_port()
    model_server = await asyncio.to_thread(start_model_server, classifier_repository, port)
    proxy = SlowProxy(port)
    await proxy.start()
    gateway = start_gateway(f"localhost:{proxy.port}", f"--max_concurrent_rpcs={ADMITTED}")
    try:
        gateway_port = await asyncio.to_thread(gateway.wait_for_port, START_S)
        async with grpc.aio.insecure_channel(f"localhost:{gateway_port}") as channel:
            stub = gateway_pb2_grpc.GatewayServiceStub(channel)
            await until(lambda: _classify(stub, 10), "the gateway serves the classifier")
            before = memory_mib(gateway.pid, "VmRSS")

            proxy.delay_s = 5.0  # every answer now comes 5 s late: past HUNG_S and every deadline
            outcomes = []
            for _ in range(FLOOD_ROUNDS):
                load = Load(lambda deadline: _classify(stub, deadline), workers=FLOOD)
                load.start()
                await asyncio.sleep(1.5)
                outcomes += await load.stop()
            after = memory_mib(gateway.pid, "VmRSS")

            proxy.delay_s = 0.0
            await until(lambda: _classify(stub, 10), "the gateway answers again", timeout_s=15)
    finally:
        gateway.stop(timeout_s=15)
        await proxy.close()
        model_server.stop(timeout_s=15)

    codes = Counter(outcome.code for outcome in outcomes)
    shed = [o for o in outcomes if o.code == grpc.StatusCode.RESOURCE_EXHAUSTED]
    print(
        f"slow model server: {len(outcomes)} calls, "
        + ", ".join(f"{code.name} {count}" for code, count in codes.items())
        + f"; gateway RSS {before:.0f} -> {after:.0f} MiB"
    )
    assert set(codes) <= {
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNAVAILABLE,
    }
    assert codes[grpc.StatusCode.OK] == 0
    assert len(shed) > len(outcomes) / 2  # most of the flood was refused, not queued
    # Refused at once, not after a wait for a slot: far sooner than the deadline.
    assert statistics.median(o.ended - o.started for o in shed) < DEADLINE_S / 4
    assert max(o.ended - o.started for o in outcomes) < HUNG_S
    assert after - before < 30, f"RSS grew from {before:.0f} to {after:.0f} MiB"


async def stopped_under_load(child: Child, load: Load) -> list[Outcome]:
    """Sends SIGTERM to the child a second into the load and checks how the calls ended: all
    succeeded before the signal, then they are refused with UNAVAILABLE; the child exits 0.

    gRPC's core cancels the calls that had reached the server but not its handlers when it
    shuts down (grpc/grpc#41785): they end CANCELLED, though nothing ran. The gateway refuses
    new calls itself first (services/common/shutdown.py), so only a call that arrives in the
    very moment gRPC stops can still end so.
    """
    load.start()
    await asyncio.sleep(1)
    stopping_at = time.monotonic()
    exit_code = await asyncio.to_thread(child.stop, 15)  # SIGTERM, then waits
    stopped_at = time.monotonic()
    await asyncio.sleep(0.5)
    outcomes = await load.stop()

    report(f"{child.name} SIGTERM", outcomes, (stopping_at, stopped_at))
    codes = Counter(o.code for o in failures(outcomes))
    print("  failed: " + ", ".join(f"{code.name} {count}" for code, count in codes.items()))
    assert exit_code == 0
    before = [o for o in outcomes if o.ended < stopping_at]
    assert before and not failures(before)
    assert set(codes) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    cancelled = [o for o in outcomes if o.code == grpc.StatusCode.CANCELLED]
    assert all(stopping_at - 1 < o.started < stopped_at for o in cancelled)
    assert len(cancelled) <= len(outcomes) / 100
    return outcomes


async def test_a_model_server_dies_of_sigterm_at_once_as_tensorflow_serving_does(
    classifier_repository: Path,
) -> None:
    """tensorflow_model_server has no SIGTERM handler, and neither has the stand-in: the calls
    in flight fail and the process is gone at once. The rolling restart in test_rollouts.py
    shows that the gateway hides this from its clients."""
    port = free_port()
    model_server = await asyncio.to_thread(start_model_server, classifier_repository, port)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "classifier"
    request.inputs["features"].CopyFrom(tensorflow_tensor(load_wine().data[:1].astype(np.float32)))
    async with grpc.aio.insecure_channel(f"localhost:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        load = Load(lambda deadline: stub.Predict(request, timeout=deadline))
        load.start()
        await asyncio.sleep(1)
        signalled_at = time.monotonic()
        exit_code = await asyncio.to_thread(model_server.stop, 15)  # SIGTERM, then waits
        died_in_s = time.monotonic() - signalled_at
        await asyncio.sleep(0.5)
        outcomes = await load.stop()

    report("model server SIGTERM", outcomes, (signalled_at, signalled_at + died_in_s))
    print(f"  died {died_in_s:.2f} s after the signal")
    assert exit_code == -signal.SIGTERM
    before = [o for o in outcomes if o.ended < signalled_at]
    assert before and not failures(before)
    after = [o for o in outcomes if o.started > signalled_at + died_in_s]
    assert after and {o.code for o in after} == {grpc.StatusCode.UNAVAILABLE}


async def test_a_gateway_stopped_under_load_answers_its_calls_and_refuses_new_ones(
    processes: Processes,
) -> None:
    stub = processes.stub
    await stopped_under_load(
        processes.gateway,
        Load(lambda deadline: stub.Classify(classify_request(), timeout=deadline)),
    )
