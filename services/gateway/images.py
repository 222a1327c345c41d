"""Image inputs shared by RecognizeDigits and Encode: decoded and prepared off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.gateway import errors
from services.gateway.digits import ImageLimits, prepare_encoded, prepare_raw
from services.gateway.generation import FloatArray


@dataclass(frozen=True)
class ImageInput:
    """One picture: PNG/JPEG bytes, or 784 prepared pixel values. Exactly one is set."""

    encoded: bytes | None = None
    raw: Sequence[float] | None = None


async def prepare_images(
    images: Sequence[ImageInput], field: str, max_batch_size: int, limits: ImageLimits
) -> FloatArray:
    """A batch of MNIST-style images [N, 28, 28], or InvalidInput naming the image index."""
    if not images:
        raise errors.InvalidInput(field, "at least one image is required")
    if len(images) > max_batch_size:
        raise errors.InvalidInput(
            field, f"at most {max_batch_size} images per request; got {len(images)}"
        )
    # Decoding and resizing are CPU work: keep the event loop free for other requests.
    return await asyncio.to_thread(_prepare_all, images, field, limits)


def _prepare_all(images: Sequence[ImageInput], field: str, limits: ImageLimits) -> FloatArray:
    prepared = []
    for index, image in enumerate(images):
        if image.encoded is not None:
            prepared.append(prepare_encoded(image.encoded, f"{field}[{index}].encoded", limits))
        elif image.raw is not None:
            prepared.append(prepare_raw(image.raw, f"{field}[{index}].raw.values"))
        else:
            raise errors.InvalidInput(f"{field}[{index}]", "set either encoded or raw")
    return np.stack(prepared)
