"""SimilarWords through the gateway, against gensim's KeyedVectors.most_similar on the same
vectors in-process: the peer a user would otherwise pick."""

from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from gensim.models import KeyedVectors

from benchmarks.harness import Measurement, Stability, measure
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from training.publish import latest_version

K = 10
QUERY_WORDS = 200  # the most frequent words of the vocabulary, asked in turn
CONCURRENCY = (1, 32)
GENSIM_REPEATS = 2000


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
    gensim: GensimTiming
    gateway: list[Measurement]
    vocabulary_size: int
    dimensions: int


def read_vectors(models_dir: Path) -> KeyedVectors:
    """The served version's vocabulary and vectors, read from its checkpoint: the one string
    vector is the vocabulary; either [V, D] matrix (raw or unit length) gives the same cosines."""
    version = latest_version(models_dir / "word2vec")
    assert version is not None, "no word2vec version to benchmark"
    checkpoint = models_dir / "word2vec" / str(version) / "variables" / "variables"
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


async def run(models_dir: Path, gateway_port: int, stability: Stability) -> SimilarityResult:
    keyed = read_vectors(models_dir)
    words = list(keyed.index_to_key[:QUERY_WORDS])
    gensim = time_gensim(keyed, words)
    requests = itertools.cycle(gateway_pb2.SimilarWordsRequest(word=w, k=K) for w in words)
    async with grpc.aio.insecure_channel(f"localhost:{gateway_port}") as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        gateway = [
            await measure(lambda: stub.SimilarWords(next(requests), timeout=30), c, stability)
            for c in CONCURRENCY
        ]
    return SimilarityResult(gensim, gateway, len(keyed.index_to_key), keyed.vector_size)
