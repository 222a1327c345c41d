"""The ``cnn`` contract: handwritten digits (training/cnn.py).

- ``serving_default``: ``images`` float32 [-1, 28, 28], MNIST-style (grey, 0 black .. 1 white;
  ``common.IMAGE_SIZE``) -> ``probabilities`` float32 [-1, 10] (``N_DIGITS``) and ``digits``
  int64 [-1], the most probable digit of each image.
"""

from __future__ import annotations

from training.contracts.common import DEFAULT_SIGNATURE

MODEL_NAME = "cnn"
SERVING_SIGNATURE = DEFAULT_SIGNATURE
IMAGES_INPUT = "images"
PROBABILITIES_OUTPUT = "probabilities"
DIGITS_OUTPUT = "digits"
N_DIGITS = 10
