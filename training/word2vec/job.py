"""The training job: ``train`` builds the vocabulary, trains the skip-gram model, scores it and
gensim's peer alike, saves the reports (curves, a PCA map of the frequent words) and publishes
a new version with its ``metrics.json`` (``Word2VecMetrics``); ``run`` is the CLI's entry
(``training.jobs``), a named profile with an optional seed."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import keras
import numpy as np
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from training.contracts.word2vec import MODEL_NAME
from training.corpora import load_corpus
from training.job import JobRun, RunMetrics, RunResult
from training.jobs import RunOptions, profile_config
from training.runtime import select_strategy
from training.word2vec.config import PROFILES, Word2VecConfig
from training.word2vec.data import batches, training_pairs, unigram_table
from training.word2vec.evaluation import score_vectors
from training.word2vec.model import SkipGram
from training.word2vec.peers import peer_vectors
from training.word2vec.serving import export_saved_model, warmup_requests
from training.word2vec.vocabulary import Vocabulary

WORD_MAP = "word_map.png"


@dataclass(frozen=True, kw_only=True)
class Word2VecMetrics(RunMetrics):
    """What goes into ``metrics.json`` inside the published version, beside the run's fields."""

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


@dataclass(frozen=True, kw_only=True)
class TrainResult(RunResult[Word2VecMetrics]):
    """A finished run: the trained vectors, their vocabulary, metrics and where they went."""

    model: SkipGram
    vocabulary: Vocabulary

    @property
    def embeddings(self) -> np.ndarray:
        return np.asarray(self.model.words.embeddings.numpy())


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
    job = JobRun(MODEL_NAME, config, options)
    rng = np.random.default_rng(config.seed)
    corpus = load_corpus(config.corpus)
    vocabulary = Vocabulary.build(corpus, config.min_count)
    documents = vocabulary.encode(corpus)
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

    job.fit(
        model,
        "word2vec skip-gram",
        batches(documents, vocabulary.counts, config, rng),
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        shuffle=False,  # every epoch's pairs come shuffled
    )
    embeddings = np.asarray(model.words.embeddings.numpy())
    ours = score_vectors(vocabulary.words, embeddings)
    peer = score_vectors(*peer_vectors(corpus, config))
    job.reports.save(plot_word_map(vocabulary, embeddings), WORD_MAP)
    metrics, published = job.publish(
        partial(
            Word2VecMetrics,
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
        ),
        lambda directory: export_saved_model(vocabulary, embeddings, directory),
        warmup_requests(vocabulary),
    )
    return TrainResult(
        model=model,
        vocabulary=vocabulary,
        metrics=metrics,
        published=published,
        reports=job.reports,
    )


def run(options: RunOptions) -> TrainResult:
    """The CLI's entry: a named profile, optionally with another seed."""
    return train(profile_config(PROFILES, options), options)
