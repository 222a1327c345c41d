"""The MNIST CNN: accuracy against its peer, metrics.json, reports, and the export's contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from saved_models import signature_defs, tensor_spec

from services.modelserver.servable import load_servable
from training.cnn import TrainResult
from training.contracts.common import WARMUP_FILE
from training.mnist import load_mnist_split
from training.warmup import read_warmup_requests

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def loaded(cnn_training: TrainResult) -> Any:
    return tf.saved_model.load(str(cnn_training.published.path))


@pytest.fixture(scope="module")
def expected_probabilities(cnn_training: TrainResult) -> np.ndarray:
    result: np.ndarray = cnn_training.model.predict(cnn_training.split.x_test, verbose=0)
    return result


def test_published_as_a_version(cnn_training: TrainResult) -> None:
    version_dir = cnn_training.published.path
    assert version_dir.parent.name == "cnn"
    assert version_dir.name == str(cnn_training.published.version)
    assert (version_dir / "saved_model.pb").is_file()


def test_trained_on_the_shared_mnist_split(cnn_training: TrainResult) -> None:
    split = load_mnist_split()
    np.testing.assert_array_equal(cnn_training.split.x_test, split.x_test)
    np.testing.assert_array_equal(cnn_training.split.y_train, split.y_train)


def test_quick_profile_clearly_beats_logistic_regression(cnn_training: TrainResult) -> None:
    metrics = cnn_training.metrics
    # Measured: about 0.98 against the peer's 0.906 on the 1,000 test digits.
    assert metrics.test_accuracy >= 0.96
    assert 0.85 <= metrics.peer.test_accuracy <= 0.95
    assert metrics.test_accuracy >= metrics.peer.test_accuracy + 0.03


def test_metrics_json(cnn_training: TrainResult) -> None:
    version_dir = cnn_training.published.path
    metrics = json.loads((version_dir / "metrics.json").read_text())

    assert metrics == cnn_training.metrics_dict()
    assert set(metrics) == {
        "model",
        "version",
        "profile",
        "test_accuracy",
        "peer",
        "n_train",
        "n_test",
        "epochs",
        "train_seconds",
        "created",
        "seed",
    }
    assert metrics["model"] == "cnn"
    assert metrics["version"] == int(version_dir.name)
    assert metrics["profile"] == "quick"
    assert metrics["peer"]["name"] == "logistic_regression"
    assert metrics["peer"]["test_accuracy"] < metrics["test_accuracy"] <= 1.0
    assert (metrics["n_train"], metrics["n_test"]) == (4000, 1000)
    assert metrics["epochs"] > 0
    assert metrics["train_seconds"] > 0
    assert datetime.fromisoformat(metrics["created"]).utcoffset() == UTC.utcoffset(None)
    assert metrics["seed"] == 0


def test_signature_defs_match_the_contract(cnn_training: TrainResult) -> None:
    signatures = signature_defs(cnn_training.published.path)

    assert "serving_default" in signatures
    serving = signatures["serving_default"]
    assert {name: tensor_spec(info) for name, info in serving.inputs.items()} == {
        "images": (tf.float32, [-1, 28, 28])
    }
    assert {name: tensor_spec(info) for name, info in serving.outputs.items()} == {
        "probabilities": (tf.float32, [-1, 10]),
        "digits": (tf.int64, [-1]),
    }


def test_export_round_trip(
    cnn_training: TrainResult, loaded: Any, expected_probabilities: np.ndarray
) -> None:
    x_test = cnn_training.split.x_test

    outputs = loaded.signatures["serving_default"](images=tf.constant(x_test, tf.float32))

    probabilities = outputs["probabilities"].numpy()
    np.testing.assert_allclose(probabilities, expected_probabilities, atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert outputs["digits"].dtype == tf.int64
    np.testing.assert_array_equal(outputs["digits"].numpy(), np.argmax(probabilities, axis=1))
    accuracy = float(np.mean(outputs["digits"].numpy() == cnn_training.split.y_test))
    assert accuracy == pytest.approx(cnn_training.metrics.test_accuracy, abs=1e-9)


def test_export_loads_as_a_session_bundle_like_tensorflow_serving(
    cnn_training: TrainResult, expected_probabilities: np.ndarray
) -> None:
    # TensorFlow Serving runs a SavedModel as a graph in a session, not through its object graph.
    published = cnn_training.published
    servable = load_servable("cnn", published.version, published.path)
    serving = servable.signature_def_map.signature_def["serving_default"]
    x_test = cnn_training.split.x_test.astype(np.float32)

    probabilities, digits = servable.run(
        {serving.inputs["images"].name: x_test},
        [serving.outputs["probabilities"].name, serving.outputs["digits"].name],
    )

    np.testing.assert_allclose(probabilities, expected_probabilities, atol=1e-5)
    assert digits.dtype == np.int64
    np.testing.assert_array_equal(digits, np.argmax(expected_probabilities, axis=1))


def test_warmup_requests_run(cnn_training: TrainResult, loaded: Any) -> None:
    version_dir = cnn_training.published.path
    assert (version_dir / WARMUP_FILE).is_file()

    requests = read_warmup_requests(version_dir)

    assert [request.model_spec.name for request in requests] == ["cnn", "cnn"]
    assert [request.model_spec.signature_name for request in requests] == ["serving_default"] * 2
    batch_sizes = []
    for request in requests:
        assert set(request.inputs) == {"images"}
        images = tf.make_ndarray(request.inputs["images"])
        assert images.dtype == np.float32
        assert images.shape[1:] == (28, 28)
        outputs = loaded.signatures[request.model_spec.signature_name](images=tf.constant(images))
        assert outputs["probabilities"].shape == (len(images), 10)
        batch_sizes.append(len(images))
    assert batch_sizes[0] == 1
    assert batch_sizes[1] > 1


def test_reports_hold_tensorboard_logs_and_pictures(cnn_training: TrainResult) -> None:
    directory = cnn_training.reports.directory
    assert directory.parent.name == "cnn"
    events = list((directory / "tensorboard").rglob("events.out.tfevents.*"))
    assert {event.parent.name for event in events} == {"train", "validation"}
    for picture in ("training_curves.png", "test_predictions.png"):
        assert (directory / picture).read_bytes().startswith(PNG_MAGIC)
