"""Closed-loop load at a fixed concurrency, measured in windows, and sides compared in turns.

N workers each keep one request outstanding (as Triton's perf_analyzer does in its concurrency
mode). Latencies are recorded per window. `measure` goes on until the last windows agree on
throughput and median latency within a tolerance, or after a maximum number of windows, and the
report says which. `measure_window` measures one window of a fixed length, for comparisons
repeated side by side, where each side must get the same time. A window (and the warm-up) lasts
until every worker could finish a request: at least N of them, so calls slower than the window
length are still measured.

`alternate` is how every comparison is measured: the sides (say A and B) each get one window of
a fixed length per repetition, in an order that reverses from one repetition to the next (A B,
B A, A B, ...), so that a machine drifting during the run weighs on every side alike. A ratio
of two sides is taken within each repetition; `Spread` reports the median of those ratios and
their range, and a bound is met only when the whole range clears it (`Bound.met_by`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Call = Callable[[], Awaitable[object]]
# What a ratio of two sides can be taken of.
Metric = Literal["throughput", "p50_ms", "p99_ms", "cpu_ms_per_request"]


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
    # CPU time of the process under test per request completed, where it was read.
    cpu_ms_per_request: float | None = None


@dataclass(frozen=True)
class Stability:
    window_s: float = 2.0
    stable_windows: int = 3  # how many consecutive windows must agree
    tolerance: float = 0.10  # relative spread allowed in throughput and p50
    max_windows: int = 10
    warmup_s: float = 1.0
    # A window waits this long at most for its N requests, then ends with what it has.
    max_window_s: float = 120.0


@dataclass(frozen=True)
class Window:
    """One window of a fixed length after a warm-up."""

    length_s: float = 10.0
    warmup_s: float = 1.0
    max_length_s: float = 120.0  # as Stability.max_window_s


async def measure(call: Call, concurrency: int, stability: Stability = Stability()) -> Measurement:
    """Drives ``call`` with ``concurrency`` requests outstanding until the numbers settle."""
    load = _ClosedLoop(call, concurrency, stability.max_window_s)
    try:
        await load.window(stability.warmup_s)
        windows: list[_Recorded] = []
        while len(windows) < stability.max_windows:
            windows.append(await load.window(stability.window_s))
            if len(windows) >= stability.stable_windows and _agree(
                windows[-stability.stable_windows :], stability.tolerance
            ):
                break
    finally:
        await load.stop()
    recent = windows[-stability.stable_windows :]
    stable = len(recent) == stability.stable_windows and _agree(recent, stability.tolerance)
    return _summary(concurrency, recent, len(windows), stable, load.errors)


async def measure_window(
    call: Call,
    concurrency: int,
    window: Window = Window(),
    cpu_seconds: Callable[[], float] | None = None,
) -> Measurement:
    """Drives ``call`` with ``concurrency`` requests outstanding for one window after a warm-up.
    ``cpu_seconds``, the CPU time used so far by the process under test, is read as the window
    starts and ends, for its CPU time per request."""
    load = _ClosedLoop(call, concurrency, window.max_length_s)
    try:
        await load.window(window.warmup_s)
        cpu_before = cpu_seconds() if cpu_seconds else 0.0
        recorded = await load.window(window.length_s)
        cpu_used = cpu_seconds() - cpu_before if cpu_seconds else None
    finally:
        await load.stop()
    measurement = _summary(concurrency, [recorded], 1, True, load.errors)
    if cpu_used is None or not recorded[1]:
        return measurement
    return dataclasses.replace(measurement, cpu_ms_per_request=cpu_used * 1000 / len(recorded[1]))


@dataclass(frozen=True)
class Alternation:
    """How the sides of a comparison take turns: one window each per repetition."""

    window: Window = Window(length_s=3.0)
    repetitions: int = 5


def orders(sides: Sequence[str], repetitions: int) -> list[tuple[str, ...]]:
    """The sides' order in each repetition: as listed, then reversed, and so on."""
    forward = tuple(sides)
    return [forward if repetition % 2 == 0 else forward[::-1] for repetition in range(repetitions)]


@dataclass(frozen=True)
class Spread:
    """A ratio measured in repetitions: the median of the per-repetition ratios, and the
    smallest and largest of them. NaN throughout where any repetition has no ratio (a side
    that completed nothing): such a ratio proves nothing."""

    median: float
    low: float
    high: float
    repetitions: int

    @classmethod
    def of(cls, ratios: Sequence[float]) -> Spread:
        if not ratios or any(math.isnan(ratio) for ratio in ratios):
            return cls(math.nan, math.nan, math.nan, len(ratios))
        return cls(statistics.median(ratios), min(ratios), max(ratios), len(ratios))

    def text(self, decimals: int = 2) -> str:
        """The median, then the range over the repetitions: "1.20x (1.10x to 1.31x)"."""
        if math.isnan(self.median):
            return "n/a"
        low, high = f"{self.low:.{decimals}f}", f"{self.high:.{decimals}f}"
        return f"{self.median:.{decimals}f}x ({low}x to {high}x)"


@dataclass(frozen=True)
class Bound:
    """A limit a measured value must stay under (``at_most``) or reach."""

    limit: float
    at_most: bool

    def met(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return value <= self.limit if self.at_most else value >= self.limit

    def met_by(self, spread: Spread) -> bool:
        """Met only when every repetition's ratio meets it: the largest one for a bound to stay
        under, the smallest for one to reach."""
        return self.met(spread.high if self.at_most else spread.low)

    def text(self, unit: str) -> str:
        return f"{'≤' if self.at_most else '≥'} {self.limit:g}{unit}"


def at_most(limit: float) -> Bound:
    return Bound(limit, at_most=True)


def at_least(limit: float) -> Bound:
    return Bound(limit, at_most=False)


@dataclass(frozen=True)
class Repeated:
    """Each side's windows at one concurrency, one per repetition, in the repetitions' order."""

    concurrency: int
    repetitions: Mapping[str, tuple[Measurement, ...]]

    def median(self, side: str, metric: Metric) -> float:
        return statistics.median(value(m, metric) for m in self.repetitions[side])

    def ratios(self, metric: Metric, of: str, to: str) -> list[float]:
        """``of``'s value over ``to``'s, within each repetition."""
        pairs = zip(self.repetitions[of], self.repetitions[to], strict=True)
        return [_quotient(value(a, metric), value(b, metric)) for a, b in pairs]

    def ratio(self, metric: Metric, of: str, to: str) -> Spread:
        return Spread.of(self.ratios(metric, of, to))

    def errors(self, side: str) -> int:
        return sum(m.errors for m in self.repetitions[side])


async def alternate(
    calls: Mapping[str, Call],
    concurrency: int,
    alternation: Alternation,
    cpu_clocks: Mapping[str, Callable[[], float]] | None = None,
) -> Repeated:
    """Each side of ``calls`` (in its order) driven for one window per repetition, the
    repetitions taking turns in the order of `orders`. ``cpu_clocks`` reads, for the sides
    that have one, the CPU time of the process under test."""
    clocks = cpu_clocks or {}
    measured: dict[str, list[Measurement]] = {side: [] for side in calls}
    for order in orders(list(calls), alternation.repetitions):
        for side in order:
            measured[side].append(
                await measure_window(calls[side], concurrency, alternation.window, clocks.get(side))
            )
    return Repeated(concurrency, {side: tuple(runs) for side, runs in measured.items()})


def value(measurement: Measurement, metric: Metric) -> float:
    """A measurement's metric, NaN where it was not read."""
    read = getattr(measurement, metric)
    return math.nan if read is None else float(read)


def _quotient(numerator: float, denominator: float) -> float:
    """NaN where a side completed nothing, rather than no report at all."""
    return numerator / denominator if denominator else math.nan


_Recorded = tuple[float, list[float]]  # a window's throughput, and its latencies in seconds


class _ClosedLoop:
    """``concurrency`` workers, each keeping one ``call`` outstanding, from construction until
    ``stop``; ``window`` collects the latencies of the calls that end within it."""

    def __init__(self, call: Call, concurrency: int, max_window_s: float) -> None:
        self._call = call
        self._concurrency = concurrency
        self._max_window_s = max_window_s
        self.errors = 0
        self._latencies: list[float] = []
        self._stopping = asyncio.Event()
        self._every_worker_done = asyncio.Event()  # the window holds `concurrency` latencies
        self._workers = [asyncio.create_task(self._worker()) for _ in range(concurrency)]

    async def _worker(self) -> None:
        while not self._stopping.is_set():
            started = time.perf_counter()
            try:
                await self._call()
            except Exception:
                self.errors += 1
                continue
            self._latencies.append(time.perf_counter() - started)
            if len(self._latencies) >= self._concurrency:
                self._every_worker_done.set()

    async def window(self, length_s: float) -> _Recorded:
        """The latencies of one window, and its throughput."""
        self._latencies.clear()
        self._every_worker_done.clear()
        started = time.perf_counter()
        await asyncio.sleep(length_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._every_worker_done.wait(), max(self._max_window_s - length_s, 0)
            )
        recorded = list(self._latencies)
        return len(recorded) / (time.perf_counter() - started), recorded

    async def stop(self) -> None:
        self._stopping.set()
        await asyncio.gather(*self._workers, return_exceptions=True)


def _summary(
    concurrency: int, recent: Sequence[_Recorded], windows: int, stable: bool, errors: int
) -> Measurement:
    """Throughput and percentiles over ``recent``, the windows that count."""
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
        windows=windows,
        stable=stable,
        errors=errors,
    )


def _agree(windows: Sequence[_Recorded], tolerance: float) -> bool:
    rates = [rate for rate, _ in windows]
    medians = [float(np.median(window)) if window else float("inf") for _, window in windows]
    return _spread(rates) <= tolerance and _spread(medians) <= tolerance


def _spread(values: list[float]) -> float:
    middle = statistics.fmean(values)
    if not middle or middle == float("inf"):
        return float("inf")
    return (max(values) - min(values)) / middle
