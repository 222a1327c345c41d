"""Warm-up requests in TensorFlow Serving's format, shipped inside each model version.

TF Serving replays the version's ``WARMUP_FILE`` (training/contracts/common.py: a TFRecord file
of ``PredictionLog`` records) when it loads a version, before the version serves, so the first
client request does not pay for graph warm-up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from training.contracts.common import WARMUP_FILE, WARMUP_MAX_RECORDS


@dataclass(frozen=True)
class WarmupRequest:
    """One Predict call to replay: a signature and its inputs by alias."""

    signature_name: str
    inputs: Mapping[str, np.ndarray]


def write_warmup_requests(
    version_dir: Path, model_name: str, requests: Sequence[WarmupRequest]
) -> Path:
    """Writes the requests as PredictionLog records into ``version_dir``; returns the file."""
    if not 0 < len(requests) <= WARMUP_MAX_RECORDS:
        raise ValueError(f"need 1 to {WARMUP_MAX_RECORDS} warm-up requests, got {len(requests)}")
    path = version_dir / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for request in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(
                    request=_predict_request(model_name, request)
                )
            )
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(version_dir: Path) -> list[predict_pb2.PredictRequest]:
    """The Predict requests a version's warm-up file holds, in order."""
    requests = []
    for record in tf.data.TFRecordDataset(str(version_dir / WARMUP_FILE)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        requests.append(log.predict_log.request)
    return requests


def _predict_request(model_name: str, request: WarmupRequest) -> predict_pb2.PredictRequest:
    proto = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=request.signature_name)
    )
    for alias, value in request.inputs.items():
        proto.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
    return proto
