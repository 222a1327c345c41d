"""Every gateway RPC under closed-loop load, with the model version that answered each call, and
the checks rollout tests make of them: no failures, versions that never go back, whole streams
on one version."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from load import Call, Load, Outcome
from processes import until
from workload import Words, Workload, word_pools

from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from training.series import load_airpassengers_split

# Loose, a bound on a hang rather than a latency target: versions load beside the serving ones
# on the two cores the twelve clients share, and a stream makes 240 model calls.
DEADLINE_S = 30.0
WORKERS_PER_RPC = 2
SWITCH_TIMEOUT_S = 120.0
STREAM_HORIZON = 240  # the longest forecast: a stream is likely in flight at the switch
UNARY_RPCS = ("Classify", "RecognizeDigits", "Forecast", "SimilarWords", "Encode")
STREAM = "StreamForecast"


async def serving_versions(stub: gateway_pb2_grpc.GatewayServiceStub) -> dict[str, int]:
    answer = await stub.ListModels(gateway_pb2.ListModelsRequest(), timeout=10)
    return {model.name: model.serving_version for model in answer.models}


def frequent_words() -> Words:
    """Frequent words of the corpus, which every word2vec profile knows (tests/load/workload.py)."""
    return Words(frequent=word_pools().frequent[:40], rare=(), analogies=())


@dataclass
class Streams:
    """What each forecast stream answered, including the streams that ended in an error."""

    ended_early: list[tuple[grpc.StatusCode, list[int]]]

    def call(self, stub: gateway_pb2_grpc.GatewayServiceStub) -> Call:
        history = load_airpassengers_split().train.tolist()
        request = gateway_pb2.StreamForecastRequest(history=history, horizon=STREAM_HORIZON)

        async def stream(deadline: float) -> list[int]:
            versions: list[int] = []
            try:
                async for point in stub.StreamForecast(request, timeout=deadline):
                    versions.append(point.model.version)
            except grpc.aio.AioRpcError as error:
                self.ended_early.append((error.code(), versions))
                raise
            return versions

        return stream


def unary_calls(stub: gateway_pb2_grpc.GatewayServiceStub, words: Words) -> dict[str, Call]:
    """Each unary RPC with realistic requests, answering the model version that computed it."""
    workload = Workload(words, seed=7)
    requests: dict[str, tuple[Callable[..., Awaitable[object]], Callable[[], object]]] = {
        "Classify": (stub.Classify, workload.classify),
        "RecognizeDigits": (stub.RecognizeDigits, workload.recognize_digits),
        "Forecast": (stub.Forecast, workload.forecast),
        "SimilarWords": (stub.SimilarWords, workload.similar_words),
        "Encode": (stub.Encode, workload.encode),
    }

    def version_of(method: Callable[..., Awaitable[object]], build: Callable[[], object]) -> Call:
        async def call(deadline: float) -> int:
            response = await method(build(), timeout=deadline)
            return int(response.model.version)  # type: ignore[attr-defined]

        return call

    return {rpc: version_of(method, build) for rpc, (method, build) in requests.items()}


def answered_by(outcome: Outcome) -> int | None:
    """The one version that answered the call (a stream's first), None if it failed."""
    if outcome.code != grpc.StatusCode.OK:
        return None
    answer = outcome.answer
    return answer[0] if isinstance(answer, list) else answer  # type: ignore[return-value]


class MixedLoad:
    """Two closed-loop clients per RPC, on every gateway RPC that runs a model."""

    def __init__(self, stub: gateway_pb2_grpc.GatewayServiceStub, words: Words) -> None:
        self.streams = Streams(ended_early=[])
        calls = {**unary_calls(stub, words), STREAM: self.streams.call(stub)}
        self.loads = {
            rpc: Load(call, workers=WORKERS_PER_RPC, deadline_s=DEADLINE_S)
            for rpc, call in calls.items()
        }

    def start(self) -> None:
        for load in self.loads.values():
            load.start()

    async def stop_once_answered_by(self, version: int, since: float) -> dict[str, list[Outcome]]:
        """Stops a second after every RPC has answered a call, started after `since`, from
        `version`; returns each RPC's calls."""

        async def every_rpc_answered() -> bool:
            return all(
                any(o.started > since and answered_by(o) == version for o in load.outcomes)
                for load in self.loads.values()
            )

        try:
            await until(
                every_rpc_answered, f"every RPC is answered by version {version}", SWITCH_TIMEOUT_S
            )
            await asyncio.sleep(1)
        finally:  # no client outlives the test, even a failed one
            outcomes = {rpc: await load.stop() for rpc, load in self.loads.items()}
        return outcomes


def print_outcomes(name: str, outcomes: dict[str, list[Outcome]]) -> None:
    print(f"{name}:")
    for rpc, calls in outcomes.items():
        codes = Counter(o.code.name for o in calls)
        versions = Counter(answered_by(o) for o in calls if o.code == grpc.StatusCode.OK)
        print(f"  {rpc}: {len(calls)} calls, {dict(codes)}, answered by versions {dict(versions)}")


def late_answers_from(calls: list[Outcome], old: int, new: int) -> list[Outcome]:
    """Calls answered by the old version that started after a call answered by the new one
    had ended: once a version switch shows in an answer, it holds for every later call."""
    switched = min((o.ended for o in calls if answered_by(o) == new), default=None)
    assert switched is not None, f"no call was answered by version {new}"
    return [o for o in calls if o.started > switched and answered_by(o) == old]


def check_streams(calls: list[Outcome]) -> None:
    for outcome in calls:
        if outcome.code == grpc.StatusCode.OK:
            versions = outcome.answer
            assert isinstance(versions, list) and len(versions) == STREAM_HORIZON
            assert len(set(versions)) == 1, f"a stream mixed versions {set(versions)}"
