"""Rollouts and rollbacks of every model under load, with real processes: clients call every
gateway RPC while a new version of all five models is published, and while that version is
withdrawn again. Each test prints the calls made per RPC and how they ended."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from load import Call, Load, Outcome, failures
from processes import START_S, start_gateway, start_model_server, until
from servers import republish
from workload import Words, Workload, candidate_words

from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.suite.children import Child
from services.suite.stack import free_port
from training.jobs import JOBS
from training.publish import withdraw_version
from training.series import load_airpassengers_split

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

# Loose, a bound on a hang rather than a latency target: versions load beside the serving ones
# on the two cores the twelve clients share, and a stream makes 240 model calls.
DEADLINE_S = 30.0
WORKERS_PER_RPC = 2
SWITCH_TIMEOUT_S = 120.0
STREAM_HORIZON = 240  # the longest forecast: a stream is likely in flight at the switch
UNARY_RPCS = ("Classify", "RecognizeDigits", "Forecast", "SimilarWords", "Encode")
STREAM = "StreamForecast"


@dataclass
class Suite:
    repository: Path
    model_server: Child
    gateway: Child
    stub: gateway_pb2_grpc.GatewayServiceStub


@pytest_asyncio.fixture(loop_scope="session")
async def suite(full_repository: Path) -> AsyncIterator[Suite]:
    port = free_port()
    model_server = await asyncio.to_thread(start_model_server, full_repository, port, list(JOBS))
    gateway = start_gateway(f"localhost:{port}")
    try:
        gateway_port = await asyncio.to_thread(gateway.wait_for_port, START_S)
        async with grpc.aio.insecure_channel(f"localhost:{gateway_port}") as channel:
            stub = gateway_pb2_grpc.GatewayServiceStub(channel)
            yield Suite(full_repository, model_server, gateway, stub)
    finally:
        gateway.stop(timeout_s=15)
        model_server.stop(timeout_s=15)


async def serving_versions(stub: gateway_pb2_grpc.GatewayServiceStub) -> dict[str, int]:
    answer = await stub.ListModels(gateway_pb2.ListModelsRequest(), timeout=10)
    return {model.name: model.serving_version for model in answer.models}


async def known_words(stub: gateway_pb2_grpc.GatewayServiceStub) -> Words:
    """Frequent words of the corpus that the served word2vec version has."""
    known = []
    for word in candidate_words().frequent[:40]:
        try:
            await stub.SimilarWords(gateway_pb2.SimilarWordsRequest(word=word, k=3), timeout=10)
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
            continue
        known.append(word)
    assert len(known) >= 10, known
    return Words(frequent=tuple(known), rare=(), analogies=())


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


async def test_a_new_version_of_every_model_published_under_load_fails_no_call(
    suite: Suite,
) -> None:
    assert set((await serving_versions(suite.stub)).values()) == {1}
    load = MixedLoad(suite.stub, await known_words(suite.stub))
    load.start()
    await asyncio.sleep(2)
    published_at = time.monotonic()
    for name in JOBS:
        assert await asyncio.to_thread(republish, suite.repository / name, 1) == 2

    outcomes = await load.stop_once_answered_by(2, published_at)

    print_outcomes("every model's version 2 published", outcomes)
    for rpc, calls in outcomes.items():
        assert not failures(calls), (rpc, Counter(o.code.name for o in failures(calls)))
        assert answered_by(calls[0]) == 1
        assert not late_answers_from(calls, old=1, new=2), rpc
    check_streams(outcomes[STREAM])


async def test_withdrawing_the_serving_version_under_load_falls_back_without_failed_calls(
    suite: Suite,
) -> None:
    for name in JOBS:
        assert await asyncio.to_thread(republish, suite.repository / name, 1) == 2

    async def all_on_version_2() -> bool:
        return set((await serving_versions(suite.stub)).values()) == {2}

    await until(all_on_version_2, "the gateway serves version 2 of every model", SWITCH_TIMEOUT_S)
    load = MixedLoad(suite.stub, await known_words(suite.stub))
    load.start()
    await asyncio.sleep(2)
    withdrawn_at = time.monotonic()
    for name in JOBS:
        await asyncio.to_thread(withdraw_version, suite.repository / name, 2)

    outcomes = await load.stop_once_answered_by(1, withdrawn_at)

    print_outcomes("every model's version 2 withdrawn", outcomes)
    aborted = load.streams.ended_early
    print(f"  streams ended early: {[(code.name, set(versions)) for code, versions in aborted]}")
    for rpc in UNARY_RPCS:
        calls = outcomes[rpc]
        assert not failures(calls), (rpc, Counter(o.code.name for o in failures(calls)))
        assert not late_answers_from(calls, old=2, new=1), rpc
    # A stream on the withdrawn version cannot be finished by another: it ends ABORTED, having
    # sent only values of its own version. Every other stream is whole and on one version.
    assert all(code == grpc.StatusCode.ABORTED for code, _ in aborted)
    assert all(set(versions) <= {2} for _, versions in aborted)
    assert {o.code for o in failures(outcomes[STREAM])} <= {grpc.StatusCode.ABORTED}
    assert not late_answers_from(outcomes[STREAM], old=2, new=1)
    check_streams(outcomes[STREAM])
