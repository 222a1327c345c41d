"""What the export serves: ``_Lookup`` holds the vocabulary table and the (unit) vectors,
``export_saved_model`` writes the ``similar``, ``analogy``, ``embed`` and ``metadata``
signatures of the contract (see the package's docstring), words normalised in the graph as in
training, and ``warmup_requests`` are the calls a model server makes to each before serving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from training.export import Endpoint, export_endpoints, metadata_endpoint, metadata_warmup
from training.warmup import WarmupRequest
from training.word2vec.vocabulary import Vocabulary

MAX_K = 100
# Surrounding punctuation, symbols and spaces, as training.corpora.normalize_word strips them.
_EDGES = r"^[\pP\pS\pZ\s]+|[\pP\pS\pZ\s]+$"


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
        normalised = tf.strings.regex_replace(tf.strings.lower(words, encoding="utf-8"), _EDGES, "")
        return self.table.lookup(normalised)

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
        return {"neighbors": neighbors, "scores": scores, "known": known}

    def analogy(positive: tf.Tensor, negative: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        query = tf.zeros([tf.shape(k)[0], embeddings.shape[1]], tf.float32)
        excluded, known = [], {}
        for side, words, sign in (("positive", positive, 1.0), ("negative", negative, -1.0)):
            ids = lookup.ids(words)
            given = tf.not_equal(words, "")  # "" pads a row to the batch's width
            used = tf.cast(given & (ids >= 0), tf.float32)[..., tf.newaxis]
            query += sign * tf.reduce_sum(tf.gather(lookup.unit, tf.maximum(ids, 0)) * used, 1)
            excluded.append(tf.where(given, ids, -1))
            known[f"{side}_known"] = (ids >= 0) | ~given
        neighbors, scores = lookup.nearest(query, tf.concat(excluded, axis=1), _columns(k))
        return {"neighbors": neighbors, "scores": scores, **known}

    def embed(words: tf.Tensor) -> dict[str, tf.Tensor]:
        ids = lookup.ids(words)
        return {"embeddings": tf.gather(lookup.vectors, tf.maximum(ids, 0)), "known": ids >= 0}

    words = tf.TensorSpec([None], tf.string, name="words")
    k = tf.TensorSpec([None], tf.int32, name="k")
    export_endpoints(
        path,
        [lookup],
        [
            Endpoint("similar", similar, [words, k]),
            Endpoint(
                "analogy",
                analogy,
                [
                    tf.TensorSpec([None, None], tf.string, name="positive"),
                    tf.TensorSpec([None, None], tf.string, name="negative"),
                    k,
                ],
            ),
            Endpoint("embed", embed, [words]),
            metadata_endpoint(
                {
                    "vocabulary_size": tf.constant(len(vocabulary.words), tf.int64),
                    "dimensions": tf.constant(embeddings.shape[1], tf.int64),
                    "max_k": tf.constant(MAX_K, tf.int64),
                }
            ),
        ],
    )


def warmup_requests(vocabulary: Vocabulary) -> list[WarmupRequest]:
    frequent = np.array(vocabulary.words[:8], dtype=object)
    k = np.full(len(frequent), 10, np.int32)
    # An analogy row as the gateway sends it: its words, padded with "" to a fixed width.
    positive = np.array([[*frequent[:2], *[""] * 8]], dtype=object)
    negative = np.array([[frequent[2], *[""] * 9]], dtype=object)
    return [
        WarmupRequest("similar", {"words": frequent[:1], "k": k[:1]}),
        WarmupRequest("similar", {"words": frequent, "k": k}),
        WarmupRequest("analogy", {"positive": positive, "negative": negative, "k": k[:1]}),
        WarmupRequest("embed", {"words": frequent}),
        metadata_warmup(),
    ]
