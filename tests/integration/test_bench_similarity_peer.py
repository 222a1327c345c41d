"""The benchmarks' gensim similarity server, `python -m benchmarks.similarity_peer`, in a process of
its own: it answers the gateway's own SimilarWords with the neighbours gensim's most_similar
finds in the same vectors, fails unknown words and bad requests with the status a client expects,
and leaves every other method unimplemented."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import pytest_asyncio
from gensim.models import KeyedVectors
from status_assertions import expect_exact_status

from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.suite.children import Child

pytestmark = pytest.mark.integration

WORDS = [f"word{index}" for index in range(60)]


@pytest.fixture(scope="module")
def keyed() -> KeyedVectors:
    """Small random vectors, as gensim holds them."""
    vectors = np.random.default_rng(7).standard_normal((len(WORDS), 8)).astype(np.float32)
    keyed = KeyedVectors(vector_size=vectors.shape[1])
    keyed.add_vectors(WORDS, vectors)
    return keyed


@pytest.fixture(scope="module")
def peer_port(keyed: KeyedVectors, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    vectors = tmp_path_factory.mktemp("peer") / "vectors.kv"
    keyed.save(str(vectors))
    peer = Child(
        "similarity peer", "benchmarks.similarity_peer", ["--port=0", f"--vectors={vectors}"]
    )
    try:
        yield peer.wait_for_port(60)
    finally:
        assert peer.stop(timeout_s=10) == 0  # SIGTERM: it stops cleanly


@pytest_asyncio.fixture(loop_scope="session")
async def stub(peer_port: int) -> AsyncIterator[gateway_pb2_grpc.GatewayServiceStub]:
    async with grpc.aio.insecure_channel(f"localhost:{peer_port}") as channel:
        yield gateway_pb2_grpc.GatewayServiceStub(channel)


def neighbours(response: gateway_pb2.SimilarWordsResponse) -> list[tuple[str, float]]:
    return [(neighbour.word, neighbour.score) for neighbour in response.neighbors]


@pytest.mark.parametrize("word", ["word0", "word17", "word59"])
async def test_the_neighbours_of_a_word_are_gensims(
    stub: gateway_pb2_grpc.GatewayServiceStub, keyed: KeyedVectors, word: str
) -> None:
    response = await stub.SimilarWords(gateway_pb2.SimilarWordsRequest(word=word, k=5), timeout=10)
    expected = keyed.most_similar(word, topn=5)
    answered = neighbours(response)
    assert [w for w, _ in answered] == [w for w, _ in expected]
    assert word not in [w for w, _ in answered]  # the query word itself is left out
    np.testing.assert_allclose([s for _, s in answered], [s for _, s in expected], rtol=1e-6)
    assert [s for _, s in answered] == sorted((s for _, s in answered), reverse=True)


async def test_an_analogy_is_gensims_vector_sum(
    stub: gateway_pb2_grpc.GatewayServiceStub, keyed: KeyedVectors
) -> None:
    analogy = gateway_pb2.Analogy(positive=["word1", "word2"], negative=["word3"])
    response = await stub.SimilarWords(
        gateway_pb2.SimilarWordsRequest(analogy=analogy, k=4), timeout=10
    )
    expected = keyed.most_similar(positive=["word1", "word2"], negative=["word3"], topn=4)
    assert [w for w, _ in neighbours(response)] == [w for w, _ in expected]


async def test_an_unknown_word_is_not_found_by_name(
    stub: gateway_pb2_grpc.GatewayServiceStub,
) -> None:
    await expect_exact_status(
        stub.SimilarWords(gateway_pb2.SimilarWordsRequest(word="zebra", k=3), timeout=10),
        grpc.StatusCode.NOT_FOUND,
        "unknown word: 'zebra'",
    )


@pytest.mark.parametrize(
    ("request_", "details"),
    [
        (gateway_pb2.SimilarWordsRequest(word="word0", k=0), "k: must be at least 1"),
        (gateway_pb2.SimilarWordsRequest(k=3), "query: set word or analogy"),
    ],
    ids=["k", "query"],
)
async def test_a_bad_request_is_an_invalid_argument(
    stub: gateway_pb2_grpc.GatewayServiceStub,
    request_: gateway_pb2.SimilarWordsRequest,
    details: str,
) -> None:
    await expect_exact_status(
        stub.SimilarWords(request_, timeout=10), grpc.StatusCode.INVALID_ARGUMENT, details
    )


async def test_every_other_method_is_unimplemented(
    stub: gateway_pb2_grpc.GatewayServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.ListModels(gateway_pb2.ListModelsRequest(), timeout=10)
    assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_the_peer_does_not_import_tensorflow() -> None:
    check = (
        "import sys, benchmarks.similarity_peer; "
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True, cwd=Path.cwd()
    ).stdout
    assert "tensorflow" not in loaded and "gensim" in loaded
