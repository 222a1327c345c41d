"""Pillow's Lanczos resize of a small float image, as two small matrix products.

A digit's crop is a few dozen pixels a side, and at that size `Image.resize` spends most of its
time building images and filter weights, not filtering. This computes what Pillow computes for
a mode "F" image (its Resample.c: the same weights, a horizontal pass then a vertical one, each
summed in double precision and stored as float32), with the weights of each size pair made
once. A matrix product adds in another order than Pillow's loop, so a value may differ from
Pillow's in its last bit; `tests/unit/test_gateway_lanczos.py` holds it to that.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt

# Pillow's Lanczos filter reaches 3 input pixels either side, scaled up when shrinking.
_SUPPORT = 3.0
# Sides up to this are resized here; larger ones are left to Pillow: a dense weight matrix grows
# with the side. With 128 size pairs kept, the weights take at most a few megabytes.
MAX_SIDE = 256


def resize(image: npt.NDArray[np.float32], width: int, height: int) -> npt.NDArray[np.float32]:
    """``image`` (at most MAX_SIDE a side) resized to ``height`` x ``width``, as Pillow's
    ``Image.fromarray(image, "F").resize((width, height), LANCZOS)`` resizes it."""
    in_height, in_width = image.shape
    if max(in_height, in_width) > MAX_SIDE:
        raise ValueError(f"{in_height}x{in_width} is over {MAX_SIDE} pixels a side")
    resized = image
    if width != in_width:
        # float32 x float64 weights sum in float64, as Pillow's loop does; stored as float32.
        resized = (resized @ _weights(in_width, width).T).astype(np.float32)
    if height != in_height:
        resized = (_weights(in_height, height) @ resized).astype(np.float32)
    return resized if resized is not image else image.copy()


@functools.lru_cache(maxsize=128)
def _weights(in_size: int, out_size: int) -> npt.NDArray[np.float64]:
    """The [out_size, in_size] weights of each output pixel over the input's, built as Pillow's
    precompute_coeffs builds them (math.sin: the C library's sine, as Pillow's)."""
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = _SUPPORT * filter_scale
    inverse_scale = 1.0 / filter_scale
    weights = np.zeros((out_size, in_size), dtype=np.float64)
    for out in range(out_size):
        centre = (out + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        last = min(int(centre + support + 0.5), in_size)
        row = [_lanczos((x - centre + 0.5) * inverse_scale) for x in range(first, last)]
        total = 0.0
        for weight in row:  # one after another, as Pillow adds them (not sum's compensation)
            total += weight
        weights[out, first:last] = [w / total for w in row] if total != 0.0 else row
    return weights


def _lanczos(x: float) -> float:
    if not -_SUPPORT <= x < _SUPPORT:
        return 0.0
    return _sinc(x) * _sinc(x / _SUPPORT)


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x *= math.pi
    return math.sin(x) / x
