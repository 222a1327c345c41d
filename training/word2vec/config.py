"""What decides what a run learns: ``Word2VecConfig`` (the corpus, the vectors' size, the
window, negative sampling, subsampling, the learning-rate schedule) and the named profiles
(``quick`` on the Lee corpus, ``full`` on the news corpus) the CLI picks from."""

from __future__ import annotations

from dataclasses import dataclass

from training.corpora import LEE, NEWS


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
PROFILES = (QUICK, FULL)
