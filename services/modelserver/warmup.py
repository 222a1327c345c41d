"""Warm-up on load, as TensorFlow Serving does it: a version replays the requests recorded in
``assets.extra/tf_serving_warmup_requests`` (``WARMUP_FILE``, training/contracts/common.py)
before it serves, so no client pays for the first, slow run of each signature. A record that
fails makes the load fail, as it does there.
"""

from __future__ import annotations

import logging
from pathlib import Path

import tensorflow as tf
from google.protobuf import message
from tensorflow.core.protobuf import config_pb2
from tensorflow_serving.apis import prediction_log_pb2

from services.modelserver.errors import ServingError, TensorFlowRuntimeError
from services.modelserver.predict import resolve_signature_name, run_predict
from services.modelserver.servable import Servable, ServableLoadError, load_servable
from training.contracts.common import WARMUP_FILE, WARMUP_MAX_RECORDS

logger = logging.getLogger(__name__)


def load_and_warm_up(
    name: str,
    version: int,
    version_dir: Path,
    *,
    config: config_pb2.ConfigProto | None = None,
    enable_warmup: bool = True,
) -> Servable:
    """The model manager's loader: load the version, then replay its warm-up requests
    (unless --enable_model_warmup=false)."""
    servable = load_servable(name, version, version_dir, config)
    if not enable_warmup:
        return servable
    count = warm_up(servable)
    if count:
        logger.info("Finished warming up %s version %d with %d requests", name, version, count)
    return servable


def warm_up(servable: Servable) -> int:
    """Runs each recorded Predict request once; returns how many ran."""
    path = servable.path / WARMUP_FILE
    if not path.is_file():
        return 0
    count = 0
    for record in tf.data.TFRecordDataset(str(path)):
        count += 1
        if count > WARMUP_MAX_RECORDS:
            raise ServableLoadError(
                tf.errors.INVALID_ARGUMENT,
                f"Number of warmup records exceeds the maximum ({WARMUP_MAX_RECORDS}) at {path}",
            )
        _replay(servable, path, record.numpy())
    return count


def _replay(servable: Servable, path: Path, record: bytes) -> None:
    try:
        log = prediction_log_pb2.PredictionLog.FromString(record)
    except message.DecodeError as exc:
        raise ServableLoadError(
            tf.errors.DATA_LOSS, f"Failed to parse a warmup record at {path}"
        ) from exc
    if log.WhichOneof("log_type") != "predict_log":
        raise ServableLoadError(
            tf.errors.UNIMPLEMENTED,
            f"Unsupported log_type for warmup: {log.WhichOneof('log_type')} at {path}; "
            "this model server replays predict_log records",
        )
    request = log.predict_log.request
    try:
        run_predict(
            servable,
            resolve_signature_name(request.model_spec.signature_name),
            request.inputs,
            request.output_filter,
        )
    except TensorFlowRuntimeError as exc:
        raise ServableLoadError(exc.tf_error_code, f"Failed to warm up: {exc.message}") from exc
    except ServingError as exc:
        raise ServableLoadError(
            tf.errors.INVALID_ARGUMENT, f"Failed to warm up: {exc.message}"
        ) from exc
