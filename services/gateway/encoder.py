"""Latent codes and anomaly scores from the `autoencoder` model.

The `autoencoder` contract (training/contracts/autoencoder.py):
- `encode`: `images` float32 [-1, 28, 28] -> `codes` float32 [-1, 32];
- `reconstruct`: `images` -> `reconstructions` float32 [-1, 28, 28], `errors` float32 [-1]
  (mean squared error per pixel: an anomaly score).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.gateway import errors
from services.gateway.backend import ModelServerClient, Prediction
from services.gateway.catalog import ModelCatalog
from services.gateway.digits import ImageLimits, prepare_raw
from services.gateway.domain import Deadline, FloatArray, ModelVersion, Tensors
from services.gateway.flow import Preprocess, SingleCallCore
from services.gateway.images import ImageInput, prepare_images
from services.gateway.metrics import GatewayMetrics
from services.gateway.outputs import output
from services.gateway.signatures import Signature, require
from training.contracts.autoencoder import (
    CODES_OUTPUT,
    ENCODE_SIGNATURE,
    ERRORS_OUTPUT,
    IMAGES_INPUT,
    RECONSTRUCT_SIGNATURE,
)


@dataclass(frozen=True)
class EncodeResult:
    """Row i belongs to input i; errors only when asked for."""

    codes: FloatArray
    reconstruction_errors: FloatArray | None
    model: ModelVersion


# What the transport hands over: images, or raw vectors, and whether to score them too.
EncodeRequest = tuple[Sequence[ImageInput], Sequence[Sequence[float]], bool]
# The prepared batch, and whether to score it.
Batch = tuple[FloatArray, bool]
# The version's `encode` and `reconstruct` signatures.
Signatures = tuple[Signature, Signature]


class Encoder(SingleCallCore[EncodeRequest, Batch, Signatures, EncodeResult]):
    """The domain core behind Encode: the steps of its model call (flow.py), and of the
    reconstruction that scores the batch when asked."""

    def __init__(
        self,
        backend: ModelServerClient,
        catalog: ModelCatalog,
        model: str,
        max_batch_size: int,
        limits: ImageLimits,
        metrics: GatewayMetrics,
    ) -> None:
        # Pictures are decoded before a version is pinned: that needs no version.
        super().__init__(backend, catalog, metrics, model, ENCODE_SIGNATURE, Preprocess.PREPARE)
        self._max_batch_size = max_batch_size
        self._limits = limits

    async def encode(
        self,
        images: Sequence[ImageInput],
        vectors: Sequence[Sequence[float]],
        with_errors: bool,
        pinned: int | None,
        deadline: Deadline,
    ) -> EncodeResult:
        return await self.run((images, vectors, with_errors), pinned, deadline)

    async def prepare(self, request: EncodeRequest, deadline: Deadline) -> Batch:
        images, vectors, with_errors = request
        if images and vectors:
            raise errors.InvalidInput("images", "set either images or vectors, not both")
        if images or not vectors:
            batch = await prepare_images(
                images, "images", self._max_batch_size, self._limits, deadline
            )
            return batch, with_errors
        if len(vectors) > self._max_batch_size:
            raise errors.InvalidInput(
                "vectors", f"at most {self._max_batch_size} vectors per request; got {len(vectors)}"
            )
        # Up to max_batch_size x 784 values to check: more than a millisecond of the event loop.
        return await asyncio.to_thread(_prepare_vectors, vectors), with_errors

    def inputs(self, version: int, signatures: Signatures, batch: Batch) -> Tensors:
        inputs = {IMAGES_INPUT: batch[0]}
        signatures[0].check_inputs(self._model, inputs)
        return inputs

    async def outputs(
        self,
        version: int,
        signatures: Signatures,
        batch: Batch,
        coded: Prediction,
        deadline: Deadline,
    ) -> EncodeResult:
        rows, with_errors = batch
        codes = output(coded.outputs, CODES_OUTPUT, self._model)
        if codes.ndim != 2 or len(codes) != len(rows):
            raise errors.ModelContractError(
                f"model {self._model} answered {CODES_OUTPUT} of shape {list(codes.shape)}"
            )
        scores = None
        if with_errors:
            inputs = {IMAGES_INPUT: rows}
            signatures[1].check_inputs(self._model, inputs)
            # Only the scores come back: the reconstructions would be 784 floats per image.
            scored = await self._backend.predict(
                self._model,
                version,
                RECONSTRUCT_SIGNATURE,
                inputs,
                deadline,
                outputs=[ERRORS_OUTPUT],
            )
            scores = output(scored.outputs, ERRORS_OUTPUT, self._model, (len(rows),))
            scores = scores.astype(np.float32)
        return EncodeResult(
            codes=codes.astype(np.float32),
            reconstruction_errors=scores,
            model=ModelVersion(self._model, coded.version),
        )

    async def load_schema(self, version: int, deadline: Deadline) -> Signatures:
        signatures = await self._backend.signatures(self._model, version, deadline)
        return (
            require(signatures, self._model, version, ENCODE_SIGNATURE),
            require(signatures, self._model, version, RECONSTRUCT_SIGNATURE),
        )


def _prepare_vectors(vectors: Sequence[Sequence[float]]) -> FloatArray:
    return np.stack(
        [prepare_raw(vector, f"vectors[{index}].values") for index, vector in enumerate(vectors)]
    )
