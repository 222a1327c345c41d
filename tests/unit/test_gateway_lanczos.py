"""The gateway's Lanczos resize against Pillow's own, which it stands in for on small crops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from services.gateway import lanczos


def pillow_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    resized = Image.fromarray(image, mode="F").resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.float32)


def assert_as_pillow(image: np.ndarray, width: int, height: int) -> None:
    expected = pillow_resize(image, width, height)
    resized = lanczos.resize(image, width, height)
    assert resized.dtype == np.float32 and resized.shape == expected.shape
    # The same sums added in another order: equal but for the last bit of a float32.
    scale = max(float(np.abs(expected).max()), 1e-30)
    np.testing.assert_allclose(resized, expected, rtol=0, atol=2e-7 * scale)


@settings(max_examples=300, deadline=None)
@given(
    image=st.tuples(st.integers(1, 80), st.integers(1, 80)).flatmap(
        lambda shape: arrays(np.float32, shape, elements=st.floats(0, 1, width=32))
    ),
    width=st.integers(1, 40),
    height=st.integers(1, 40),
)
def test_resizes_as_pillow_does(image: np.ndarray, width: int, height: int) -> None:
    assert_as_pillow(image, width, height)


def test_a_digit_crop_shrunk_into_the_box_and_a_small_one_grown() -> None:
    rng = np.random.default_rng(7)
    ink = (rng.random((41, 40)) > 0.6).astype(np.float32)
    assert_as_pillow(ink, 20, 20)
    assert_as_pillow(ink[:5, :3], 12, 20)
    assert_as_pillow(ink, 40, 20)  # one side kept: a single pass, as Pillow skips the other


def test_the_same_size_is_a_copy() -> None:
    ink = np.arange(12, dtype=np.float32).reshape(3, 4)
    resized = lanczos.resize(ink, 4, 3)
    np.testing.assert_array_equal(resized, ink)
    assert resized is not ink


def test_larger_pictures_are_left_to_pillow() -> None:
    side = lanczos.MAX_SIDE + 1
    with pytest.raises(ValueError, match="over 256 pixels a side"):
        lanczos.resize(np.zeros((side, 4), dtype=np.float32), 2, 20)
