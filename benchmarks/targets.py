"""The targets, as tables: ratios of two sides measured in alternation (the gateway's overhead
over the bare proxy, batching, generation, similarity), word2vec's quality, and the gateway's
footprint. A ratio target is met only when the ratio of every repetition meets it
(benchmarks.harness.Bound.met_by), not only their median."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.batching import CEILING, OFF, ON
from benchmarks.footprint import ProcessFootprint
from benchmarks.harness import Bound, Metric, at_least, at_most
from benchmarks.similarity import GATEWAY, PEER


@dataclass(frozen=True)
class RatioTarget:
    """A bound on ``of`` / ``to`` of one metric at one concurrency."""

    metric: Metric
    concurrency: int
    bound: Bound
    of: str = "gateway"
    to: str = "proxy"


# By RPC, the gateway over the proxy. CPU per request is judged at saturation, where the CPU a
# request costs is what limits throughput; at one client it also holds the idle process's
# background work.
OVERHEAD_TARGETS: dict[str, tuple[RatioTarget, ...]] = {
    "Classify": (
        RatioTarget("p50_ms", 1, at_most(1.15)),
        RatioTarget("throughput", 32, at_least(0.9)),
        RatioTarget("cpu_ms_per_request", 32, at_most(1.3)),
    ),
    "RecognizeDigits": (
        RatioTarget("p50_ms", 1, at_most(1.3)),
        RatioTarget("throughput", 32, at_least(0.75)),
        RatioTarget("cpu_ms_per_request", 32, at_most(2.0)),
    ),
}

# The model server's batching, CNN Predicts. The batched Predict against the transport's own
# ceiling (GetModelStatus on the same server, in the same alternation), and batching's cost
# to a lone request. (The old "3x batching on / off at 32" target is retired; the report says
# why.)
BATCHING_TARGETS: tuple[RatioTarget, ...] = (
    RatioTarget("throughput", 32, at_least(0.6), of=ON, to=CEILING),
    RatioTarget("p50_ms", 1, at_most(1.2), of=ON, to=OFF),
)

# Forecast generation, horizon 48 (benchmarks.generation.STRATEGIES).
GENERATION_TARGETS: tuple[RatioTarget, ...] = (
    RatioTarget("throughput", 64, at_least(15), of="continuous batching", to="window"),
    RatioTarget("p50_ms", 1, at_most(1.0), of="continuous batching", to="step"),
)

# SimilarWords through the gateway, against gensim behind a one-hop gRPC server.
SIMILARITY_TARGETS: tuple[RatioTarget, ...] = (
    RatioTarget("throughput", 32, at_least(0.5), of=GATEWAY, to=PEER),
)

# word2vec's WordSim-353 Spearman over gensim Word2Vec's on the same corpus, full profile: one
# training run, so one value rather than a spread.
WORD2VEC_SPEARMAN = at_least(1.0)


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
