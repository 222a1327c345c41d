"""Image inputs shared by RecognizeDigits and Encode: decoded and prepared off the event loop.

The work one request costs is bounded before any of it is done: every picture's header is read
first (cheap), and the pixels of all of them together must fit `max_request_pixels`. Decoding
then runs in a worker thread, one picture after another, and stops between pictures once the
request's deadline has passed or its caller has gone. A request of a few small pictures (the
common one: a digit is a few thousand pixels) is prepared on the event loop instead, since the
hand-off to a thread and back costs more CPU than preparing it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import ImageFile

from services.gateway import errors
from services.gateway.digits import (
    ImageLimits,
    decode_opened,
    open_encoded,
    prepare_encoded,
    prepare_raw,
)
from services.gateway.domain import Deadline, FloatArray


@dataclass(frozen=True)
class ImageInput:
    """One picture: PNG/JPEG bytes, or 784 prepared pixel values. Exactly one is set."""

    encoded: bytes | None = None
    raw: Sequence[float] | None = None


class _Abandoned(Exception):
    """The request was cancelled: nobody waits for the rest of the decoding."""


async def prepare_images(
    images: Sequence[ImageInput],
    field: str,
    max_batch_size: int,
    limits: ImageLimits,
    deadline: Deadline,
) -> FloatArray:
    """A batch of MNIST-style images [N, 28, 28], or InvalidInput naming the image index;
    DeadlineExceeded if the deadline passes while the pictures are decoded."""
    if not images:
        raise errors.InvalidInput(field, "at least one image is required")
    if len(images) > max_batch_size:
        raise errors.InvalidInput(
            field, f"at most {max_batch_size} images per request; got {len(images)}"
        )
    abandoned = threading.Event()
    if _small(images):
        checked = _check_all(images, field, limits, deadline, abandoned, keep_headers=True)
        if checked.pixels <= _INLINE_PIXELS:
            return _prepare_all(images, checked, field, limits, deadline, abandoned)
        checked.close_headers()  # the thread decodes them from their bytes
    else:
        checked = None
    # Decoding and resizing larger pictures is CPU work: keep the event loop free for other
    # requests. A cancelled call cannot stop the thread, so the thread looks at this flag
    # between pictures.
    try:
        return await asyncio.to_thread(
            _check_and_prepare_all, images, checked, field, limits, deadline, abandoned
        )
    finally:
        abandoned.set()


# At most this many pictures, of this many bytes and pixels in all, are prepared on the event
# loop: a digit's few thousand pixels take a fraction of a millisecond, about what a hand-off to
# a thread costs. The bytes bound reading the headers, the pixels bound decoding.
_INLINE_IMAGES = 4
_INLINE_BYTES = 8 << 10
_INLINE_PIXELS = 128 * 128
# PNG chunks that Pillow inflates while it reads the header: a few kilobytes of them can be
# megabytes of text, tens of milliseconds. A picture that may hold one goes to the thread.
_INFLATED_IN_HEADER = (b"zTXt", b"iTXt", b"iCCP")


def _small(images: Sequence[ImageInput]) -> bool:
    if len(images) > _INLINE_IMAGES:
        return False
    encoded = [image.encoded for image in images if image.encoded is not None]
    if sum(map(len, encoded)) > _INLINE_BYTES:
        return False
    return not any(tag in data for data in encoded for tag in _INFLATED_IN_HEADER)


@dataclass
class _Checked:
    """What reading every header found: the raw pictures prepared (by index), the encoded
    ones' pixels in all, and their opened headers (by index) where they are kept to decode."""

    raw: dict[int, npt.NDArray[np.float32]]
    headers: dict[int, ImageFile.ImageFile]
    pixels: int

    def close_headers(self) -> None:
        """Closes the headers still kept and lets them go."""
        for header in self.headers.values():
            header.close()
        self.headers.clear()


def _check_and_prepare_all(
    images: Sequence[ImageInput],
    checked: _Checked | None,
    field: str,
    limits: ImageLimits,
    deadline: Deadline,
    abandoned: threading.Event,
) -> FloatArray:
    if checked is None:
        checked = _check_all(images, field, limits, deadline, abandoned, keep_headers=False)
    return _prepare_all(images, checked, field, limits, deadline, abandoned)


def _prepare_all(
    images: Sequence[ImageInput],
    checked: _Checked,
    field: str,
    limits: ImageLimits,
    deadline: Deadline,
    abandoned: threading.Event,
) -> FloatArray:
    prepared = []
    try:
        for index, image in enumerate(images):
            if image.encoded is None:
                prepared.append(checked.raw[index])
                continue
            _check_time(deadline, abandoned, field, index, len(images))
            where = f"{field}[{index}].encoded"
            header = checked.headers.pop(index, None)
            if header is None:
                prepared.append(prepare_encoded(image.encoded, where, limits))
            else:
                prepared.append(decode_opened(header, where))
    finally:
        checked.close_headers()
    return np.stack(prepared)


def _check_all(
    images: Sequence[ImageInput],
    field: str,
    limits: ImageLimits,
    deadline: Deadline,
    abandoned: threading.Event,
    keep_headers: bool,
) -> _Checked:
    """Every picture's header read and checked, and raw pixels prepared, before any decoding:
    a request over its limits costs no decoding at all. The opened headers are kept only when
    asked (a few small pictures, decoded next): each may hold megabytes of decompressed PNG
    text, and there may be a thousand."""
    checked = _Checked(raw={}, headers={}, pixels=0)
    try:
        for index, image in enumerate(images):
            if image.encoded is not None:
                _check_time(deadline, abandoned, field, index, len(images))
                header = open_encoded(image.encoded, f"{field}[{index}].encoded", limits)
                checked.pixels += header.size[0] * header.size[1]
                if keep_headers:
                    checked.headers[index] = header
                else:
                    header.close()
            elif image.raw is not None:
                checked.raw[index] = prepare_raw(image.raw, f"{field}[{index}].raw.values")
            else:
                raise errors.InvalidInput(f"{field}[{index}]", "set either encoded or raw")
        if checked.pixels > limits.max_request_pixels:
            raise errors.InvalidInput(
                field,
                f"{checked.pixels} pixels in all is over the limit of {limits.max_request_pixels} "
                "pixels per request; send the pictures in several requests, or smaller",
            )
    except BaseException:
        checked.close_headers()
        raise
    return checked


def _check_time(
    deadline: Deadline, abandoned: threading.Event, field: str, index: int, count: int
) -> None:
    if abandoned.is_set():
        raise _Abandoned
    if time.monotonic() >= deadline.expires_at:
        raise errors.DeadlineExceeded(
            f"deadline exceeded while reading {field}: stopped before {field}[{index}], "
            f"{count} pictures in all"
        )
