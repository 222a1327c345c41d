"""Rollouts and rollbacks of every model under load, with real processes: clients call every
gateway RPC while a new version of all five models is published, and while that version is
withdrawn again, behind one model server and behind two replicas that poll the model repository
on clocks of their own (1 s and 5 s), as TensorFlow Serving replicas in Kubernetes do; and
rolling restarts of replicas that die of SIGTERM, behind fixed addresses and behind a DNS name
whose answer changes as a headless Service's does. Each test prints the calls made per RPC and
how they ended."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from fake_dns import REPLICA_HOSTS, DnsAnswer, Replica, start_gateway_resolving, start_replica
from load import failures
from mixed_load import (
    STREAM,
    SWITCH_TIMEOUT_S,
    UNARY_RPCS,
    MixedLoad,
    answered_by,
    check_streams,
    frequent_words,
    late_answers_from,
    print_outcomes,
    serving_versions,
)
from processes import START_S, start_gateway, start_model_server, until
from servers import republish
from session_training import copy_models

from benchmarks.stack import free_port
from services.generated.gateway.v1 import gateway_pb2_grpc
from services.suite.children import Child
from training.jobs import JOBS
from training.publish import withdraw_version

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

# Seconds between each replica's polls of the repository: one replica, or two that disagree on
# the versions for up to 5 s after every change, 25 of the gateway's refreshes (0.2 s).
FLEETS = {"one model server": (0.2,), "two replicas polling every 1 s and 5 s": (1.0, 5.0)}

# The gateway's refresh behind a DNS name, and the pods' preStop wait scaled as the manifests'
# 20 s wait relates to their 5 s refresh (GATEWAY_MODEL_REFRESH_S). The fake DNS answer changes
# at once: its TTL is 0.
REFRESH_S = 0.5
PRE_STOP_S = 4 * REFRESH_S
DNS_NAME = "tfserving.test"


@dataclass
class Suite:
    repository: Path
    model_servers: list[Child]
    gateway: Child
    stub: gateway_pb2_grpc.GatewayServiceStub

    @property
    def replicated(self) -> bool:
        return len(self.model_servers) > 1


@pytest_asyncio.fixture(
    scope="module", loop_scope="session", params=list(FLEETS.values()), ids=list(FLEETS)
)
async def suite(
    all_models: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Suite]:
    """A fleet and its gateway, shared by the tests that roll its versions forward and back
    (tests/worker_scheduling.py sends them to one worker), on a repository of its own."""
    repository = copy_models(all_models, tmp_path_factory.mktemp("fleet"))
    ports = [free_port() for _ in request.param]
    model_servers = []
    try:
        for port, poll_s in zip(ports, request.param, strict=True):
            model_servers.append(
                await asyncio.to_thread(
                    start_model_server, repository, port, list(JOBS), poll_s=poll_s
                )
            )
        # Round robin over the replicas, as a headless Service's addresses give it.
        gateway = start_gateway("ipv4:" + ",".join(f"127.0.0.1:{port}" for port in ports))
        try:
            gateway_port = await asyncio.to_thread(gateway.wait_for_port, START_S)
            async with grpc.aio.insecure_channel(f"localhost:{gateway_port}") as channel:
                stub = gateway_pb2_grpc.GatewayServiceStub(channel)
                yield Suite(repository, model_servers, gateway, stub)
        finally:
            gateway.stop(timeout_s=15)
    finally:
        for model_server in model_servers:
            model_server.kill()


async def serving_version(suite: Suite) -> int:
    """The one version the gateway serves of every model, once it serves one: the test before
    may have left the fleet still moving to it."""
    versions: set[int] = set()

    async def one_version() -> bool:
        versions.clear()
        versions.update((await serving_versions(suite.stub)).values())
        return len(versions) == 1

    await until(one_version, "the gateway serves one version of every model", SWITCH_TIMEOUT_S)
    return versions.pop()


async def publish_next_version(suite: Suite, serving: int) -> int:
    """Publishes a copy of the serving version of every model as the next version; returns it."""
    published = {
        await asyncio.to_thread(republish, suite.repository / name, serving) for name in JOBS
    }
    (version,) = published
    assert version > serving
    return version


async def test_a_new_version_of_every_model_published_under_load_fails_no_call(
    suite: Suite,
) -> None:
    old = await serving_version(suite)
    load = MixedLoad(suite.stub, frequent_words())
    load.start()
    await asyncio.sleep(2)
    published_at = time.monotonic()
    new = await publish_next_version(suite, old)

    outcomes = await load.stop_once_answered_by(new, published_at)

    print_outcomes(f"every model's version {new} published over {old}", outcomes)
    for rpc, calls in outcomes.items():
        assert not failures(calls), (rpc, Counter(o.code.name for o in failures(calls)))
        assert answered_by(calls[0]) == old
        assert not late_answers_from(calls, old=old, new=new), rpc
    check_streams(outcomes[STREAM])


async def test_withdrawing_the_serving_version_under_load_falls_back_without_failed_calls(
    suite: Suite,
) -> None:
    old = await serving_version(suite)
    new = await publish_next_version(suite, old)

    async def all_on_the_new_version() -> bool:
        return set((await serving_versions(suite.stub)).values()) == {new}

    await until(
        all_on_the_new_version, f"the gateway serves version {new} of every model", SWITCH_TIMEOUT_S
    )
    load = MixedLoad(suite.stub, frequent_words())
    load.start()
    await asyncio.sleep(2)
    withdrawn_at = time.monotonic()
    for name in JOBS:
        await asyncio.to_thread(withdraw_version, suite.repository / name, new)

    outcomes = await load.stop_once_answered_by(old, withdrawn_at)

    print_outcomes(f"every model's version {new} withdrawn, back to {old}", outcomes)
    aborted = load.streams.ended_early
    print(f"  streams ended early: {[(code.name, set(versions)) for code, versions in aborted]}")
    for rpc in UNARY_RPCS:
        calls = outcomes[rpc]
        assert not failures(calls), (rpc, Counter(o.code.name for o in failures(calls)))
        assert not late_answers_from(calls, old=new, new=old), rpc
    # A stream on the withdrawn version goes on on any replica that still holds it. Once none
    # does, no other version may finish what it began: it ends ABORTED, having sent only values
    # of its own version. Every other stream is whole and on one version.
    assert all(code == grpc.StatusCode.ABORTED for code, _ in aborted)
    assert all(set(versions) <= {new} for _, versions in aborted)
    assert {o.code for o in failures(outcomes[STREAM])} <= {grpc.StatusCode.ABORTED}
    assert not late_answers_from(outcomes[STREAM], old=new, new=old)
    check_streams(outcomes[STREAM])


async def test_a_rolling_restart_of_replicas_that_die_of_sigterm_fails_no_call(
    full_repository: Path,
) -> None:
    """Two replicas behind one gateway, each sent SIGTERM in turn (and so dead at once, as
    TensorFlow Serving is) and started again, as a Deployment's rolling update does, under load
    on every RPC: the gateway's retries and round robin carry the unary calls, and every step
    of a stream is a call of its own that any replica holding its version can answer."""
    ports = [free_port(), free_port()]
    model_servers = [
        await asyncio.to_thread(start_model_server, full_repository, port, list(JOBS))
        for port in ports
    ]
    gateway = start_gateway("ipv4:" + ",".join(f"127.0.0.1:{port}" for port in ports))
    exit_codes = []
    try:
        gateway_port = await asyncio.to_thread(gateway.wait_for_port, START_S)
        async with grpc.aio.insecure_channel(f"localhost:{gateway_port}") as channel:
            stub = gateway_pb2_grpc.GatewayServiceStub(channel)
            load = MixedLoad(stub, frequent_words())
            load.start()
            try:
                await asyncio.sleep(2)
                for index, port in enumerate(ports):
                    exit_codes.append(await asyncio.to_thread(model_servers[index].stop, 15))
                    await asyncio.sleep(1)  # the other one serves alone meanwhile
                    model_servers[index] = await asyncio.to_thread(
                        start_model_server, full_repository, port, list(JOBS)
                    )
                    await asyncio.sleep(2)
            finally:
                outcomes = {rpc: await each.stop() for rpc, each in load.loads.items()}
    finally:
        gateway.stop(timeout_s=15)
        for model_server in model_servers:
            model_server.kill()

    print_outcomes("rolling restart of two replicas dying of SIGTERM", outcomes)
    assert exit_codes == [-signal.SIGTERM, -signal.SIGTERM]
    for rpc, calls in outcomes.items():
        assert not failures(calls), (rpc, Counter(o.code.name for o in failures(calls)))
    check_streams(outcomes[STREAM])


@pytest.mark.parametrize(
    "pre_stop_s",
    [PRE_STOP_S, 0.0],
    ids=["a preStop wait outlasting the gateway's refresh", "killed as it leaves the DNS answer"],
)
async def test_a_rolling_restart_behind_dns_kills_replicas_the_gateway_has_already_left(
    full_repository: Path, tmp_path: Path, pre_stop_s: float
) -> None:
    """Two replicas behind a DNS name, each on an address of its own and one port, as pods
    behind a headless Service. Each in turn, as Kubernetes stops a pod: it leaves the DNS
    answer, its preStop wait runs, SIGTERM kills it at once (it has no SIGTERM handler, as
    TensorFlow Serving has none), and a replacement on a new address joins the answer once its
    models have loaded. With the wait, the gateway has left the replica by its next refresh:
    the replica answers no call in the last refresh interval before the kill, is idle when it
    dies, and no call fails. Killed as it leaves the answer, it was still being sent calls."""
    port, rest_port = free_port(), free_port()
    hosts = iter(REPLICA_HOSTS)

    def replica() -> Replica:
        return start_replica(full_repository, next(hosts), port, rest_port, list(JOBS))

    replicas = [await asyncio.to_thread(replica) for _ in range(2)]
    answer = DnsAnswer(tmp_path / "dns-answer")
    answer.set([r.host for r in replicas])
    gateway = start_gateway_resolving(
        DNS_NAME,
        answer,
        f"--model_server=dns:///{DNS_NAME}:{port}",
        f"--model_refresh_s={REFRESH_S}",
    )
    # Calls each replica answered in the refresh interval before its SIGTERM.
    last_interval: list[int] = []
    exit_codes = []

    async def served(replica: Replica) -> int:
        return await asyncio.to_thread(replica.served)

    try:
        gateway_port = await asyncio.to_thread(gateway.wait_for_port, START_S)
        async with grpc.aio.insecure_channel(f"localhost:{gateway_port}") as channel:
            stub = gateway_pb2_grpc.GatewayServiceStub(channel)
            load = MixedLoad(stub, frequent_words())
            load.start()
            try:

                async def both_serve() -> bool:
                    return all([await served(r) > 0 for r in replicas])

                await until(both_serve, "both replicas are sent calls")
                for index in range(len(replicas)):
                    going = replicas[index]
                    staying = [r.host for r in replicas if r is not going]
                    if pre_stop_s:
                        answer.set(staying)  # the endpoints drop the pod; preStop begins
                        await asyncio.sleep(pre_stop_s - REFRESH_S)
                    before = await served(going)
                    await asyncio.sleep(REFRESH_S)
                    if not pre_stop_s:
                        answer.set(staying)
                    last_interval.append(await served(going) - before)
                    exit_codes.append(await asyncio.to_thread(going.process.stop, 15))

                    replacement = await asyncio.to_thread(replica)
                    replicas[index] = replacement
                    answer.set([r.host for r in replicas])

                    async def replacement_serves(replacement: Replica = replacement) -> bool:
                        return await served(replacement) > 0

                    await until(replacement_serves, "the replacement is sent calls")
            finally:
                outcomes = {rpc: await each.stop() for rpc, each in load.loads.items()}
    finally:
        gateway.stop(timeout_s=15)
        for each in replicas:
            each.process.kill()

    print_outcomes(f"rolling restart behind DNS, preStop {pre_stop_s} s", outcomes)
    print(f"  calls each replica answered in the {REFRESH_S} s before its SIGTERM: {last_interval}")
    assert exit_codes == [-signal.SIGTERM, -signal.SIGTERM]
    if not pre_stop_s:
        # The gateway had not refreshed yet: the replica was serving when it died.
        assert all(calls > 0 for calls in last_interval), last_interval
        return
    assert last_interval == [0, 0], "a replica was still sent calls at the end of its preStop"
    for rpc, calls in outcomes.items():
        assert not failures(calls), (rpc, Counter(o.code.name for o in failures(calls)))
    check_streams(outcomes[STREAM])
