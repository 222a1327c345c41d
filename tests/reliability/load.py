"""Closed-loop load on the gateway during a fault: every call's start, end and status code, so a
test can say how many failed inside the fault's window and that none failed outside it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc

Call = Callable[[float], Awaitable[object]]  # takes the deadline in seconds


@dataclass(frozen=True)
class Outcome:
    started: float  # time.monotonic()
    ended: float
    code: grpc.StatusCode
    answer: object = None


@dataclass
class Load:
    """N workers calling in a loop until stopped, each call with its deadline."""

    call: Call
    workers: int = 8
    deadline_s: float = 2.0
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]

    async def stop(self) -> list[Outcome]:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        return self.outcomes

    async def _worker(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                answer = await self.call(self.deadline_s)
                code = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as error:
                answer, code = None, error.code()
            self.outcomes.append(Outcome(started, time.monotonic(), code, answer))
            if code != grpc.StatusCode.OK:
                await asyncio.sleep(0.02)  # a client backs off a little after a failure


def failures(outcomes: list[Outcome]) -> list[Outcome]:
    return [outcome for outcome in outcomes if outcome.code != grpc.StatusCode.OK]


def during(outcomes: list[Outcome], start: float, end: float) -> list[Outcome]:
    """The calls that overlapped the window [start, end]."""
    return [o for o in outcomes if o.ended >= start and o.started <= end]
