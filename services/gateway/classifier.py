"""Wine classification: validate raw measurements, call the classifier, name the classes.

The `classifier` model contract (training/contracts/classifier.py):
- signature `serving_default`: `features` float32 [-1, n] raw measurements -> `probabilities`
  float32 [-1, k] and `class_ids` int64 [-1]; feature scaling happens inside the graph;
- signature `metadata`, `rows` int32 [-1]: `feature_names` string [-1, n], `class_names` string
  [-1, k], the same in every row.
Feature and class names are read per version, so they always match the version that answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from services.common.bounded import shorten
from services.gateway import errors
from services.gateway.backend import ModelServerClient, Prediction
from services.gateway.catalog import ModelCatalog
from services.gateway.domain import Deadline, FloatArray, ModelVersion, Tensors
from services.gateway.flow import Preprocess, SingleCallCore
from services.gateway.metrics import GatewayMetrics
from services.gateway.outputs import METADATA_SIGNATURE, output, read_metadata, strings
from training.contracts.classifier import (
    CLASS_IDS_OUTPUT,
    CLASS_NAMES_METADATA,
    FEATURE_NAMES_METADATA,
    FEATURES_INPUT,
    PROBABILITIES_OUTPUT,
    SERVING_SIGNATURE,
)
from training.contracts.common import FLOAT32_MAX as _FLOAT32_MAX


@dataclass(frozen=True)
class WineSample:
    """One wine's measurements: by feature name, or in the model's feature order."""

    named: Mapping[str, float] | None = None
    ordered: Sequence[float] | None = None


@dataclass(frozen=True)
class ClassifyResult:
    """Classifications of a batch: row i of each array belongs to sample i."""

    class_ids: npt.NDArray[np.int64]
    probabilities: FloatArray
    class_names: tuple[str, ...]
    model: ModelVersion


@dataclass(frozen=True)
class ClassifierSchema:
    """What one classifier version expects and answers."""

    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]

    def to_matrix(self, samples: Sequence[WineSample]) -> FloatArray:
        """Validates the samples and stacks them into the model's float32 input."""
        rows = [self._row(index, sample) for index, sample in enumerate(samples)]
        matrix = np.asarray(rows, dtype=np.float64)
        bad = ~np.isfinite(matrix) | (np.abs(matrix) > _FLOAT32_MAX)
        if bad.any():
            row, column = (int(i) for i in np.argwhere(bad)[0])
            raise errors.InvalidInput(
                self._value_field(row, column, samples[row]),
                f"must be a finite number within float32 range, got {matrix[row, column]!r}",
            )
        return matrix.astype(np.float32)

    def _row(self, index: int, sample: WineSample) -> Sequence[float]:
        if sample.ordered is not None:
            if len(sample.ordered) != len(self.feature_names):
                raise errors.InvalidInput(
                    f"samples[{index}].ordered.values",
                    f"expected {len(self.feature_names)} values in the order "
                    f"{', '.join(self.feature_names)}; got {len(sample.ordered)}",
                )
            return sample.ordered
        if sample.named is not None:
            unknown = sorted(set(sample.named) - set(self.feature_names))
            if unknown:
                raise errors.InvalidInput(
                    f'samples[{index}].named.values["{shorten(unknown[0])}"]',
                    f"unknown feature; expected names are {', '.join(self.feature_names)}",
                )
            missing = [name for name in self.feature_names if name not in sample.named]
            if missing:
                raise errors.InvalidInput(
                    f"samples[{index}].named.values", f"missing features: {', '.join(missing)}"
                )
            return [sample.named[name] for name in self.feature_names]
        raise errors.InvalidInput(f"samples[{index}]", "set either named or ordered features")

    def _value_field(self, row: int, column: int, sample: WineSample) -> str:
        if sample.ordered is not None:
            return f"samples[{row}].ordered.values[{column}]"
        return f'samples[{row}].named.values["{self.feature_names[column]}"]'


class WineClassifier(
    SingleCallCore[Sequence[WineSample], Sequence[WineSample], ClassifierSchema, ClassifyResult]
):
    """The domain core behind the Classify RPC: the steps of its one model call (flow.py)."""

    def __init__(
        self,
        backend: ModelServerClient,
        catalog: ModelCatalog,
        model: str,
        max_batch_size: int,
        metrics: GatewayMetrics,
    ) -> None:
        # Ordering the features takes the version's names, so that is the timed preprocessing.
        super().__init__(backend, catalog, metrics, model, SERVING_SIGNATURE, Preprocess.INPUTS)
        self._max_batch_size = max_batch_size

    async def classify(
        self, samples: Sequence[WineSample], version: int | None, deadline: Deadline
    ) -> ClassifyResult:
        """Classifies a batch with a pinned version, or with the serving version if None."""
        return await self.run(samples, version, deadline)

    async def prepare(
        self, samples: Sequence[WineSample], deadline: Deadline
    ) -> Sequence[WineSample]:
        if not samples:
            raise errors.InvalidInput("samples", "at least one sample is required")
        if len(samples) > self._max_batch_size:
            raise errors.InvalidInput(
                "samples", f"at most {self._max_batch_size} samples per request; got {len(samples)}"
            )
        return samples

    def inputs(
        self, version: int, schema: ClassifierSchema, samples: Sequence[WineSample]
    ) -> Tensors:
        return {FEATURES_INPUT: schema.to_matrix(samples)}

    async def outputs(
        self,
        version: int,
        schema: ClassifierSchema,
        samples: Sequence[WineSample],
        prediction: Prediction,
        deadline: Deadline,
    ) -> ClassifyResult:
        probabilities = output(prediction.outputs, PROBABILITIES_OUTPUT, self._model)
        class_ids = output(prediction.outputs, CLASS_IDS_OUTPUT, self._model)
        expected = (len(samples), len(schema.class_names))
        if probabilities.shape != expected or class_ids.shape != expected[:1]:
            raise errors.ModelContractError(
                f"model {self._model} version {version} answered {PROBABILITIES_OUTPUT} of shape "
                f"{probabilities.shape} and {CLASS_IDS_OUTPUT} of shape {class_ids.shape}; "
                f"expected {expected}"
            )
        if ((class_ids < 0) | (class_ids >= len(schema.class_names))).any():
            raise errors.ModelContractError(
                f"model {self._model} version {version} answered a class id outside "
                f"0..{len(schema.class_names) - 1}"
            )
        return ClassifyResult(
            class_ids=class_ids.astype(np.int64),
            probabilities=probabilities.astype(np.float32),
            class_names=schema.class_names,
            model=ModelVersion(self._model, prediction.version),
        )

    async def load_schema(self, version: int, deadline: Deadline) -> ClassifierSchema:
        signatures = await self._backend.signatures(self._model, version, deadline)
        where = f"model {self._model} version {version}"
        serving = signatures.get(SERVING_SIGNATURE)
        if serving is None or FEATURES_INPUT not in serving.inputs:
            raise errors.ModelContractError(f"{where} has no {SERVING_SIGNATURE}/{FEATURES_INPUT}")
        features = serving.inputs[FEATURES_INPUT]
        dims = features.shape or ()  # None: a shape of unknown rank
        if features.dtype != "float32" or len(dims) != 2:
            raise errors.ModelContractError(f"{where}: {FEATURES_INPUT} must be float32 [-1, n]")
        if METADATA_SIGNATURE not in signatures:
            raise errors.ModelContractError(f"{where} has no {METADATA_SIGNATURE} signature")
        metadata = await read_metadata(self._backend, self._model, version, deadline)
        feature_names = strings(output(metadata, FEATURE_NAMES_METADATA, self._model))
        class_names = strings(output(metadata, CLASS_NAMES_METADATA, self._model))
        if dims[1] not in (-1, len(feature_names)):
            raise errors.ModelContractError(
                f"{where} takes {dims[1]} features but names {len(feature_names)}"
            )
        return ClassifierSchema(feature_names=feature_names, class_names=class_names)
