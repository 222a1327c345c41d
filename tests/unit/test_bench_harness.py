"""The benchmark harness: windows, stability and percentiles, driven by a stand-in call; sides
taking turns in alternating order, and ratios as the median and range of per-repetition ones."""

from __future__ import annotations

import asyncio
import itertools
import math

import pytest

from benchmarks.harness import (
    Alternation,
    Bound,
    Call,
    Measurement,
    Repeated,
    Spread,
    Stability,
    Window,
    alternate,
    at_least,
    at_most,
    measure,
    measure_window,
    orders,
)

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


def _measured(throughput: float, p50_ms: float = 1.0) -> Measurement:
    return Measurement(1, 100, throughput, p50_ms, p50_ms, p50_ms * 2, 1, True, 0)


def test_the_order_of_the_sides_reverses_every_repetition() -> None:
    assert orders(["a", "b"], 4) == [("a", "b"), ("b", "a"), ("a", "b"), ("b", "a")]
    assert orders(("x", "y", "z"), 3) == [("x", "y", "z"), ("z", "y", "x"), ("x", "y", "z")]
    assert orders(["a", "b"], 0) == []


async def test_each_side_gets_one_window_a_repetition_in_alternating_order() -> None:
    # A window's workers keep calls outstanding from its warm-up to its end, and the next
    # window starts only once they have all stopped: a side's turn begins whenever a call
    # starts with none outstanding.
    outstanding = 0
    turns: list[str] = []

    def side(name: str, delay_s: float) -> Call:
        async def call() -> None:
            nonlocal outstanding
            if outstanding == 0:
                turns.append(name)
            outstanding += 1
            await asyncio.sleep(delay_s)
            outstanding -= 1

        return call

    alternation = Alternation(Window(length_s=0.1, warmup_s=0.02), repetitions=3)
    calls = {"a": side("a", 0.001), "b": side("b", 0.01)}
    result = await alternate(calls, 2, alternation)

    assert turns == ["a", "b", "b", "a", "a", "b"]
    assert result.concurrency == 2
    assert {name: len(runs) for name, runs in result.repetitions.items()} == {"a": 3, "b": 3}
    assert all(m.windows == 1 and m.requests >= 2 for runs in result.repetitions.values()
               for m in runs)  # fmt: skip
    # a's calls are ten times as quick (on a busy machine one repetition may still stall).
    spread = result.ratio("throughput", "a", "b")
    assert spread.median > 1 and spread.low <= spread.median <= spread.high
    assert result.errors("a") == result.errors("b") == 0


def test_a_ratio_is_the_median_of_the_ratios_within_repetitions_with_their_range() -> None:
    # Drift: every side is slower in the second repetition, and b is disturbed in the third.
    repeated = Repeated(
        32,
        {
            "a": (_measured(100), _measured(300), _measured(150)),
            "b": (_measured(50), _measured(100), _measured(100)),
        },
    )
    assert repeated.ratios("throughput", "a", "b") == [2.0, 3.0, 1.5]
    spread = repeated.ratio("throughput", "a", "b")
    assert (spread.median, spread.low, spread.high, spread.repetitions) == (2.0, 1.5, 3.0, 3)
    # Not the ratio of the medians, which would be 150 / 100.
    assert repeated.median("a", "throughput") / repeated.median("b", "throughput") == 1.5
    assert spread.text() == "2.00x (1.50x to 3.00x)"


def test_a_repetition_in_which_a_side_completed_nothing_leaves_no_ratio() -> None:
    repeated = Repeated(
        1, {"a": (_measured(100), _measured(90)), "b": (_measured(50), _measured(0))}
    )
    spread = repeated.ratio("throughput", "a", "b")
    assert math.isnan(spread.median) and math.isnan(spread.low) and math.isnan(spread.high)
    assert spread.text() == "n/a"
    assert not at_least(1.0).met_by(spread) and not at_most(100.0).met_by(spread)
    cpu = Repeated(1, {"a": (_measured(100),), "b": (_measured(100),)})  # CPU was not read
    assert math.isnan(cpu.ratio("cpu_ms_per_request", "a", "b").median)


@pytest.mark.parametrize(
    ("bound", "spread", "met"),
    [
        # At least 15x: the smallest repetition must reach it, whatever the median.
        (at_least(15), Spread(16.0, 15.0, 17.0, 5), True),
        (at_least(15), Spread(16.0, 14.9, 17.0, 5), False),
        (at_least(15), Spread(14.0, 13.0, 15.5, 5), False),
        # At most 1.2x: the largest repetition must stay under it.
        (at_most(1.2), Spread(1.1, 1.0, 1.2, 5), True),
        (at_most(1.2), Spread(1.1, 1.0, 1.25, 5), False),
        (at_most(1.0), Spread(0.8, 0.7, 0.9, 3), True),
    ],
)
def test_a_target_is_met_only_when_the_whole_range_clears_it(
    bound: Bound, spread: Spread, met: bool
) -> None:
    assert bound.met_by(spread) is met


def test_a_median_that_clears_the_bound_is_not_enough() -> None:
    spread = Spread(median=16.0, low=14.9, high=17.0, repetitions=5)
    assert at_least(15).met(spread.median)
    assert not at_least(15).met_by(spread)
