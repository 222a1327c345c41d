"""What the export serves: ``_Lookup`` holds the vocabulary table and the (unit) vectors,
``export_saved_model`` writes the ``similar``, ``analogy``, ``embed`` and ``metadata``
signatures of the contract (training/contracts/word2vec.py), words normalised in the graph as in
training (``normalize_words``), and ``warmup_requests`` are the calls a model server makes to each
before serving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from training.contracts.word2vec import (
    ANALOGY_SIGNATURE,
    DIMENSIONS_METADATA,
    EMBED_SIGNATURE,
    EMBEDDINGS_OUTPUT,
    K_INPUT,
    KNOWN_OUTPUT,
    MAX_ANALOGY_WORDS,
    MAX_K,
    MAX_K_METADATA,
    NEGATIVE_INPUT,
    NEGATIVE_KNOWN_OUTPUT,
    NEIGHBORS_OUTPUT,
    PAD,
    POSITIVE_INPUT,
    POSITIVE_KNOWN_OUTPUT,
    SCORES_OUTPUT,
    SIMILAR_SIGNATURE,
    VOCABULARY_SIZE_METADATA,
    WORDS_INPUT,
)
from training.export import Endpoint, export_endpoints, metadata_endpoint, metadata_warmup
from training.warmup import WarmupRequest
from training.word2vec.vocabulary import Vocabulary

# Surrounding punctuation, symbols and spaces, as training.corpora.normalize_word strips them.
_EDGES = r"^[\pP\pS\pZ\s]+|[\pP\pS\pZ\s]+$"


def normalize_words(words: tf.Tensor) -> tf.Tensor:
    """The graph's half of the word normalisation (the client's half is unicode NFKC): lower
    case, surrounding punctuation, symbols and spaces removed, as training normalised its corpus."""
    return tf.strings.regex_replace(tf.strings.lower(words, encoding="utf-8"), _EDGES, "")


class _Lookup(tf.Module):
    """What the export serves from: the vocabulary table and the normalised vectors."""

    def __init__(self, vocabulary: Vocabulary, embeddings: np.ndarray) -> None:
        super().__init__()
        words = tf.constant(list(vocabulary.words))
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                words, tf.range(len(vocabulary.words), dtype=tf.int64)
            ),
            default_value=-1,
        )
        self.words = tf.Variable(words, trainable=False, name="vocabulary")
        self.vectors = tf.Variable(embeddings, trainable=False, name="embeddings")
        unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
        self.unit = tf.Variable(unit.astype(np.float32), trainable=False, name="unit_embeddings")

    def ids(self, words: tf.Tensor) -> tf.Tensor:
        return self.table.lookup(normalize_words(words))

    def nearest(
        self, queries: tf.Tensor, excluded: tf.Tensor, k: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Top-k cosine neighbours of unit query vectors [B, D], leaving out excluded ids [B, E]."""
        queries = tf.math.l2_normalize(queries, axis=-1)
        scores = tf.matmul(queries, self.unit, transpose_b=True)
        vocabulary_size = tf.shape(self.unit, out_type=tf.int64)[0]
        mask = tf.reduce_sum(tf.one_hot(excluded, tf.cast(vocabulary_size, tf.int32)), axis=1)
        scores = tf.where(mask > 0, tf.constant(-2.0), scores)
        top = tf.math.top_k(scores, k=k)
        return tf.gather(self.words, top.indices), top.values


def _columns(k: tf.Tensor) -> tf.Tensor:
    """How many neighbours a batch answers with: the most any of its rows asks for, up to
    MAX_K; each client keeps the first k of its row."""
    return tf.minimum(tf.reduce_max(k), MAX_K)


def export_saved_model(vocabulary: Vocabulary, embeddings: np.ndarray, path: Path) -> None:
    """Write the SavedModel with the four signatures of the contract into ``path``."""
    lookup = _Lookup(vocabulary, embeddings)

    def similar(words: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        ids = lookup.ids(words)
        known = ids >= 0
        safe = tf.maximum(ids, 0)
        neighbors, scores = lookup.nearest(
            tf.gather(lookup.unit, safe), safe[:, tf.newaxis], _columns(k)
        )
        return {NEIGHBORS_OUTPUT: neighbors, SCORES_OUTPUT: scores, KNOWN_OUTPUT: known}

    def analogy(positive: tf.Tensor, negative: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        query = tf.zeros([tf.shape(k)[0], embeddings.shape[1]], tf.float32)
        excluded, known = [], {}
        sides = ((POSITIVE_KNOWN_OUTPUT, positive, 1.0), (NEGATIVE_KNOWN_OUTPUT, negative, -1.0))
        for known_output, words, sign in sides:
            ids = lookup.ids(words)
            given = tf.not_equal(words, PAD)  # PAD fills a row to the batch's width
            used = tf.cast(given & (ids >= 0), tf.float32)[..., tf.newaxis]
            query += sign * tf.reduce_sum(tf.gather(lookup.unit, tf.maximum(ids, 0)) * used, 1)
            excluded.append(tf.where(given, ids, -1))
            known[known_output] = (ids >= 0) | ~given
        neighbors, scores = lookup.nearest(query, tf.concat(excluded, axis=1), _columns(k))
        return {NEIGHBORS_OUTPUT: neighbors, SCORES_OUTPUT: scores, **known}

    def embed(words: tf.Tensor) -> dict[str, tf.Tensor]:
        ids = lookup.ids(words)
        return {
            EMBEDDINGS_OUTPUT: tf.gather(lookup.vectors, tf.maximum(ids, 0)),
            KNOWN_OUTPUT: ids >= 0,
        }

    words = tf.TensorSpec([None], tf.string, name=WORDS_INPUT)
    k = tf.TensorSpec([None], tf.int32, name=K_INPUT)
    export_endpoints(
        path,
        [lookup],
        [
            Endpoint(SIMILAR_SIGNATURE, similar, [words, k]),
            Endpoint(
                ANALOGY_SIGNATURE,
                analogy,
                [
                    tf.TensorSpec([None, None], tf.string, name=POSITIVE_INPUT),
                    tf.TensorSpec([None, None], tf.string, name=NEGATIVE_INPUT),
                    k,
                ],
            ),
            Endpoint(EMBED_SIGNATURE, embed, [words]),
            metadata_endpoint(
                {
                    VOCABULARY_SIZE_METADATA: tf.constant(len(vocabulary.words), tf.int64),
                    DIMENSIONS_METADATA: tf.constant(embeddings.shape[1], tf.int64),
                    MAX_K_METADATA: tf.constant(MAX_K, tf.int64),
                }
            ),
        ],
    )


def warmup_requests(vocabulary: Vocabulary) -> list[WarmupRequest]:
    frequent = np.array(vocabulary.words[:8], dtype=object)
    k = np.full(len(frequent), 10, np.int32)
    # An analogy row as the gateway sends it: its words, padded to MAX_ANALOGY_WORDS.
    positive = np.array([[*frequent[:2], *[PAD] * (MAX_ANALOGY_WORDS - 2)]], dtype=object)
    negative = np.array([[frequent[2], *[PAD] * (MAX_ANALOGY_WORDS - 1)]], dtype=object)
    return [
        WarmupRequest(SIMILAR_SIGNATURE, {WORDS_INPUT: frequent[:1], K_INPUT: k[:1]}),
        WarmupRequest(SIMILAR_SIGNATURE, {WORDS_INPUT: frequent, K_INPUT: k}),
        WarmupRequest(
            ANALOGY_SIGNATURE,
            {POSITIVE_INPUT: positive, NEGATIVE_INPUT: negative, K_INPUT: k[:1]},
        ),
        WarmupRequest(EMBED_SIGNATURE, {WORDS_INPUT: frequent}),
        metadata_warmup(),
    ]
