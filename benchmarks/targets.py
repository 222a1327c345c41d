"""The gateway's targets, as tables: its overhead over the bare proxy, and its footprint."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.footprint import ProcessFootprint
from benchmarks.gateway_overhead import Metric


@dataclass(frozen=True)
class Bound:
    """A limit a measured value must stay under (``at_most``) or reach."""

    limit: float
    at_most: bool

    def met(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return value <= self.limit if self.at_most else value >= self.limit

    def text(self, unit: str) -> str:
        return f"{'≤' if self.at_most else '≥'} {self.limit:g}{unit}"


def at_most(limit: float) -> Bound:
    return Bound(limit, at_most=True)


def at_least(limit: float) -> Bound:
    return Bound(limit, at_most=False)


@dataclass(frozen=True)
class OverheadTarget:
    """A bound on gateway / proxy of one metric at one concurrency."""

    metric: Metric
    concurrency: int
    bound: Bound


# By RPC. CPU per request is judged at saturation, where the CPU a request costs is what
# limits throughput; at one client it also holds the idle process's background work.
OVERHEAD_TARGETS: dict[str, tuple[OverheadTarget, ...]] = {
    "Classify": (
        OverheadTarget("p50_ms", 1, at_most(1.15)),
        OverheadTarget("throughput", 32, at_least(0.9)),
        OverheadTarget("cpu_ms_per_request", 32, at_most(1.3)),
    ),
    "RecognizeDigits": (
        OverheadTarget("p50_ms", 1, at_most(1.3)),
        OverheadTarget("throughput", 32, at_least(0.75)),
        OverheadTarget("cpu_ms_per_request", 32, at_most(2.0)),
    ),
}


@dataclass(frozen=True)
class FootprintTarget:
    label: str
    unit: str
    decimals: int
    value: Callable[[ProcessFootprint], float]
    bound: Bound


def _dependencies_mb(footprint: ProcessFootprint) -> float:
    return footprint.dependencies.megabytes if footprint.dependencies else math.nan


# By process, as ProcessFootprint names it.
FOOTPRINT_TARGETS: dict[str, tuple[FootprintTarget, ...]] = {
    "gateway": (
        FootprintTarget(
            "resident memory once serving five models",
            " MiB",
            0,
            lambda footprint: footprint.rss_after_start_mib,
            at_most(150),
        ),
        FootprintTarget(
            "start until SERVING",
            " s",
            1,
            lambda footprint: footprint.seconds_to_serving,
            at_most(1.0),
        ),
        FootprintTarget(
            "installed size of its own dependencies", " MB", 0, _dependencies_mb, at_most(150)
        ),
    ),
}
