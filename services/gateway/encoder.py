"""Latent codes and anomaly scores from the `autoencoder` model.

The `autoencoder` contract (training/autoencoder.py):
- `encode`: `images` float32 [-1, 28, 28] -> `codes` float32 [-1, 32];
- `reconstruct`: `images` -> `reconstructions` float32 [-1, 28, 28], `errors` float32 [-1]
  (mean squared error per pixel: an anomaly score).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from services.gateway import errors
from services.gateway.backend import ModelServerClient
from services.gateway.catalog import ModelCatalog, VersionedCache
from services.gateway.digits import ImageLimits, prepare_raw
from services.gateway.domain import Deadline, ModelVersion
from services.gateway.images import ImageInput, prepare_images
from services.gateway.metrics import GatewayMetrics
from services.gateway.outputs import output
from services.gateway.signatures import Signature, require


@dataclass(frozen=True)
class EncodeResult:
    """Row i belongs to input i; errors only when asked for."""

    codes: npt.NDArray[np.float32]
    reconstruction_errors: npt.NDArray[np.float32] | None
    model: ModelVersion


class Encoder:
    """The domain core behind Encode."""

    def __init__(
        self,
        backend: ModelServerClient,
        catalog: ModelCatalog,
        model: str,
        max_batch_size: int,
        limits: ImageLimits,
        metrics: GatewayMetrics,
    ) -> None:
        self._metrics = metrics
        self._backend = backend
        self._catalog = catalog
        self._model = model
        self._max_batch_size = max_batch_size
        self._limits = limits
        self.signatures = VersionedCache(self._load_signatures)

    async def encode(
        self,
        images: Sequence[ImageInput],
        vectors: Sequence[Sequence[float]],
        with_errors: bool,
        pinned: int | None,
        deadline: Deadline,
    ) -> EncodeResult:
        with self._metrics.stage(self._model, "preprocess"):
            batch = await self._inputs(images, vectors, deadline)
        return await self._catalog.on_version(
            self._model,
            pinned,
            deadline,
            lambda version: self._run(version, batch, with_errors, deadline),
        )

    async def _inputs(
        self,
        images: Sequence[ImageInput],
        vectors: Sequence[Sequence[float]],
        deadline: Deadline,
    ) -> npt.NDArray[np.float32]:
        if images and vectors:
            raise errors.InvalidInput("images", "set either images or vectors, not both")
        if images or not vectors:
            return await prepare_images(
                images, "images", self._max_batch_size, self._limits, deadline
            )
        if len(vectors) > self._max_batch_size:
            raise errors.InvalidInput(
                "vectors", f"at most {self._max_batch_size} vectors per request; got {len(vectors)}"
            )
        # Up to max_batch_size x 784 values to check: more than a millisecond of the event loop.
        return await asyncio.to_thread(_prepare_vectors, vectors)

    async def _run(
        self,
        version: int,
        batch: npt.NDArray[np.float32],
        with_errors: bool,
        deadline: Deadline,
    ) -> EncodeResult:
        encode, reconstruct = await self.signatures.get(version, deadline)
        inputs = {"images": batch}
        encode.check_inputs(self._model, inputs)
        coded = await self._backend.predict(self._model, version, "encode", inputs, deadline)
        codes = output(coded.outputs, "codes", self._model)
        if codes.ndim != 2 or len(codes) != len(batch):
            raise errors.ModelContractError(
                f"model {self._model} answered codes of shape {list(codes.shape)}"
            )
        scores = None
        if with_errors:
            reconstruct.check_inputs(self._model, inputs)
            # Only the scores come back: the reconstructions would be 784 floats per image.
            scored = await self._backend.predict(
                self._model, version, "reconstruct", inputs, deadline, outputs=["errors"]
            )
            scores = output(scored.outputs, "errors", self._model, (len(batch),))
            scores = scores.astype(np.float32)
        return EncodeResult(
            codes=codes.astype(np.float32),
            reconstruction_errors=scores,
            model=ModelVersion(self._model, coded.version),
        )

    async def _load_signatures(
        self, version: int, deadline: Deadline
    ) -> tuple[Signature, Signature]:
        signatures = await self._backend.signatures(self._model, version, deadline)
        return (
            require(signatures, self._model, version, "encode"),
            require(signatures, self._model, version, "reconstruct"),
        )


def _prepare_vectors(vectors: Sequence[Sequence[float]]) -> npt.NDArray[np.float32]:
    return np.stack(
        [prepare_raw(vector, f"vectors[{index}].values") for index, vector in enumerate(vectors)]
    )
