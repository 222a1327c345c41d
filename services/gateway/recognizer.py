"""Reading handwritten digits with the `cnn` model.

The `cnn` contract (training/cnn.py): `serving_default`: `images` float32 [-1, 28, 28], MNIST-style
in [0, 1] -> `probabilities` float32 [-1, 10], `digits` int64 [-1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from services.gateway.backend import Deadline, ModelServerClient
from services.gateway.catalog import ModelCatalog, VersionedCache
from services.gateway.classifier import ModelVersion
from services.gateway.digits import ImageLimits
from services.gateway.images import ImageInput, prepare_images
from services.gateway.metrics import GatewayMetrics
from services.gateway.outputs import output
from services.gateway.signatures import Signature, read_signatures, require
from training.contracts.cnn import N_DIGITS
from training.contracts.cnn import SERVING_SIGNATURE as SIGNATURE


@dataclass(frozen=True)
class DigitsResult:
    """Row i belongs to image i."""

    digits: npt.NDArray[np.int64]
    probabilities: npt.NDArray[np.float32]
    model: ModelVersion


class DigitRecognizer:
    """The domain core behind RecognizeDigits."""

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
        self.signatures = VersionedCache(self._load_signature)

    async def recognize(
        self, images: Sequence[ImageInput], pinned: int | None, deadline: Deadline
    ) -> DigitsResult:
        with self._metrics.stage(self._model, "preprocess"):
            batch = await prepare_images(
                images, "images", self._max_batch_size, self._limits, deadline
            )
        return await self._catalog.on_version(
            self._model, pinned, deadline, lambda version: self._run(version, batch, deadline)
        )

    async def _run(
        self, version: int, batch: npt.NDArray[np.float32], deadline: Deadline
    ) -> DigitsResult:
        signature = await self.signatures.get(version, deadline)
        inputs = {"images": batch}
        signature.check_inputs(self._model, inputs)
        prediction = await self._backend.predict(self._model, version, SIGNATURE, inputs, deadline)
        count = len(batch)
        probabilities = output(prediction.outputs, "probabilities", self._model, (count, N_DIGITS))
        digits = output(prediction.outputs, "digits", self._model, (count,))
        return DigitsResult(
            digits=digits.astype(np.int64),
            probabilities=probabilities.astype(np.float32),
            model=ModelVersion(self._model, prediction.version),
        )

    async def _load_signature(self, version: int, deadline: Deadline) -> Signature:
        signature_defs = await self._backend.signature_defs(self._model, version, deadline)
        return require(read_signatures(signature_defs), self._model, version, SIGNATURE)
