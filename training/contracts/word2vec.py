"""The ``word2vec`` contract: nearest words and analogies (training/word2vec/).

The vocabulary lives inside the export (a lookup table), so an unknown word is reported as
unknown, never mapped to a stand-in. Words are normalised as training normalised its corpus
(``training.corpora.normalize_word``): the client applies unicode NFKC before it sends them, and
the graph lower-cases them and strips surrounding punctuation, symbols and spaces (unicode
categories P, S and Z, and ASCII whitespace). Signatures:

- ``similar`` (also ``serving_default``): ``words`` string [-1], ``k`` int32 [-1] (per word)
  -> ``neighbors`` string [-1, K], ``scores`` float32 [-1, K], ``known`` bool [-1];
- ``analogy``: one query per row: ``positive`` string [-1, P], ``negative`` string [-1, N]
  (rows padded with ``PAD``), ``k`` int32 [-1] -> ``neighbors`` string [-1, K], ``scores``
  float32 [-1, K], ``positive_known`` bool [-1, P], ``negative_known`` bool [-1, N] (true for
  padding). Clients pad every row to ``MAX_ANALOGY_WORDS``, so all analogy requests have one
  shape;
- ``embed``: ``words`` string [-1] -> ``embeddings`` float32 [-1, D], ``known`` bool [-1];
- ``metadata`` (see ``common``): ``rows`` int32 [-1] -> ``vocabulary_size``, ``dimensions``,
  ``max_k`` (int64 [-1], the same in every row).

Scores are cosines over the L2-normalised embeddings, the query words themselves left out, as
gensim's most_similar does. K is the largest k of the batch, at most ``MAX_K``: every input and
output has the batch in its 0th dimension, so TensorFlow Serving's batching can merge
concurrent requests, and each client keeps the first k columns of its row.
"""

from __future__ import annotations

MODEL_NAME = "word2vec"
SIMILAR_SIGNATURE = "similar"
ANALOGY_SIGNATURE = "analogy"
EMBED_SIGNATURE = "embed"
WORDS_INPUT = "words"
K_INPUT = "k"
POSITIVE_INPUT = "positive"
NEGATIVE_INPUT = "negative"
NEIGHBORS_OUTPUT = "neighbors"
SCORES_OUTPUT = "scores"
KNOWN_OUTPUT = "known"
POSITIVE_KNOWN_OUTPUT = "positive_known"
NEGATIVE_KNOWN_OUTPUT = "negative_known"
EMBEDDINGS_OUTPUT = "embeddings"
VOCABULARY_SIZE_METADATA = "vocabulary_size"
DIMENSIONS_METADATA = "dimensions"
MAX_K_METADATA = "max_k"

MAX_K = 100
MAX_ANALOGY_WORDS = 10
PAD = ""  # pads an analogy row; the graph ignores it
