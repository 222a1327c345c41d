"""Clients that cancel mid-call or vanish with calls in flight, in rounds, against the gateway
(every RPC that runs a model, streams included) and directly against the model server: neither
may crash (grpc.aio frees a cancelled call's core object under handlers that still read it),
grow its memory, or stop answering."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from tensorflow_tensors import tensorflow_tensor
from workload import Words, Workload

from benchmarks.stack import ServingStack, memory_mib
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from training.series import load_airpassengers_split

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

ROUNDS = 10  # after WARM_UP_ROUNDS
WARM_UP_ROUNDS = 3  # first-use allocations (threads, allocator arenas) don't count
CHANNELS = 8  # per server and round: half cancel their calls, half close with calls in flight
CALLS_PER_CHANNEL = 8
MIN_CANCELLED = 500
STREAM_HORIZON = 240  # far more points than a client reads before it cancels
ROUND_TIMEOUT_S = 120  # bounds a hung server; a round takes a few seconds
MEMORY_SLACK = 0.10  # resident memory may end at most 10 % above where it was after warm-up
# The model server computes a cancelled Predict to its end in a thread of its own, and its RSS
# swings with the tensors its allocator keeps: it climbs by 3 to 5 MiB a round until the
# allocator gives memory back (843 to 886 MiB over 10 rounds when that did not happen, on the
# code before and after a change alike), so 5 % failed runs with no leak. Memory is read a
# moment after each round, and compared as the median of the warm-up rounds against the median
# of as many last rounds, so that one round's swing is not taken for growth. 10 % still fails
# a leak of 140 KiB per cancelled Predict, less than one request's 64 digits (196 KiB).
SETTLE_S = 0.3

Start = Callable[[grpc.aio.Channel], grpc.aio.Call]


@dataclass
class Tally:
    """Calls still in flight when their client cancelled them or closed their channel."""

    cancelled: Counter[str] = field(default_factory=Counter)
    vanished: Counter[str] = field(default_factory=Counter)

    def total(self) -> int:
        return sum(self.cancelled.values()) + sum(self.vanished.values())


def gateway_calls(workload: Workload) -> dict[str, Start]:
    history = load_airpassengers_split().train.tolist()
    stream = gateway_pb2.StreamForecastRequest(history=history, horizon=STREAM_HORIZON)

    def stub(channel: grpc.aio.Channel) -> gateway_pb2_grpc.GatewayServiceStub:
        return gateway_pb2_grpc.GatewayServiceStub(channel)

    return {
        "StreamForecast": lambda channel: stub(channel).StreamForecast(stream, timeout=60),
        "Forecast": lambda channel: stub(channel).Forecast(workload.forecast(), timeout=60),
        "RecognizeDigits": lambda channel: stub(channel).RecognizeDigits(
            workload.recognize_digits(), timeout=60
        ),
        "Encode": lambda channel: stub(channel).Encode(workload.encode(), timeout=60),
        "Classify": lambda channel: stub(channel).Classify(workload.classify(), timeout=60),
    }


def predict_calls() -> dict[str, Start]:
    # A batch of 64 digits: long enough in the model server to be cancelled while it runs.
    digits = predict_pb2.PredictRequest()
    digits.model_spec.name = "cnn"
    digits.inputs["images"].CopyFrom(tensorflow_tensor(np.random.rand(64, 28, 28).astype("f4")))

    def predict(channel: grpc.aio.Channel) -> grpc.aio.Call:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            digits, timeout=60
        )

    return {"Predict": predict}


async def cancel_mid_call(call: grpc.aio.Call, chooser: random.Random) -> bool:
    """Reads a stream's first responses, or waits a little for a unary call, then cancels;
    True if the call was still in flight."""
    if isinstance(call, grpc.aio.UnaryStreamCall):
        for _ in range(chooser.randint(1, 3)):
            await call.read()
    else:
        await asyncio.sleep(chooser.uniform(0, 0.02))
    return bool(call.cancel())


async def storm_round(
    target: str, calls: dict[str, Start], tally: Tally, chooser: random.Random
) -> None:
    """One round on a server: CHANNELS clients at once, each starting CALLS_PER_CHANNEL calls;
    half cancel each call, half close their channel while the calls are in flight."""

    async def client(vanishes: bool) -> None:
        channel = grpc.aio.insecure_channel(target)
        started = [
            (rpc, calls[rpc](channel)) for rpc in chooser.choices(list(calls), k=CALLS_PER_CHANNEL)
        ]
        if vanishes:
            await asyncio.sleep(chooser.uniform(0.005, 0.05))
            tally.vanished.update(rpc for rpc, call in started if not call.done())
            await channel.close(grace=None)  # cancels every call in flight
            return
        outcomes = await asyncio.gather(
            *(cancel_mid_call(call, chooser) for _, call in started), return_exceptions=True
        )
        tally.cancelled.update(
            rpc for (rpc, _), hit in zip(started, outcomes, strict=True) if hit is True
        )
        await channel.close(grace=None)

    await asyncio.gather(*(client(vanishes=n % 2 == 1) for n in range(CHANNELS)))


async def storm(
    stack: ServingStack, workload: Workload, rounds: int, memory: list[dict[str, float]]
) -> tuple[Tally, Tally]:
    """Rounds on both servers at once; after each, both must live, and their VmRSS (MiB) is
    appended to ``memory``."""
    gateway, model_server = Tally(), Tally()
    children = {
        "gateway": stack.gateways["default"].child,
        "model server": stack.model_server.child,
    }
    targets = [
        (f"localhost:{stack.gateways['default'].port}", gateway_calls(workload), gateway),
        (f"localhost:{stack.model_server.port}", predict_calls(), model_server),
    ]
    chooser = random.Random(11)
    for _ in range(rounds):
        both = (storm_round(target, calls, tally, chooser) for target, calls, tally in targets)
        await asyncio.wait_for(asyncio.gather(*both), ROUND_TIMEOUT_S)
        await asyncio.sleep(SETTLE_S)
        exits = {name: child.exit_code() for name, child in children.items()}
        assert exits == {"gateway": None, "model server": None}, f"died: {exits}"
        memory.append({name: memory_mib(child.pid, "VmRSS") for name, child in children.items()})
    return gateway, model_server


async def answers(target: str, call: Callable[[grpc.aio.Channel], Awaitable[object]]) -> None:
    """The server is SERVING and answers a good call."""
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        await call(channel)


async def test_a_storm_of_cancelled_and_abandoned_calls_crashes_nothing_and_leaks_nothing(
    deployed: ServingStack,
) -> None:
    workload = Workload(Words(frequent=(), rare=(), analogies=()), seed=3)
    processes = {
        "gateway": deployed.gateways["default"].child,
        "model server": deployed.model_server.child,
    }
    warm_up: list[dict[str, float]] = []
    await storm(deployed, workload, WARM_UP_ROUNDS, warm_up)
    before = {name: statistics.median(m[name] for m in warm_up) for name in processes}
    storming: list[dict[str, float]] = []
    started = time.monotonic()
    gateway, model_server = await storm(deployed, workload, ROUNDS, storming)
    seconds = time.monotonic() - started

    async def classify(channel: grpc.aio.Channel) -> None:
        response = await gateway_pb2_grpc.GatewayServiceStub(channel).Classify(
            workload.classify(), timeout=10
        )
        assert response.classifications

    async def predict(channel: grpc.aio.Channel) -> None:
        response = await predict_calls()["Predict"](channel)
        assert response.outputs  # type: ignore[attr-defined]

    await answers(f"localhost:{deployed.gateways['default'].port}", classify)
    await answers(f"localhost:{deployed.model_server.port}", predict)
    last = storming[-WARM_UP_ROUNDS:]
    after = {name: statistics.median(m[name] for m in last) for name in processes}
    print(
        f"cancel storm: {ROUNDS} rounds in {seconds:.1f} s; gateway: {gateway.total()} calls "
        f"ended by their client ({dict(gateway.cancelled)} cancelled, "
        f"{dict(gateway.vanished)} with their channel); model server: {model_server.total()} "
        f"({dict(model_server.cancelled)} cancelled, {dict(model_server.vanished)} vanished); "
        + ", ".join(f"{name} RSS {before[name]:.0f} -> {after[name]:.0f} MiB" for name in before)
        + f" (medians; each round: {[{k: round(v) for k, v in m.items()} for m in storming]})"
    )
    assert gateway.cancelled["StreamForecast"] + gateway.vanished["StreamForecast"] >= 100
    assert gateway.total() + model_server.total() >= MIN_CANCELLED
    assert model_server.total() >= 100
    for name in before:
        assert after[name] <= before[name] * (1 + MEMORY_SLACK), (
            f"{name} RSS grew from {before[name]:.0f} to {after[name]:.0f} MiB"
        )
