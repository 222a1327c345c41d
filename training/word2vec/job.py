"""The training job: ``train`` builds the vocabulary, trains the skip-gram model, scores it and
gensim's peer alike, saves the reports (curves, a PCA map of the frequent words) and publishes
a new version with its ``metrics.json`` (``Word2VecMetrics``); ``run`` is the CLI's entry
(``training.jobs``), a named profile with an optional seed."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import keras
import numpy as np
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from training.corpora import load_corpus
from training.export import publish_model
from training.jobs import RunOptions, profile_config
from training.publish import PublishedVersion
from training.reporting import TRAINING_CURVES, RunReports, plot_history
from training.runtime import seed_everything, select_strategy
from training.word2vec.config import PROFILES, Word2VecConfig
from training.word2vec.data import batches, training_pairs, unigram_table
from training.word2vec.evaluation import score_vectors
from training.word2vec.model import SkipGram
from training.word2vec.peers import peer_vectors
from training.word2vec.serving import export_saved_model, warmup_requests
from training.word2vec.vocabulary import Vocabulary

MODEL_NAME = "word2vec"
WORD_MAP = "word_map.png"


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
        batches(documents, vocabulary.counts, config, rng),
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
