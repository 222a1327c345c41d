"""The peer the trained vectors are compared with: gensim's Word2Vec, skip-gram with negative
sampling, trained on the same corpus with the same dimensions, window, minimum count, negatives,
subsampling, epochs and seed."""

from __future__ import annotations

import numpy as np

from training.corpora import Corpus
from training.word2vec.config import Word2VecConfig


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
