"""What every model contract shares: the ``metadata`` signature, the float32 range, the warm-up
file and what a version directory is.

- ``metadata``: ``rows`` int32 [-1] (values unused) -> each of the model's constants once per
  row, [-1, ...]. TensorFlow Serving's batching needs the batch in the 0th dimension of every
  input and output, so a client sends one row and reads row 0.
- Every float input is float32: a client refuses a value that is not finite or beyond
  ``FLOAT32_MAX`` before sending it.
- A version of a model is a directory ``<model root>/<version>/``, named by a non-negative
  integer (ASCII digits, as TensorFlow Serving's file-system source reads it); other names are
  not versions. It holds the SavedModel and ``WARMUP_FILE``, at most ``WARMUP_MAX_RECORDS``
  ``PredictionLog`` records that a model server replays before the version serves.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_SIGNATURE = "serving_default"
METADATA_SIGNATURE = "metadata"
METADATA_ROWS_INPUT = "rows"

# float(numpy.finfo(numpy.float32).max), written out so the contracts need no numpy.
FLOAT32_MAX = 3.4028234663852886e38

# MNIST-style images, the cnn's and the autoencoder's input: float32 [-1, 28, 28] in [0, 1].
IMAGE_SIZE = 28

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
# TensorFlow Serving refuses a warm-up file of more records than this.
WARMUP_MAX_RECORDS = 1000


def is_version_name(name: str) -> bool:
    """Whether a directory named ``name`` is a version: a non-negative integer in ASCII digits."""
    return name.isascii() and name.isdigit()
