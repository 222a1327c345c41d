"""A minimal gensim similarity server: the peer the gateway's SimilarWords is measured against.

python -m benchmarks.similarity_peer --port 0 --vectors vectors.kv

What someone serving word vectors without this suite would write: gensim's `KeyedVectors`,
loaded from a file gensim saved (the bench saves the served version's vectors, as
benchmarks.similarity.read_vectors reads them), behind a grpc.aio server that answers
`gateway.v1.GatewayService/SimilarWords` with `most_similar`. It speaks the gateway's own
messages, so one client harness calls both, and every other method is UNIMPLEMENTED.

`most_similar` runs on the event loop, in the handler, as a minimal grpc.aio server author would
write it: one lookup here is a matrix-vector product of well under a millisecond, less than
handing it to a thread would cost (`asyncio.to_thread` is about 0.2 ms on this machine, see the
Gateway per-stage costs), and numpy holds the GIL for most of so small a product, so a thread
pool would add a hand-off without adding parallelism.

It prints "Similarity peer listening on port N" once it serves, as the gateway does, for a
parent process to read. No TensorFlow: gensim, numpy, grpc and the generated messages.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from gensim.models import KeyedVectors

from services.common.signals import stop_requested
from services.generated.gateway.v1 import gateway_pb2

SERVICE = "gateway.v1.GatewayService"


class SimilarWordsHandler:
    """SimilarWords over one set of vectors: a word, or an analogy, and k."""

    def __init__(self, keyed: KeyedVectors) -> None:
        keyed.fill_norms()  # once, not on the first query
        self._keyed = keyed

    # A method, not __call__: grpc.aio tells a coroutine handler by inspecting the function.
    async def similar_words(
        self, request: gateway_pb2.SimilarWordsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> gateway_pb2.SimilarWordsResponse:
        query = request.WhichOneof("query")
        if query == "word":
            positive, negative = [request.word], []
        elif query == "analogy":
            positive, negative = list(request.analogy.positive), list(request.analogy.negative)
        else:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "query: set word or analogy")
        if request.k < 1:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "k: must be at least 1")
        for word in (*positive, *negative):
            if word not in self._keyed.key_to_index:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown word: {word[:100]!r}")
        nearest = self._keyed.most_similar(positive=positive, negative=negative, topn=request.k)
        return gateway_pb2.SimilarWordsResponse(
            neighbors=[gateway_pb2.Neighbor(word=word, score=score) for word, score in nearest]
        )


def create_server(keyed: KeyedVectors, port: int) -> tuple[grpc.aio.Server, int]:
    """A server answering SimilarWords from ``keyed`` on localhost:``port`` (0: any free one),
    not started; and the port it bound."""
    handlers = {
        "SimilarWords": grpc.unary_unary_rpc_method_handler(
            SimilarWordsHandler(keyed).similar_words,
            request_deserializer=gateway_pb2.SimilarWordsRequest.FromString,
            response_serializer=gateway_pb2.SimilarWordsResponse.SerializeToString,
        )
    }
    server = grpc.aio.server()
    # As the generated add_..._to_server does: the generic handler, and the registered one.
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
    server.add_registered_method_handlers(SERVICE, handlers)  # type: ignore[attr-defined]
    return server, server.add_insecure_port(f"localhost:{port}")


async def serve(port: int, vectors: Path) -> None:
    """Serves until SIGTERM or SIGINT."""
    server, bound = create_server(KeyedVectors.load(str(vectors)), port)
    await server.start()
    print(f"Similarity peer listening on port {bound}", flush=True)
    await stop_requested()
    await server.stop(grace=1.0)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.similarity_peer", description=__doc__
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument(
        "--vectors",
        type=Path,
        required=True,
        help="gensim KeyedVectors, as KeyedVectors.save wrote",
    )
    options = parser.parse_args(argv)
    asyncio.run(serve(options.port, options.vectors))


if __name__ == "__main__":
    main()
