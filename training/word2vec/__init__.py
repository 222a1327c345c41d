"""Word vectors: skip-gram with negative sampling, written in TensorFlow, for TF Serving.

Each word predicts the words around it (a window shrunk at random per position, frequent words
subsampled, as in word2vec); every true (word, context) pair is contrasted with words drawn
from the unigram distribution raised to 3/4. gensim's Word2Vec, trained in the same run on the
same corpus with the same dimensions, window and minimum count, is the peer: both are scored
with the same code on WordSim353 (Spearman) and on the Google analogies.

The vocabulary lives inside the export (a lookup table), so an unknown word is reported, never
mapped to a stand-in. Words are normalised in the graph as in training (``normalize_words``:
lower case, surrounding punctuation removed); the gateway applies unicode NFKC before it sends
them. The export's signatures, ``similar`` (also ``serving_default``), ``analogy``, ``embed``
and ``metadata``, are a contract the gateway relies on: training/contracts/word2vec.py describes
them and names their tensors. Scores are cosines over the L2-normalised embedding matrix
(matmul + top_k).

The package is split by job: ``config`` (the profiles), ``vocabulary``, ``data`` (the training
pairs and the negatives' table), ``model`` (SkipGram), ``serving`` (the export and its warm-up
requests), ``evaluation`` (WordSim353 and the analogies), ``peers`` (gensim), and ``job`` (the
run).
"""

from __future__ import annotations

from training.word2vec.config import FULL, PROFILES, QUICK, Word2VecConfig
from training.word2vec.data import training_pairs, unigram_table
from training.word2vec.evaluation import WordVectorScores, score_vectors
from training.word2vec.job import (
    WORD_MAP,
    TrainResult,
    Word2VecMetrics,
    plot_word_map,
    run,
    train,
)
from training.word2vec.model import SkipGram
from training.word2vec.peers import peer_vectors
from training.word2vec.serving import export_saved_model, normalize_words, warmup_requests
from training.word2vec.vocabulary import Vocabulary

__all__ = [
    "FULL",
    "PROFILES",
    "QUICK",
    "WORD_MAP",
    "SkipGram",
    "TrainResult",
    "Vocabulary",
    "Word2VecConfig",
    "Word2VecMetrics",
    "WordVectorScores",
    "export_saved_model",
    "normalize_words",
    "peer_vectors",
    "plot_word_map",
    "run",
    "score_vectors",
    "train",
    "training_pairs",
    "unigram_table",
    "warmup_requests",
]
