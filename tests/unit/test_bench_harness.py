"""The benchmark harness: windows, stability and percentiles, driven by a stand-in call."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from benchmarks.harness import Stability, Window, measure, measure_window

pytestmark = pytest.mark.asyncio

QUICK = Stability(window_s=0.2, stable_windows=2, tolerance=10.0, max_windows=4, warmup_s=0.05)


async def test_measures_outstanding_requests_and_their_percentiles() -> None:
    outstanding = 0
    most = 0

    async def call() -> None:
        nonlocal outstanding, most
        outstanding += 1
        most = max(most, outstanding)
        await asyncio.sleep(0.002)
        outstanding -= 1

    result = await measure(call, 4, QUICK)
    assert most == 4
    assert result.concurrency == 4
    assert result.requests > 0 and result.errors == 0
    # Each window lasts at least window_s: the rate is over its actual length.
    assert 0 < result.throughput <= result.requests / (2 * QUICK.window_s)
    assert 0 < result.p50_ms <= result.p90_ms <= result.p99_ms
    assert result.stable  # a tolerance this wide always agrees


async def test_failures_are_counted_not_timed() -> None:
    counter = itertools.count()

    async def call() -> None:
        await asyncio.sleep(0.001)
        if next(counter) % 2:
            raise RuntimeError("refused")

    result = await measure(call, 2, QUICK)
    assert result.errors > 0
    assert result.requests > 0


async def test_windows_that_never_agree_are_reported_unstable() -> None:
    strict = Stability(window_s=0.1, stable_windows=2, tolerance=0.0, max_windows=3, warmup_s=0)
    delays = itertools.cycle([0.001, 0.02])

    async def call() -> None:
        await asyncio.sleep(next(delays))

    result = await measure(call, 1, strict)
    assert result.windows == 3
    assert not result.stable


async def test_calls_slower_than_a_window_are_still_measured() -> None:
    async def call() -> None:
        await asyncio.sleep(0.15)  # three times the window

    short = Stability(window_s=0.05, stable_windows=2, tolerance=10.0, max_windows=3, warmup_s=0)
    result = await measure(call, 2, short)
    assert result.requests >= 2 * 2  # each window waited for both workers
    assert 0 < result.throughput <= 2 / 0.15 * 1.5
    assert result.p50_ms >= 150


async def test_one_window_counts_the_cpu_time_read_at_its_edges() -> None:
    cpu_s = 0.0

    async def call() -> None:
        nonlocal cpu_s
        await asyncio.sleep(0.001)
        cpu_s += 0.002  # each call costs the process under test 2 ms, as it ends

    window = Window(length_s=0.2, warmup_s=0.05)
    result = await measure_window(call, 3, window, lambda: cpu_s)
    assert result.windows == 1 and result.requests >= 3
    assert result.cpu_ms_per_request == pytest.approx(2.0)
    assert (await measure_window(call, 1, window)).cpu_ms_per_request is None
