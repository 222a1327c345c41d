"""Word vectors: skip-gram with negative sampling, written in TensorFlow, for TF Serving.

Each word predicts the words around it (a window shrunk at random per position, frequent words
subsampled, as in word2vec); every true (word, context) pair is contrasted with words drawn
from the unigram distribution raised to 3/4. gensim's Word2Vec, trained in the same run on the
same corpus with the same dimensions, window and minimum count, is the peer: both are scored
with the same code on WordSim353 (Spearman) and on the Google analogies.

The vocabulary lives inside the export (a lookup table), so an unknown word is reported, never
mapped to a stand-in. Words are normalised in the graph as in training (lower case, surrounding
punctuation removed); the gateway applies unicode NFKC before it sends them. Signatures:

- ``similar`` (also ``serving_default``): ``words`` string [-1], ``k`` int32 [-1] (per word)
  -> ``neighbors`` string [-1, K], ``scores`` float32 [-1, K], ``known`` bool [-1]
- ``analogy``: one query per row: ``positive`` string [-1, P], ``negative`` string [-1, N] (rows
  padded with ""), ``k`` int32 [-1] -> ``neighbors`` string [-1, K], ``scores`` float32 [-1, K],
  ``positive_known`` bool [-1, P], ``negative_known`` bool [-1, N] (true for padding)
- ``embed``: ``words`` string [-1] -> ``embeddings`` float32 [-1, D], ``known`` bool [-1]
- ``metadata``: ``rows`` int32 [-1] -> ``vocabulary_size``, ``dimensions``, ``max_k`` (int64
  [-1], the same in every row)

Scores are cosines over the L2-normalised embedding matrix (matmul + top_k), with the query words
themselves left out, as gensim's most_similar does. K is the largest k of the batch (at most
``max_k``): every input and output has the batch in its 0th dimension, so TensorFlow Serving's
batching can merge concurrent requests, and each client keeps the first k columns of its rows.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from training.corpora import LEE, NEWS, Corpus, load_corpus
from training.export import (
    Endpoint,
    export_endpoints,
    metadata_endpoint,
    metadata_warmup,
    publish_model,
)
from training.jobs import RunOptions, profile_config
from training.publish import PublishedVersion
from training.reporting import TRAINING_CURVES, RunReports, plot_history
from training.runtime import seed_everything, select_strategy
from training.warmup import WarmupRequest

MODEL_NAME = "word2vec"
MAX_K = 100
WORD_MAP = "word_map.png"
_UNIGRAM_TABLE_SIZE = 10_000_000
# Surrounding punctuation, symbols and spaces, as training.corpora.normalize_word strips them.
_EDGES = r"^[\pP\pS\pZ\s]+|[\pP\pS\pZ\s]+$"


@dataclass(frozen=True)
class Word2VecConfig:
    """Everything that decides what a training run learns."""

    profile: str
    corpus: str
    epochs: int
    dimensions: int = 100
    window: int = 5
    min_count: int = 5
    negatives: int = 5
    sample: float = 1e-3  # frequent-word subsampling threshold, as gensim's default
    learning_rate: float = 0.025
    min_learning_rate: float = 0.0001
    batch_size: int = 1024
    seed: int = 1


QUICK = Word2VecConfig(profile="quick", corpus=LEE, epochs=10, min_count=2, dimensions=50)
FULL = Word2VecConfig(profile="full", corpus=NEWS, epochs=5)
PROFILES: dict[str, Word2VecConfig] = {config.profile: config for config in (QUICK, FULL)}


@dataclass(frozen=True)
class Vocabulary:
    """Words by descending frequency; a word's id is its index."""

    words: tuple[str, ...]
    counts: np.ndarray

    @classmethod
    def build(cls, corpus: Corpus, min_count: int) -> Vocabulary:
        counts = Counter(word for document in corpus.documents for word in document)
        kept = sorted(
            ((word, n) for word, n in counts.items() if n >= min_count), key=lambda x: (-x[1], x[0])
        )
        return cls(tuple(word for word, _ in kept), np.array([n for _, n in kept], np.int64))

    def encode(self, corpus: Corpus) -> list[np.ndarray]:
        ids = {word: index for index, word in enumerate(self.words)}
        return [
            np.array([ids[word] for word in document if word in ids], np.int32)
            for document in corpus.documents
        ]


class SkipGram(keras.Model):
    """Word and context embeddings; the loss contrasts each true pair with sampled negatives."""

    def __init__(
        self, vocabulary_size: int, dimensions: int, negatives: int, unigram: np.ndarray
    ) -> None:
        super().__init__(name="skip_gram")
        self.negatives = negatives
        self.words = keras.layers.Embedding(
            vocabulary_size,
            dimensions,
            embeddings_initializer=keras.initializers.RandomUniform(
                -0.5 / dimensions, 0.5 / dimensions
            ),
            name="word_embedding",
        )
        self.contexts = keras.layers.Embedding(
            vocabulary_size, dimensions, embeddings_initializer="zeros", name="context_embedding"
        )
        self.unigram = tf.constant(unigram)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        # Both tables, though a call uses only the word one: train_step reads the contexts.
        self.words.build(input_shape)
        self.contexts.build(input_shape)
        self.built = True

    def call(self, words: tf.Tensor) -> tf.Tensor:
        return self.words(words)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker]

    def train_step(self, data: tuple[tf.Tensor, tf.Tensor]) -> dict[str, tf.Tensor]:
        words, contexts = data
        batch = tf.shape(words)[0]
        draws = tf.random.uniform(
            [batch, self.negatives],
            maxval=tf.shape(self.unigram, out_type=tf.int64)[0],
            dtype=tf.int64,
        )
        candidates = tf.concat([contexts[:, tf.newaxis], tf.gather(self.unigram, draws)], axis=1)
        labels = tf.concat([tf.ones([batch, 1]), tf.zeros([batch, self.negatives])], axis=1)
        with tf.GradientTape() as tape:
            logits = tf.einsum("bd,bkd->bk", self.words(words), self.contexts(candidates))
            # Summed, not averaged, over the batch: each pair moves the vectors as much as one
            # step of word2vec's own SGD would.
            loss = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits))
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        self.loss_tracker.update_state(loss / tf.cast(batch, tf.float32))
        return {"loss": self.loss_tracker.result()}


def unigram_table(counts: np.ndarray, size: int = _UNIGRAM_TABLE_SIZE) -> np.ndarray:
    """Word ids in proportion to count^0.75: a uniform draw from it is a negative sample."""
    weights = counts.astype(np.float64) ** 0.75
    repeats = np.maximum(1, np.round(weights / weights.sum() * size)).astype(np.int64)
    return np.repeat(np.arange(len(counts), dtype=np.int32), repeats)


def training_pairs(
    documents: Sequence[np.ndarray],
    counts: np.ndarray,
    config: Word2VecConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of shuffled (word, context) pairs: subsampled, with word2vec's shrunk windows."""
    total = counts.sum()
    threshold = config.sample * total
    keep = np.minimum(1.0, (np.sqrt(counts / threshold) + 1) * threshold / counts)
    words_out, contexts_out = [], []
    for document in documents:
        ids = document[rng.random(len(document)) < keep[document]]
        if len(ids) < 2:
            continue
        reach = rng.integers(1, config.window + 1, size=len(ids))
        for offset in range(1, config.window + 1):
            if offset >= len(ids):
                break
            left, right = ids[:-offset], ids[offset:]
            forward = reach[:-offset] >= offset  # the right word is in the left one's window
            backward = reach[offset:] >= offset
            words_out += [left[forward], right[backward]]
            contexts_out += [right[forward], left[backward]]
    words = np.concatenate(words_out)
    contexts = np.concatenate(contexts_out)
    order = rng.permutation(len(words))
    return words[order], contexts[order]


def _batches(
    documents: Sequence[np.ndarray],
    counts: np.ndarray,
    config: Word2VecConfig,
    rng: np.random.Generator,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    while True:  # a fresh draw of pairs every epoch
        words, contexts = training_pairs(documents, counts, config, rng)
        for start in range(0, len(words) - config.batch_size + 1, config.batch_size):
            stop = start + config.batch_size
            yield words[start:stop], contexts[start:stop]


@dataclass(frozen=True)
class WordVectorScores:
    """One set of vectors scored on WordSim353 and the Google analogies."""

    spearman: float
    analogy_accuracy: float
    wordsim_pairs_oov_ratio: float
    analogies_answered: int
    analogies_total: int


def score_vectors(words: Sequence[str], vectors: np.ndarray) -> WordVectorScores:
    """gensim's own evaluation, the same for our vectors and for the peer's."""
    from gensim.models import KeyedVectors
    from gensim.test.utils import datapath

    keyed = KeyedVectors(vectors.shape[1])
    keyed.add_vectors(list(words), vectors.astype(np.float32))
    _pearson, spearman, oov_percent = keyed.evaluate_word_pairs(
        datapath("wordsim353.tsv"), case_insensitive=True
    )
    accuracy, sections = keyed.evaluate_word_analogies(
        datapath("questions-words.txt"), case_insensitive=True
    )
    total = next(section for section in sections if section["section"] == "Total accuracy")
    answered = len(total["correct"]) + len(total["incorrect"])
    return WordVectorScores(
        spearman=float(spearman.statistic),
        analogy_accuracy=float(accuracy),
        wordsim_pairs_oov_ratio=float(oov_percent) / 100.0,
        analogies_answered=answered,
        analogies_total=_count_questions(datapath("questions-words.txt")),
    )


def _count_questions(path: str) -> int:
    with open(path, encoding="utf-8") as lines:
        return sum(1 for line in lines if line.strip() and not line.startswith(":"))


def peer_vectors(corpus: Corpus, config: Word2VecConfig) -> tuple[list[str], np.ndarray]:
    """gensim's skip-gram with negative sampling on the same corpus and settings."""
    from gensim.models import Word2Vec

    model = Word2Vec(
        sentences=corpus.documents,
        vector_size=config.dimensions,
        window=config.window,
        min_count=config.min_count,
        sg=1,
        negative=config.negatives,
        sample=config.sample,
        epochs=config.epochs,
        seed=config.seed,
        workers=2,
    )
    return list(model.wv.index_to_key), model.wv.vectors


@dataclass(frozen=True)
class Word2VecMetrics:
    """What goes into ``metrics.json`` inside the published version."""

    model: str
    version: int
    profile: str
    corpus: dict[str, Any]
    vocabulary_size: int
    dimensions: int
    window: int
    spearman: float
    analogy_accuracy: float
    wordsim: dict[str, Any]
    analogies: dict[str, Any]
    peer: dict[str, Any]
    ratio_to_peer: float
    epochs: int
    train_seconds: float
    created: str
    seed: int

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrainResult:
    """A finished run: the trained vectors, their vocabulary, metrics and where they went."""

    model: SkipGram
    vocabulary: Vocabulary
    metrics: Word2VecMetrics
    published: PublishedVersion
    reports: RunReports

    @property
    def embeddings(self) -> np.ndarray:
        return np.asarray(self.model.words.embeddings.numpy())

    def metrics_dict(self) -> dict[str, Any]:
        return self.metrics.as_dict()


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


def plot_word_map(vocabulary: Vocabulary, embeddings: np.ndarray, count: int = 300) -> Figure:
    """The most frequent words placed by the first two principal components of their vectors."""
    points = PCA(n_components=2, random_state=0).fit_transform(embeddings[:count])
    figure = Figure(figsize=(16, 12))
    axes = figure.subplots()
    axes.scatter(points[:, 0], points[:, 1], s=4, alpha=0.4)
    for (x, y), word in zip(points, vocabulary.words[:count], strict=False):
        axes.annotate(word, (x, y), fontsize=7, alpha=0.8)
    axes.set_title(f"The {count} most frequent words, PCA of their word2vec vectors")
    return figure


def train(config: Word2VecConfig, options: RunOptions) -> TrainResult:
    """Train, score against gensim, and publish a new version."""
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    corpus = load_corpus(config.corpus)
    vocabulary = Vocabulary.build(corpus, config.min_count)
    documents = vocabulary.encode(corpus)
    reports = RunReports.create(options.reports_dir, MODEL_NAME, config.profile)
    steps_per_epoch = (
        len(
            training_pairs(
                documents, vocabulary.counts, config, np.random.default_rng(config.seed)
            )[0]
        )
        // config.batch_size
    )

    with select_strategy().scope():
        model = SkipGram(
            len(vocabulary.words),
            config.dimensions,
            config.negatives,
            unigram_table(vocabulary.counts),
        )
        schedule = keras.optimizers.schedules.PolynomialDecay(
            config.learning_rate, config.epochs * steps_per_epoch, config.min_learning_rate
        )
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule))
        model(np.zeros(1, np.int32))  # build the embeddings

    started = time.perf_counter()
    history = model.fit(
        _batches(documents, vocabulary.counts, config, rng),
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        shuffle=False,  # every epoch's pairs come shuffled
        callbacks=[reports.tensorboard()],
        verbose=options.verbose,
    )
    train_seconds = time.perf_counter() - started
    reports.save(plot_history(history, "word2vec skip-gram"), TRAINING_CURVES)

    embeddings = np.asarray(model.words.embeddings.numpy())
    ours = score_vectors(vocabulary.words, embeddings)
    peer = score_vectors(*peer_vectors(corpus, config))
    reports.save(plot_word_map(vocabulary, embeddings), WORD_MAP)
    created = datetime.now(UTC).isoformat(timespec="seconds")

    def metrics_for(version: int) -> Word2VecMetrics:
        return Word2VecMetrics(
            model=MODEL_NAME,
            version=version,
            profile=config.profile,
            corpus={
                "name": corpus.name,
                "tokens": corpus.tokens,
                "documents": len(corpus.documents),
            },
            vocabulary_size=len(vocabulary.words),
            dimensions=config.dimensions,
            window=config.window,
            spearman=ours.spearman,
            analogy_accuracy=ours.analogy_accuracy,
            wordsim={"oov_ratio": ours.wordsim_pairs_oov_ratio},
            analogies={
                "answered": ours.analogies_answered,
                "total": ours.analogies_total,
                "oov_ratio": 1 - ours.analogies_answered / ours.analogies_total,
            },
            peer={
                "name": "gensim_word2vec",
                "spearman": peer.spearman,
                "analogy_accuracy": peer.analogy_accuracy,
            },
            ratio_to_peer=ours.spearman / peer.spearman if peer.spearman else float("nan"),
            epochs=config.epochs,
            train_seconds=round(train_seconds, 3),
            created=created,
            seed=config.seed,
        )

    published = publish_model(
        options.models_dir,
        MODEL_NAME,
        lambda directory: export_saved_model(vocabulary, embeddings, directory),
        lambda version: metrics_for(version).as_dict(),
        warmup_requests(vocabulary),
    )
    return TrainResult(model, vocabulary, metrics_for(published.version), published, reports)


def run(options: RunOptions) -> TrainResult:
    """The CLI's entry: a named profile, optionally with another seed."""
    return train(profile_config(PROFILES, options), options)
