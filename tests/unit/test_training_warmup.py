"""Warm-up requests are written in TF Serving's format and read back unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from training.contracts.common import WARMUP_FILE
from training.warmup import WarmupRequest, read_warmup_requests, write_warmup_requests


def test_round_trip(tmp_path: Path) -> None:
    images = np.random.default_rng(0).random((2, 28, 28), dtype=np.float32)
    words = np.array([b"king", b"queen"])
    path = write_warmup_requests(
        tmp_path,
        "model",
        [
            WarmupRequest("serving_default", {"images": images}),
            WarmupRequest("similar", {"words": words, "k": np.int32(5)}),
            WarmupRequest("metadata", {}),
        ],
    )

    assert path == tmp_path / "assets.extra" / "tf_serving_warmup_requests"
    requests = read_warmup_requests(tmp_path)
    assert [r.model_spec.signature_name for r in requests] == [
        "serving_default",
        "similar",
        "metadata",
    ]
    assert {r.model_spec.name for r in requests} == {"model"}
    np.testing.assert_array_equal(tf.make_ndarray(requests[0].inputs["images"]), images)
    np.testing.assert_array_equal(tf.make_ndarray(requests[1].inputs["words"]), words)
    assert tf.make_ndarray(requests[1].inputs["k"]) == 5
    assert len(requests[2].inputs) == 0


def test_records_are_prediction_logs_as_tf_serving_reads_them(tmp_path: Path) -> None:
    write_warmup_requests(tmp_path, "m", [WarmupRequest("s", {"x": np.ones(3, np.float32)})])
    records = list(tf.data.TFRecordDataset(str(tmp_path / WARMUP_FILE)))
    assert len(records) == 1
    log = prediction_log_pb2.PredictionLog.FromString(records[0].numpy())
    assert log.WhichOneof("log_type") == "predict_log"
    assert log.predict_log.request.model_spec.signature_name == "s"


@pytest.mark.parametrize("count", [0, 1001])
def test_count_outside_what_tf_serving_reads_is_refused(tmp_path: Path, count: int) -> None:
    request = WarmupRequest("s", {"x": np.ones(1, np.float32)})
    with pytest.raises(ValueError, match="warm-up requests"):
        write_warmup_requests(tmp_path, "m", [request] * count)
