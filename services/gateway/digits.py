"""Turning pictures of handwritten digits into MNIST-style model inputs.

MNIST digits are white on black, fitted into a 20x20 box (aspect kept) and placed in a 28x28
field so that their centre of mass is at the centre. A photo or a drawing of a digit only looks
like that to the model after the same steps: grey, inverted when the paper is light, cropped to
the ink, scaled into 20x20, centred by mass, scaled to [0, 1].
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from services.gateway import errors

SIDE = 28  # MNIST images are SIDE x SIDE
BOX = 20  # the digit is fitted into BOX x BOX
# Pixels darker than this fraction of the brightest ink count as background when cropping.
_INK_THRESHOLD = 0.2
_FORMATS = ("PNG", "JPEG")


@dataclass(frozen=True)
class ImageLimits:
    """What the gateway accepts before it decodes anything."""

    max_bytes: int = 4 << 20
    max_pixels: int = 4096 * 4096


def prepare_encoded(
    data: bytes, field: str, limits: ImageLimits = ImageLimits()
) -> npt.NDArray[np.float32]:
    """A PNG or JPEG of a digit, of any size, colour or grey, as a 28x28 float32 MNIST image."""
    if not data:
        raise errors.InvalidInput(field, "empty image; send PNG or JPEG bytes")
    if len(data) > limits.max_bytes:
        raise errors.InvalidInput(
            field, f"{len(data)} bytes is over the limit of {limits.max_bytes} bytes"
        )
    try:
        image = Image.open(io.BytesIO(data), formats=_FORMATS)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise errors.InvalidInput(field, "not a PNG or JPEG image") from None
    width, height = image.size
    if width * height > limits.max_pixels:
        raise errors.InvalidInput(
            field, f"{width}x{height} pixels is over the limit of {limits.max_pixels} pixels"
        )
    try:
        grey = _to_grey(image)
    except (OSError, ValueError, Image.DecompressionBombError):
        raise errors.InvalidInput(field, "the image data is truncated or corrupt") from None
    return mnist_style(grey, field)


def prepare_raw(values: npt.ArrayLike, field: str) -> npt.NDArray[np.float32]:
    """784 grey values in [0, 1], already MNIST-style, as a 28x28 float32 image."""
    pixels = np.asarray(values, dtype=np.float32)
    if pixels.size != SIDE * SIDE:
        raise errors.InvalidInput(
            field, f"expected {SIDE * SIDE} values ({SIDE}x{SIDE}), got {pixels.size}"
        )
    bad = np.flatnonzero(~np.isfinite(pixels) | (pixels < 0) | (pixels > 1))
    if bad.size:
        raise errors.InvalidInput(
            f"{field}[{bad[0]}]", f"must be a number in [0, 1], got {pixels[bad[0]]!r}"
        )
    return pixels.reshape(SIDE, SIDE)


def mnist_style(grey: npt.NDArray[np.uint8], field: str) -> npt.NDArray[np.float32]:
    """A grey picture (0 black .. 255 white) of one digit, prepared as MNIST digits were."""
    ink = grey.astype(np.float32) / 255.0
    if _border(ink).mean() > 0.5:  # light paper, dark ink: MNIST is the other way round
        ink = 1.0 - ink
    ink -= np.median(_border(ink))  # the paper's own grey is not ink
    np.clip(ink, 0.0, None, out=ink)
    if ink.max() <= 0.05:
        raise errors.InvalidInput(field, "no digit found: the image is blank")
    rows, columns = np.nonzero(ink > _INK_THRESHOLD * ink.max())
    ink = ink[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]
    ink /= ink.max()
    return _centre_by_mass(_fit_into_box(ink))


def _to_grey(image: Image.Image) -> npt.NDArray[np.uint8]:
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent pixels are paper: put the drawing on white before dropping alpha.
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.uint8)


def _border(ink: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])


def _fit_into_box(ink: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    height, width = ink.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(ink, mode="F").resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _centre_by_mass(digit: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    height, width = digit.shape
    rows, columns = np.indices(digit.shape)
    mass = digit.sum()
    centre_row, centre_column = (rows * digit).sum() / mass, (columns * digit).sum() / mass
    top = int(np.clip(round(SIDE / 2 - 0.5 - centre_row), 0, SIDE - height))
    left = int(np.clip(round(SIDE / 2 - 0.5 - centre_column), 0, SIDE - width))
    field = np.zeros((SIDE, SIDE), dtype=np.float32)
    field[top : top + height, left : left + width] = digit
    return field
