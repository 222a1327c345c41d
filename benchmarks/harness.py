"""Closed-loop load at a fixed concurrency, measured in windows until it is stable.

N workers each keep one request outstanding (as Triton's perf_analyzer does in its concurrency
mode). Latencies are recorded per window; measuring stops once the last windows agree on
throughput and median latency within a tolerance, or after a maximum number of windows, and the
report says which. A window (and the warm-up) lasts until every worker could finish a request:
at least N of them, so calls slower than the window length are still measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

Call = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Measurement:
    """Throughput and latency percentiles of the stable windows at one concurrency."""

    concurrency: int
    requests: int
    throughput: float  # requests per second
    p50_ms: float
    p90_ms: float
    p99_ms: float
    windows: int
    stable: bool
    errors: int


@dataclass(frozen=True)
class Stability:
    window_s: float = 2.0
    stable_windows: int = 3  # how many consecutive windows must agree
    tolerance: float = 0.10  # relative spread allowed in throughput and p50
    max_windows: int = 10
    warmup_s: float = 1.0
    # A window waits this long at most for its N requests, then ends with what it has.
    max_window_s: float = 120.0


async def measure(call: Call, concurrency: int, stability: Stability = Stability()) -> Measurement:
    """Drives ``call`` with ``concurrency`` requests outstanding until the numbers settle."""
    latencies: list[float] = []
    errors = 0
    stop = asyncio.Event()
    every_worker_done = asyncio.Event()  # this window holds at least `concurrency` latencies

    async def worker() -> None:
        nonlocal errors
        while not stop.is_set():
            started = time.perf_counter()
            try:
                await call()
            except Exception:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)
            if len(latencies) >= concurrency:
                every_worker_done.set()

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]

    async def window(length_s: float) -> tuple[float, list[float]]:
        """The latencies of one window, and its throughput."""
        latencies.clear()
        every_worker_done.clear()
        started = time.perf_counter()
        await asyncio.sleep(length_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                every_worker_done.wait(), max(stability.max_window_s - length_s, 0)
            )
        recorded = list(latencies)
        return len(recorded) / (time.perf_counter() - started), recorded

    try:
        await window(stability.warmup_s)
        windows: list[tuple[float, list[float]]] = []
        while len(windows) < stability.max_windows:
            windows.append(await window(stability.window_s))
            if len(windows) >= stability.stable_windows and _agree(
                windows[-stability.stable_windows :], stability.tolerance
            ):
                break
    finally:
        stop.set()
        await asyncio.gather(*workers, return_exceptions=True)
    recent = windows[-stability.stable_windows :]
    stable = len(recent) == stability.stable_windows and _agree(recent, stability.tolerance)
    samples = np.array([latency for _, window in recent for latency in window]) * 1000
    if samples.size == 0:
        samples = np.array([float("nan")])
    return Measurement(
        concurrency=concurrency,
        requests=int(sum(len(window) for _, window in recent)),
        throughput=statistics.fmean(rate for rate, _ in recent),
        p50_ms=float(np.percentile(samples, 50)),
        p90_ms=float(np.percentile(samples, 90)),
        p99_ms=float(np.percentile(samples, 99)),
        windows=len(windows),
        stable=stable,
        errors=errors,
    )


def _agree(windows: list[tuple[float, list[float]]], tolerance: float) -> bool:
    rates = [rate for rate, _ in windows]
    medians = [float(np.median(window)) if window else float("inf") for _, window in windows]
    return _spread(rates) <= tolerance and _spread(medians) <= tolerance


def _spread(values: list[float]) -> float:
    middle = statistics.fmean(values)
    if not middle or middle == float("inf"):
        return float("inf")
    return (max(values) - min(values)) / middle
