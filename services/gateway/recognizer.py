"""Reading handwritten digits with the `cnn` model.

The `cnn` contract (training/contracts/cnn.py): `serving_default`: `images` float32
[-1, 28, 28], MNIST-style in [0, 1] -> `probabilities` float32 [-1, 10], `digits` int64 [-1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from services.gateway.backend import ModelServerClient, Prediction
from services.gateway.catalog import ModelCatalog
from services.gateway.digits import ImageLimits
from services.gateway.domain import Deadline, FloatArray, ModelVersion, Tensors
from services.gateway.flow import Preprocess, SingleCallCore
from services.gateway.images import ImageInput, prepare_images
from services.gateway.metrics import GatewayMetrics
from services.gateway.outputs import output
from services.gateway.signatures import Signature, require
from training.contracts.cnn import (
    DIGITS_OUTPUT,
    IMAGES_INPUT,
    N_DIGITS,
    PROBABILITIES_OUTPUT,
    SERVING_SIGNATURE,
)


@dataclass(frozen=True)
class DigitsResult:
    """Row i belongs to image i."""

    digits: npt.NDArray[np.int64]
    probabilities: FloatArray
    model: ModelVersion


class DigitRecognizer(SingleCallCore[Sequence[ImageInput], FloatArray, Signature, DigitsResult]):
    """The domain core behind RecognizeDigits: the steps of its one model call (flow.py)."""

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
        super().__init__(backend, catalog, metrics, model, SERVING_SIGNATURE, Preprocess.PREPARE)
        self._max_batch_size = max_batch_size
        self._limits = limits

    async def recognize(
        self, images: Sequence[ImageInput], pinned: int | None, deadline: Deadline
    ) -> DigitsResult:
        return await self.run(images, pinned, deadline)

    async def prepare(self, images: Sequence[ImageInput], deadline: Deadline) -> FloatArray:
        return await prepare_images(images, "images", self._max_batch_size, self._limits, deadline)

    def inputs(self, version: int, signature: Signature, batch: FloatArray) -> Tensors:
        inputs = {IMAGES_INPUT: batch}
        signature.check_inputs(self._model, inputs)
        return inputs

    async def outputs(
        self,
        version: int,
        signature: Signature,
        batch: FloatArray,
        prediction: Prediction,
        deadline: Deadline,
    ) -> DigitsResult:
        count = len(batch)
        probabilities = output(
            prediction.outputs, PROBABILITIES_OUTPUT, self._model, (count, N_DIGITS)
        )
        digits = output(prediction.outputs, DIGITS_OUTPUT, self._model, (count,))
        return DigitsResult(
            digits=digits.astype(np.int64),
            probabilities=probabilities.astype(np.float32),
            model=ModelVersion(self._model, prediction.version),
        )

    async def load_schema(self, version: int, deadline: Deadline) -> Signature:
        signatures = await self._backend.signatures(self._model, version, deadline)
        return require(signatures, self._model, version, SERVING_SIGNATURE)
