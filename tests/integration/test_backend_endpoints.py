"""The gateway's calls follow the DNS answer for the model server target, as the endpoints of a
headless Service change: a replica that leaves the answer gets no new call after the gateway's
next refresh, the calls already on it finish, one that joins gets calls from that refresh on,
and the retries still carry a replica that dies afterwards.

A fake answer stands in for DNS (it gives each address its own port, so that the replicas can
share this host); the model servers are real, serving TensorFlow Serving's half_plus_two, and
the calls go through the gateway's own model server client."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from method_proxy import MethodProxy
from tf_serving_testdata import copy_model, needs_testdata

from services.gateway import errors
from services.gateway.backend import ModelServerClient
from services.gateway.domain import Deadline
from services.gateway.metrics import GatewayMetrics
from services.modelserver.monitoring import ServingMetrics
from services.modelserver.server import ModelServerHandle, start_model_server
from services.modelserver.settings import ModelServerSettings

pytestmark = [needs_testdata, pytest.mark.asyncio(loop_scope="session")]

NAME = "tfserving.test"
MODEL = "half_plus_two"
X = np.array([[1.0], [2.0]], np.float32)
HELD_S = 2.0


class FakeDns:
    """What the resolver answers for NAME: the (ip, port) of every replica."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answer: list[tuple[str, int]] = []
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host != NAME:
                return real(host, port, *args, **kwargs)
            if not self.answer:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [
                (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)
                for address in self.answer
            ]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


class CountingProxy(MethodProxy):
    """Counts the Predict calls that reach this replica, and those in flight on it."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.predicts = 0
        self.predicts_in_flight = 0

    async def forward(self, method: str, request: bytes, context: Any) -> bytes:
        if not method.endswith("/Predict"):
            return await super().forward(method, request, context)
        self.predicts += 1
        self.predicts_in_flight += 1
        try:
            return await super().forward(method, request, context)
        finally:
            self.predicts_in_flight -= 1


async def model_server(base_path: Path) -> ModelServerHandle:
    return await start_model_server(
        ModelServerSettings(
            port=0,
            model_name=MODEL,
            model_base_path=str(base_path),
            file_system_poll_wait_seconds=0,
        )
    )


def served(server: ModelServerHandle) -> int:
    return server.metrics.counters.value(ServingMetrics.REQUEST_COUNT, MODEL, "OK")


async def until(check: Any, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(0.01)


async def test_calls_follow_the_dns_answer_and_finish_on_a_replica_that_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_path = copy_model("saved_model_half_plus_two_cpu", tmp_path / MODEL)
    leaving, staying, joining = [await model_server(base_path) for _ in range(3)]
    proxy = CountingProxy(f"127.0.0.1:{leaving.port}")
    await proxy.start()
    dns = FakeDns(monkeypatch)
    dns.answer = [("127.0.0.1", proxy.port), ("127.0.0.1", staying.port)]
    client = ModelServerClient(
        f"dns:///{NAME}:8500", max_message_bytes=2**20, metrics=GatewayMetrics()
    )

    async def call() -> float:
        await client.predict(MODEL, 123, "serving_default", {"x": X}, Deadline.after(10))
        return time.monotonic()

    async def calls_until(check: Any, what: str) -> None:
        """Calls in turn until `check` holds (round robin uses a replica once it is connected)."""
        for _ in range(200):
            if check():
                return
            await call()
        raise AssertionError(f"not within 200 calls: {what}")

    try:
        await client.refresh_replicas()
        await calls_until(lambda: proxy.predicts > 0 and served(staying) > 0, "both get calls")

        # Calls held on the leaving replica while it leaves the answer.
        proxy.delays["Predict"] = HELD_S
        held = [asyncio.create_task(call()) for _ in range(4)]
        await until(lambda: proxy.predicts_in_flight > 0, "a call is in flight on the replica")
        dns.answer = [("127.0.0.1", staying.port)]
        await client.refresh_replicas()
        switched = time.monotonic()
        arrived = proxy.predicts
        await asyncio.gather(*(call() for _ in range(20)))
        ended = await asyncio.gather(*held)  # none cancelled by the switch
        assert any(end > switched for end in ended), "a held call was in flight at the switch"
        assert proxy.predicts == arrived, "a call reached the replica after it left DNS"

        # Scale-up: a replica that joins the answer gets calls from the next refresh on.
        dns.answer = [("127.0.0.1", staying.port), ("127.0.0.1", joining.port)]
        await client.refresh_replicas()
        await calls_until(lambda: served(joining) > 0, "the replica that joined gets calls")

        # The retry policy holds on the new channel: one replica dies under load, and its
        # calls go to the other one.
        outcomes: Counter[str] = Counter()
        running = True

        async def worker() -> None:
            while running:
                try:
                    await call()
                    outcomes["OK"] += 1
                except errors.GatewayError as exc:
                    outcomes[type(exc).__name__] += 1

        workers = [asyncio.create_task(worker()) for _ in range(8)]
        await asyncio.sleep(0.5)
        await staying.stop(0)
        await asyncio.sleep(0.5)
        running = False
        await asyncio.gather(*workers)
        print(f"one of two replicas stopped under load: {dict(outcomes)}")
        assert set(outcomes) == {"OK"}, outcomes
    finally:
        await client.close()
        await proxy.close()
        for server in (leaving, staying, joining):
            await server.stop(0)
