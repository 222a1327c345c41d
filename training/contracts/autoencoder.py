"""The ``autoencoder`` contract: latent codes and anomaly scores of digits
(training/autoencoder.py).

- ``encode`` (also ``serving_default``): ``images`` float32 [-1, 28, 28] (grey, 0 .. 1;
  ``common.IMAGE_SIZE``) -> ``codes`` float32 [-1, C] (C = 32 for the trained profiles);
- ``reconstruct``: ``images`` float32 [-1, 28, 28] -> ``reconstructions`` float32
  [-1, 28, 28] and ``errors`` float32 [-1], each image's mean squared error per pixel (an
  anomaly score).
"""

from __future__ import annotations

from training.contracts.common import DEFAULT_SIGNATURE

MODEL_NAME = "autoencoder"
ENCODE_SIGNATURE = "encode"
RECONSTRUCT_SIGNATURE = "reconstruct"
SERVING_SIGNATURE = DEFAULT_SIGNATURE  # the same function as ``encode``
IMAGES_INPUT = "images"
CODES_OUTPUT = "codes"
RECONSTRUCTIONS_OUTPUT = "reconstructions"
ERRORS_OUTPUT = "errors"
