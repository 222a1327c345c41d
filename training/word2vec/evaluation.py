"""How a set of word vectors is scored, ours and the peer's alike: gensim's own evaluation on
WordSim353 (Spearman, and the ratio of pairs out of the vocabulary) and on the Google analogies
(accuracy, and how many of them could be answered)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


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
