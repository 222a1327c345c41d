"""Exporting a trained model as a TF Serving version: signatures, warm-up requests, metrics.

Exports go through Keras's ExportArchive, which tracks only what the endpoints need (not the
optimizer), so every export also loads as a session over the bundle, the way TensorFlow Serving
and ``services/modelserver`` load it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from training.contracts.common import METADATA_ROWS_INPUT, METADATA_SIGNATURE
from training.publish import PublishedVersion, publish_version
from training.warmup import WarmupRequest, write_warmup_requests

METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class Endpoint:
    """One serving signature: its name, the function, and the TensorSpecs of its inputs."""

    name: str
    function: Callable[..., dict[str, tf.Tensor]]
    input_signature: Sequence[tf.TensorSpec]


def metadata_endpoint(constants: Mapping[str, tf.Tensor]) -> Endpoint:
    """The ``metadata`` signature of training/contracts/common.py: ``rows`` int32 [-1] (values
    unused) -> every constant once per row, [-1, ...].

    A signature without inputs, or with scalar inputs or outputs, fails under TensorFlow
    Serving's batching (every input and output needs the batch in its 0th dimension), so the
    metadata batches like any other signature: a client sends one row and reads row 0.
    """

    def metadata(rows: tf.Tensor) -> dict[str, tf.Tensor]:
        count = tf.shape(rows)[0]
        return {
            name: tf.repeat(value[tf.newaxis], count, axis=0) for name, value in constants.items()
        }

    return Endpoint(
        METADATA_SIGNATURE, metadata, [tf.TensorSpec([None], tf.int32, name=METADATA_ROWS_INPUT)]
    )


def metadata_warmup() -> WarmupRequest:
    return WarmupRequest(METADATA_SIGNATURE, {METADATA_ROWS_INPUT: np.zeros(1, np.int32)})


def export_endpoints(
    path: Path, tracked: Sequence[keras.Layer | tf.Module], endpoints: Sequence[Endpoint]
) -> None:
    """Writes a SavedModel at ``path`` with exactly these signatures.

    ``tracked`` holds what the functions use: Keras models and layers, or TF resources such as
    lookup tables. The first endpoint also answers as ``serving_default`` unless one is named so.
    """
    archive = keras.export.ExportArchive()
    for item in tracked:
        archive.track(item)
    for endpoint in endpoints:
        archive.add_endpoint(
            endpoint.name, endpoint.function, input_signature=list(endpoint.input_signature)
        )
    archive.write_out(str(path), verbose=False)


def publish_model(
    models_dir: Path,
    model_name: str,
    export: Callable[[Path], None],
    metrics: Callable[[int], dict[str, Any]],
    warmup: Sequence[WarmupRequest],
) -> PublishedVersion:
    """Publishes the next version of ``model_name`` atomically: the SavedModel, its warm-up
    requests and ``metrics.json`` (``metrics`` gets the version number being written)."""

    def write(directory: Path, version: int) -> None:
        export(directory)
        write_warmup_requests(directory, model_name, warmup)
        text = json.dumps(metrics(version), indent=2) + "\n"
        (directory / METRICS_FILE).write_text(text)

    return publish_version(models_dir / model_name, write)
