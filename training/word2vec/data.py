"""What the model learns from: each epoch a fresh draw of shuffled (word, context) pairs, with
frequent words subsampled and word2vec's randomly shrunk windows (``training_pairs``), fed in
batches (``batches``), and the unigram^0.75 table negatives are drawn from (``unigram_table``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from training.word2vec.config import Word2VecConfig

_UNIGRAM_TABLE_SIZE = 10_000_000


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


def batches(
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
