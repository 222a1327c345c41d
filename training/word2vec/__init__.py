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
    MODEL_NAME,
    WORD_MAP,
    TrainResult,
    Word2VecMetrics,
    plot_word_map,
    run,
    train,
)
from training.word2vec.model import SkipGram
from training.word2vec.peers import peer_vectors
from training.word2vec.serving import MAX_K, export_saved_model, warmup_requests
from training.word2vec.vocabulary import Vocabulary

__all__ = [
    "FULL",
    "MAX_K",
    "MODEL_NAME",
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
    "peer_vectors",
    "plot_word_map",
    "run",
    "score_vectors",
    "train",
    "training_pairs",
    "unigram_table",
    "warmup_requests",
]
