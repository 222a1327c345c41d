"""The vocabulary: the corpus's words seen at least ``min_count`` times, by descending
frequency, a word's id being its index; ``encode`` turns the corpus's documents into id arrays,
leaving out the words it does not keep."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from training.corpora import Corpus


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
