"""Turning pictures of handwritten digits into MNIST-style model inputs.

MNIST digits are white on black, fitted into a 20x20 box (aspect kept) and placed in a 28x28
field so that their centre of mass is at the centre. A photo or a drawing of a digit only looks
like that to the model after the same steps: grey, inverted when the paper is light, cropped to
the ink, scaled into 20x20, centred by mass, scaled to [0, 1].
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

import numpy as np
import numpy.typing as npt
from PIL import ExifTags, Image, ImageFile, JpegImagePlugin, PngImagePlugin

from services.gateway import errors, lanczos
from training.contracts.common import IMAGE_SIZE as SIDE  # MNIST images are SIDE x SIDE

BOX = 20  # the digit is fitted into BOX x BOX
# Pixels darker than this fraction of the brightest ink count as background when cropping.
_INK_THRESHOLD = 0.2

# Every exception type Pillow 13's PNG and JPEG parsers, its decoders (ImageFile.load) and its
# EXIF reader (TiffImagePlugin) raise for hostile bytes, read from their source and confirmed by
# fuzzing: a corrupt chunk after the first IDAT is a SyntaxError, a bad EXIF entry a
# struct.error, a truncated IHDR a ValueError. None of them is the gateway's fault.
DECODE_ERRORS: tuple[type[Exception], ...] = (
    OSError,  # also UnidentifiedImageError and the decoders' "broken data stream"
    SyntaxError,
    ValueError,  # also UnicodeDecodeError
    TypeError,
    KeyError,
    IndexError,
    EOFError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)

# Pillow's own parsers, called directly rather than through Image.open: they read the header
# (format and size) without decoding, and without Image.open's decompression-bomb check, which
# would refuse a 20000x20000 picture as "not an image" instead of for its size.
_OPENERS: dict[bytes, Callable[[IO[bytes]], ImageFile.ImageFile]] = {
    b"\x89PNG\r\n\x1a\n": PngImagePlugin.PngImageFile,
    b"\xff\xd8\xff": JpegImagePlugin.jpeg_factory,
}

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class ImageLimits:
    """What the gateway accepts before it decodes anything."""

    max_bytes: int = 4 << 20
    max_pixels: int = 4096 * 4096
    # All pictures of one request together: decoding is the CPU a request costs.
    max_request_pixels: int = 8192 * 8192


def prepare_encoded(
    data: bytes, field: str, limits: ImageLimits = ImageLimits()
) -> npt.NDArray[np.float32]:
    """A PNG or JPEG of a digit, of any size, colour or grey, as a 28x28 float32 MNIST image."""
    return decode_opened(open_encoded(data, field, limits), field)


def open_encoded(data: bytes, field: str, limits: ImageLimits) -> ImageFile.ImageFile:
    """The picture with only its header read, its bytes and size within the limits; nothing
    of it is decoded yet, so this is cheap whatever the size."""
    if not data:
        raise errors.InvalidInput(field, "empty image; send PNG or JPEG bytes")
    if len(data) > limits.max_bytes:
        raise errors.InvalidInput(
            field, f"{len(data)} bytes is over the limit of {limits.max_bytes} bytes"
        )
    opener = next((open_ for magic, open_ in _OPENERS.items() if data.startswith(magic)), None)
    if opener is None:
        raise errors.InvalidInput(field, "not a PNG or JPEG image")
    try:
        image = opener(io.BytesIO(data))
    except DECODE_ERRORS:
        raise errors.InvalidInput(field, "not a PNG or JPEG image: its header is corrupt") from None
    width, height = image.size
    if width * height > limits.max_pixels:
        raise errors.InvalidInput(
            field, f"{width}x{height} pixels is over the limit of {limits.max_pixels} pixels"
        )
    return image


def decode_opened(image: ImageFile.ImageFile, field: str) -> npt.NDArray[np.float32]:
    """A picture from open_encoded, decoded and prepared as prepare_encoded does; closes it."""
    with image:
        try:
            grey = _to_grey(image)
        except DECODE_ERRORS:
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
    border = _border(ink)
    if border.mean() > 0.5:  # light paper, dark ink: MNIST is the other way round
        ink = 1.0 - ink
        border = 1.0 - border
    ink -= _median(border)  # the paper's own grey is not ink
    np.maximum(ink, 0.0, out=ink)
    peak = float(ink.max())
    if peak <= 0.05:
        raise errors.InvalidInput(field, "no digit found: the image is blank")
    # Cropped to the rows and columns with ink; the brightest pixel is among them.
    inked = ink > _INK_THRESHOLD * peak
    rows, columns = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    ink /= peak
    return _centre_by_mass(_fit_into_box(ink))


def _to_grey(encoded: ImageFile.ImageFile) -> npt.NDArray[np.uint8]:
    encoded.load()  # decodes; PNG's EXIF may follow the pixel data
    image = _upright(encoded)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent pixels are paper: put the drawing on white before dropping alpha.
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    if image.mode != "L":
        image = image.convert("L")
    return np.asarray(image, dtype=np.uint8)


def _upright(image: Image.Image) -> Image.Image:
    """Turned as its EXIF orientation says. Not ImageOps.exif_transpose: that also writes the
    EXIF back out, a second trip through hostile bytes for metadata nobody reads here."""
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    method = _TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    return image if method is None else image.transpose(method)


def _border(ink: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])


def _median(values: npt.NDArray[np.float32]) -> float:
    """np.median of a small array, at a tenth of its overhead."""
    ordered = np.sort(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return float((ordered[middle - 1] + ordered[middle]) / 2)


def _fit_into_box(ink: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    height, width = ink.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if max(height, width) <= lanczos.MAX_SIDE:
        fitted = lanczos.resize(ink, *size)
    else:
        resized = Image.fromarray(ink, mode="F").resize(size, Image.Resampling.LANCZOS)
        fitted = np.asarray(resized, dtype=np.float32)
    # Lanczos overshoots a little at sharp edges; ink stays within [0, 1].
    return np.minimum(np.maximum(fitted, 0.0), 1.0)


# Pixel positions along a side of the box, for the centre of mass.
_POSITIONS = np.arange(BOX, dtype=np.float64)


def _centre_by_mass(digit: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    height, width = digit.shape
    # From the row and column sums: the same centre as weighting every pixel by its position.
    row_mass, column_mass = digit.sum(axis=1), digit.sum(axis=0)
    mass = row_mass.sum()
    centre_row = float(_POSITIONS[:height] @ row_mass) / mass
    centre_column = float(_POSITIONS[:width] @ column_mass) / mass
    top = min(max(round(SIDE / 2 - 0.5 - centre_row), 0), SIDE - height)
    left = min(max(round(SIDE / 2 - 0.5 - centre_column), 0), SIDE - width)
    field = np.zeros((SIDE, SIDE), dtype=np.float32)
    field[top : top + height, left : left + width] = digit
    return field
