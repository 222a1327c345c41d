"""SimilarWords through the gateway, against gensim's KeyedVectors.most_similar on the same
vectors behind a minimal one-hop grpc.aio server (benchmarks.similarity_peer), the peer a user
would otherwise deploy: both called by the same client, in the same alternation
(benchmarks.harness.alternate). gensim in-process, with no server at all, is timed beside them
for context. And the served vectors' quality against gensim's, as training measured it."""

from __future__ import annotations

import contextlib
import itertools
import json
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from gensim.models import KeyedVectors

from benchmarks.harness import Alternation, Call, Repeated, alternate
from benchmarks.stack import Started, started_child
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from training.contracts.word2vec import MODEL_NAME
from training.export import METRICS_FILE
from training.publish import latest_version

K = 10
QUERY_WORDS = 200  # the most frequent words of the vocabulary, asked in turn
CONCURRENCY = (1, 32)
GENSIM_REPEATS = 2000
# The sides, as the client calls them: the gateway, and the gensim server.
GATEWAY, PEER = "gateway", "gensim server"


@dataclass(frozen=True)
class GensimTiming:
    p50_ms: float
    p99_ms: float

    @property
    def throughput(self) -> float:
        """Queries per second of one thread asking one query after another."""
        return 1000 / self.p50_ms


@dataclass(frozen=True)
class SimilarityResult:
    gensim: GensimTiming  # in-process, no server: context
    alternation: Alternation
    rows: list[Repeated]  # by concurrency, in the order of CONCURRENCY; sides GATEWAY and PEER
    vocabulary_size: int
    dimensions: int

    def at(self, concurrency: int) -> Repeated | None:
        return next((row for row in self.rows if row.concurrency == concurrency), None)


@dataclass(frozen=True)
class Word2VecQuality:
    """WordSim-353 Spearman of the served version and of gensim's Word2Vec on the same corpus, as
    training scored both (the version's metrics.json)."""

    version: int
    profile: str  # "full" or "quick"
    corpus: str
    spearman: float
    peer_spearman: float

    @property
    def ratio(self) -> float:
        return self.spearman / self.peer_spearman if self.peer_spearman else float("nan")


def word2vec_quality(models_dir: Path) -> Word2VecQuality | None:
    """The served word2vec version's quality, from its metrics.json; None where there is none."""
    version = latest_version(models_dir / MODEL_NAME)
    if version is None:
        return None
    path = models_dir / MODEL_NAME / str(version) / METRICS_FILE
    try:
        metrics: dict[str, Any] = json.loads(path.read_text())
        return Word2VecQuality(
            version=version,
            profile=str(metrics["profile"]),
            corpus=str(metrics.get("corpus", {}).get("name", "")),
            spearman=float(metrics["spearman"]),
            peer_spearman=float(metrics["peer"]["spearman"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_vectors(models_dir: Path) -> KeyedVectors:
    """The served version's vocabulary and vectors, read from its checkpoint: the one string
    vector is the vocabulary; either [V, D] matrix (raw or unit length) gives the same cosines."""
    version = latest_version(models_dir / MODEL_NAME)
    assert version is not None, "no word2vec version to benchmark"
    checkpoint = models_dir / MODEL_NAME / str(version) / "variables" / "variables"
    reader = tf.train.load_checkpoint(str(checkpoint))
    shapes = reader.get_variable_to_shape_map()
    (words_key,) = [name for name, shape in shapes.items() if len(shape) == 1]
    vectors_key = next(name for name, shape in shapes.items() if len(shape) == 2)
    words = [word.decode() for word in reader.get_tensor(words_key)]
    vectors = np.asarray(reader.get_tensor(vectors_key), np.float32)
    keyed = KeyedVectors(vector_size=vectors.shape[1])
    keyed.add_vectors(words, vectors)
    return keyed


def time_gensim(keyed: KeyedVectors, words: list[str]) -> GensimTiming:
    keyed.fill_norms()
    keyed.most_similar(words[0], topn=K)
    times = []
    for word in itertools.islice(itertools.cycle(words), GENSIM_REPEATS):
        started = time.perf_counter()
        keyed.most_similar(word, topn=K)
        times.append((time.perf_counter() - started) * 1000)
    return GensimTiming(statistics.median(times), float(np.percentile(times, 99)))


@contextlib.contextmanager
def started_peer(keyed: KeyedVectors, work_dir: Path) -> Iterator[Started]:
    """benchmarks.similarity_peer in a process of its own, serving ``keyed``, saved for it in
    gensim's own format."""
    vectors = work_dir / "word2vec.kv"
    keyed.save(str(vectors))
    flags = ["--port=0", f"--vectors={vectors}"]
    with started_child("similarity peer", "benchmarks.similarity_peer", flags) as peer:
        yield peer


async def run(
    keyed: KeyedVectors,
    gateway_port: int,
    peer_port: int,
    alternation: Alternation,
    cpu_clocks: Mapping[str, Callable[[], float]] | None = None,
) -> SimilarityResult:
    """The gateway and the gensim server on ``peer_port``, side by side, and gensim in-process;
    ``cpu_clocks``: by side, the CPU time of the servers that answer it."""
    words = list(keyed.index_to_key[:QUERY_WORDS])
    gensim = time_gensim(keyed, words)
    requests = itertools.cycle(gateway_pb2.SimilarWordsRequest(word=w, k=K) for w in words)
    rows = []
    async with (
        grpc.aio.insecure_channel(f"localhost:{gateway_port}") as gateway_channel,
        grpc.aio.insecure_channel(f"localhost:{peer_port}") as peer_channel,
    ):
        # The same stub class for both: the peer answers the gateway's own SimilarWords.
        gateway = gateway_pb2_grpc.GatewayServiceStub(gateway_channel)
        peer = gateway_pb2_grpc.GatewayServiceStub(peer_channel)
        calls: dict[str, Call] = {
            GATEWAY: lambda: gateway.SimilarWords(next(requests), timeout=30),
            PEER: lambda: peer.SimilarWords(next(requests), timeout=30),
        }
        for concurrency in CONCURRENCY:
            rows.append(await alternate(calls, concurrency, alternation, cpu_clocks))
    return SimilarityResult(gensim, alternation, rows, len(keyed.index_to_key), keyed.vector_size)
