"""Nearest words and analogies with the `word2vec` model.

The `word2vec` contract (training/contracts/word2vec.py). The gateway applies unicode NFKC; the
graph lower-cases and strips surrounding punctuation, as training did, and holds the vocabulary,
so the gateway learns from `known` which words the model does not have:
- `similar`: `words` string [-1], `k` int32 [-1] -> `neighbors` string [-1, K], `scores` float32
  [-1, K], `known` bool [-1], K >= k;
- `analogy`: `positive` string [-1, P], `negative` string [-1, N] (padded with ""), `k` int32
  [-1] -> `neighbors` string [-1, K], `scores` float32 [-1, K], `positive_known` bool [-1, P],
  `negative_known` bool [-1, N];
- `embed`: `words` string [-1] -> `embeddings` float32 [-1, D], `known` bool [-1];
- `metadata`: `rows` int32 [-1] -> `vocabulary_size`, `dimensions`, `max_k` (int64 [-1]).

An analogy's query is the sum of its positive words' unit vectors less its negative ones'. Words
that cancel out (`government - government`, or `Government - government`, which the graph
normalises to one word) leave no direction to search, and the model would answer with the first
k words of its vocabulary at score 0; the gateway asks `embed` for the words' vectors beside the
search and refuses such a query.

Every input has the batch in its 0th dimension and analogy rows are always padded to
MAX_ANALOGY_WORDS, so TensorFlow Serving's batching can merge any concurrent requests.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from services.gateway import errors
from services.gateway.backend import ModelServerClient
from services.gateway.catalog import ModelCatalog, VersionedCache
from services.gateway.domain import Deadline, ModelVersion
from services.gateway.outputs import METADATA_SIGNATURE, output, read_metadata, strings
from services.gateway.signatures import Signature, require
from training.contracts.word2vec import (
    ANALOGY_SIGNATURE,
    EMBED_SIGNATURE,
    EMBEDDINGS_OUTPUT,
    K_INPUT,
    KNOWN_OUTPUT,
    MAX_ANALOGY_WORDS,
    MAX_K_METADATA,
    NEGATIVE_INPUT,
    NEGATIVE_KNOWN_OUTPUT,
    NEIGHBORS_OUTPUT,
    PAD,
    POSITIVE_INPUT,
    POSITIVE_KNOWN_OUTPUT,
    SCORES_OUTPUT,
    SIMILAR_SIGNATURE,
    WORDS_INPUT,
)

MAX_WORD_CHARS = 100
# Below this length the query is the words cancelling out, up to float32 rounding: two distinct
# words' unit vectors are never this close.
MIN_QUERY_NORM = 1e-3


@dataclass(frozen=True)
class Analogy:
    positive: Sequence[str]
    negative: Sequence[str]


@dataclass(frozen=True)
class Neighbor:
    word: str
    score: float


@dataclass(frozen=True)
class SimilarWordsResult:
    neighbors: tuple[Neighbor, ...]
    model: ModelVersion


@dataclass(frozen=True)
class WordsSchema:
    max_k: int
    similar: Signature
    analogy: Signature
    embed: Signature


class WordVectors:
    """The domain core behind SimilarWords."""

    def __init__(self, backend: ModelServerClient, catalog: ModelCatalog, model: str) -> None:
        self._backend = backend
        self._catalog = catalog
        self._model = model
        self.schemas = VersionedCache(self._load_schema)

    async def similar(
        self, word: str | Analogy, k: int, pinned: int | None, deadline: Deadline
    ) -> SimilarWordsResult:
        if isinstance(word, Analogy):
            _check_analogy(word)
            return await self._catalog.on_version(
                self._model, pinned, deadline, lambda v: self._analogy(v, word, k, deadline)
            )
        _check_word("word", word)
        return await self._catalog.on_version(
            self._model, pinned, deadline, lambda v: self._similar(v, word, k, deadline)
        )

    async def _similar(
        self, version: int, word: str, k: int, deadline: Deadline
    ) -> SimilarWordsResult:
        schema = await self._schema(version, k, deadline)
        inputs = {WORDS_INPUT: _as_sent([word]), K_INPUT: np.array([k], dtype=np.int32)}
        schema.similar.check_inputs(self._model, inputs)
        answer = await self._backend.predict(
            self._model, version, SIMILAR_SIGNATURE, inputs, deadline
        )
        if not output(answer.outputs, KNOWN_OUTPUT, self._model, (1,))[0]:
            raise errors.UnknownWord("word", word)
        return self._first_row(answer.outputs, k, answer.version)

    async def _analogy(
        self, version: int, analogy: Analogy, k: int, deadline: Deadline
    ) -> SimilarWordsResult:
        schema = await self._schema(version, k, deadline)
        inputs = {
            POSITIVE_INPUT: _padded_row(analogy.positive),
            NEGATIVE_INPUT: _padded_row(analogy.negative),
            K_INPUT: np.array([k], dtype=np.int32),
        }
        schema.analogy.check_inputs(self._model, inputs)
        # The search runs beside the check of its words, so the check adds no wait to a good
        # call; a query the check refuses is not searched to the end.
        search = asyncio.ensure_future(
            self._backend.predict(self._model, version, ANALOGY_SIGNATURE, inputs, deadline)
        )
        try:
            await self._check_query(version, schema, analogy, deadline)
        except BaseException:
            search.cancel()
            raise
        answer = await search
        sides = (
            ("positive", analogy.positive, POSITIVE_KNOWN_OUTPUT),
            ("negative", analogy.negative, NEGATIVE_KNOWN_OUTPUT),
        )
        for side, words, known_output in sides:
            known = output(answer.outputs, known_output, self._model, (1, MAX_ANALOGY_WORDS))[0]
            for index, word in enumerate(words):
                if not known[index]:
                    raise errors.UnknownWord(f"analogy.{side}[{index}]", word)
        return self._first_row(answer.outputs, k, answer.version)

    async def _check_query(
        self, version: int, schema: WordsSchema, analogy: Analogy, deadline: Deadline
    ) -> None:
        """NOT_FOUND for an unknown word, InvalidInput when the words cancel out."""
        words = [*analogy.positive, *analogy.negative]
        inputs = {WORDS_INPUT: _as_sent(words)}
        schema.embed.check_inputs(self._model, inputs)
        answer = await self._backend.predict(
            self._model, version, EMBED_SIGNATURE, inputs, deadline
        )
        known = output(answer.outputs, KNOWN_OUTPUT, self._model, (len(words),))
        vectors = output(answer.outputs, EMBEDDINGS_OUTPUT, self._model, (len(words), None))
        for index, (side, word) in enumerate(_fields(analogy)):
            if not known[index]:
                raise errors.UnknownWord(side, word)
        check_query(analogy, vectors)

    def _first_row(
        self, outputs: Mapping[str, npt.NDArray[Any]], k: int, version: int
    ) -> SimilarWordsResult:
        """The k nearest words of the answer's one row (a batch may have answered with more)."""
        neighbors = output(outputs, NEIGHBORS_OUTPUT, self._model, (1, None))[0]
        scores = output(outputs, SCORES_OUTPUT, self._model, (1, None))[0]
        if len(neighbors) < k or len(scores) != len(neighbors):
            raise errors.ModelContractError(
                f"model {self._model} answered {len(neighbors)} neighbours for k={k}"
            )
        return _result(neighbors[:k], scores[:k], ModelVersion(self._model, version))

    async def _schema(self, version: int, k: int, deadline: Deadline) -> WordsSchema:
        schema = await self.schemas.get(version, deadline)
        if not 1 <= k <= schema.max_k:
            raise errors.InvalidInput("k", f"must be from 1 to {schema.max_k}; got {k}")
        return schema

    async def _load_schema(self, version: int, deadline: Deadline) -> WordsSchema:
        signatures = await self._backend.signatures(self._model, version, deadline)
        similar, analogy, embed, _ = (
            require(signatures, self._model, version, name)
            for name in (SIMILAR_SIGNATURE, ANALOGY_SIGNATURE, EMBED_SIGNATURE, METADATA_SIGNATURE)
        )
        metadata = await read_metadata(self._backend, self._model, version, deadline)
        max_k = int(output(metadata, MAX_K_METADATA, self._model, ()))
        return WordsSchema(max_k, similar, analogy, embed)


def check_query(analogy: Analogy, vectors: npt.NDArray[np.float32]) -> None:
    """InvalidInput naming `analogy` when its words cancel out; `vectors` are the embeddings
    of its positive words, then of its negative ones, as the model holds them.

    A word on both sides (by the model's normalisation: the same vector) is refused, even among
    other words: it subtracts itself, so the answer is not the analogy the client wrote. A word
    repeated on one side only weighs more, as in gensim's most_similar, and is kept."""
    unit = np.asarray(vectors, dtype=np.float64)
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    fields = _fields(analogy)
    positives = len(analogy.positive)
    for n, m in ((n, m) for n in range(positives) for m in range(positives, len(fields))):
        if np.array_equal(unit[n], unit[m]):
            (positive, word), (negative, same) = fields[n], fields[m]
            raise errors.InvalidInput(
                "analogy",
                f"{word!r} ({positive.removeprefix('analogy.')}) and {same!r} "
                f"({negative.removeprefix('analogy.')}) are one word to the model, which "
                "cancels itself out; leave it out of both",
            )
    signs = np.array([1.0] * positives + [-1.0] * len(analogy.negative))
    if np.linalg.norm(signs @ unit) < MIN_QUERY_NORM:
        raise errors.InvalidInput(
            "analogy", "its words cancel each other out: there is no direction to search"
        )


def _fields(analogy: Analogy) -> list[tuple[str, str]]:
    """(field, word) of each analogy word, positive ones first."""
    return [
        (f"analogy.{side}[{index}]", word)
        for side, words in (("positive", analogy.positive), ("negative", analogy.negative))
        for index, word in enumerate(words)
    ]


def _as_sent(words: Sequence[str]) -> npt.NDArray[np.object_]:
    # Unicode NFKC here; the model lower-cases and strips surrounding punctuation in its graph,
    # as its training did, so that part always matches the version that answers.
    return np.array([unicodedata.normalize("NFKC", word) for word in words], dtype=object)


def _padded_row(words: Sequence[str]) -> npt.NDArray[np.object_]:
    """One analogy side as a [1, MAX_ANALOGY_WORDS] row, padded with PAD ("", which the model
    ignores), so every analogy request has the same shape."""
    row = list(_as_sent(words)) + [PAD] * (MAX_ANALOGY_WORDS - len(words))
    return np.array([row], dtype=object)


def _check_word(field: str, word: str) -> None:
    if not word.strip():
        raise errors.InvalidInput(field, "must not be empty")
    if len(word) > MAX_WORD_CHARS:
        raise errors.InvalidInput(field, f"at most {MAX_WORD_CHARS} characters; got {len(word)}")


def _check_analogy(analogy: Analogy) -> None:
    if not analogy.positive:
        raise errors.InvalidInput("analogy.positive", "at least one word is required")
    for side, words in (("positive", analogy.positive), ("negative", analogy.negative)):
        if len(words) > MAX_ANALOGY_WORDS:
            raise errors.InvalidInput(
                f"analogy.{side}", f"at most {MAX_ANALOGY_WORDS} words; got {len(words)}"
            )
        for index, word in enumerate(words):
            _check_word(f"analogy.{side}[{index}]", word)


def _result(
    neighbors: npt.NDArray[np.object_], scores: npt.NDArray[np.float32], model: ModelVersion
) -> SimilarWordsResult:
    return SimilarWordsResult(
        tuple(
            Neighbor(word, float(score))
            for word, score in zip(strings(neighbors), scores, strict=True)
        ),
        model,
    )
