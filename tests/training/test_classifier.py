"""The wine classifier: accuracy, metrics.json, and the exported SavedModel's contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow as tf
from saved_models import signature_defs, tensor_spec
from sklearn.datasets import load_wine

from services.modelserver.servable import load_servable
from training.classifier import QUICK, TrainResult
from training.warmup import read_warmup_requests

N_FEATURES = 13
N_CLASSES = 3


def test_published_as_version_one(
    classifier_models_dir: Path, classifier_training: TrainResult
) -> None:
    version_dir = classifier_models_dir / "classifier" / "1"
    assert classifier_training.published.path == version_dir
    assert (version_dir / "saved_model.pb").is_file()


def test_quick_profile_accuracy(classifier_training: TrainResult) -> None:
    assert classifier_training.metrics.test_accuracy >= 0.95


def test_metrics_json(classifier_training: TrainResult) -> None:
    version_dir = classifier_training.published.path
    metrics = json.loads((version_dir / "metrics.json").read_text())

    assert metrics == classifier_training.metrics_dict()
    assert metrics["model"] == "classifier"
    assert metrics["version"] == int(version_dir.name)
    assert metrics["profile"] == "quick"
    assert metrics["test_accuracy"] >= 0.95
    assert metrics["peer"]["name"] == "logistic_regression"
    assert 0.0 <= metrics["peer"]["test_accuracy"] <= 1.0
    assert metrics["seed"] == QUICK.seed
    assert (metrics["n_train"], metrics["n_test"]) == (124, 54)
    assert metrics["epochs"] > 0
    assert metrics["train_seconds"] > 0


def test_signature_defs_match_the_contract(classifier_models_dir: Path) -> None:
    signatures = signature_defs(classifier_models_dir / "classifier" / "1")

    serving = signatures["serving_default"]
    assert {name: tensor_spec(info) for name, info in serving.inputs.items()} == {
        "features": (tf.float32, [-1, N_FEATURES])
    }
    assert {name: tensor_spec(info) for name, info in serving.outputs.items()} == {
        "probabilities": (tf.float32, [-1, N_CLASSES]),
        "class_ids": (tf.int64, [-1]),
    }

    metadata = signatures["metadata"]
    # The batch in the 0th dimension of every input and output, as TensorFlow Serving's
    # batching needs.
    assert {name: tensor_spec(info) for name, info in metadata.inputs.items()} == {
        "rows": (tf.int32, [-1])
    }
    assert {name: tensor_spec(info) for name, info in metadata.outputs.items()} == {
        "feature_names": (tf.string, [-1, N_FEATURES]),
        "class_names": (tf.string, [-1, N_CLASSES]),
    }


def test_export_round_trip(classifier_training: TrainResult) -> None:
    loaded = tf.saved_model.load(str(classifier_training.published.path))
    x_test = classifier_training.split.x_test

    outputs = loaded.signatures["serving_default"](features=tf.constant(x_test, tf.float32))

    expected = classifier_training.model.predict(x_test, verbose=0)
    probabilities = outputs["probabilities"].numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert outputs["class_ids"].dtype == tf.int64
    np.testing.assert_array_equal(outputs["class_ids"].numpy(), np.argmax(probabilities, axis=1))


def test_metadata_signature_names(classifier_models_dir: Path) -> None:
    loaded = tf.saved_model.load(str(classifier_models_dir / "classifier" / "1"))

    outputs = loaded.signatures["metadata"](rows=tf.constant([0, 0]))

    wine = load_wine()
    assert outputs["feature_names"].shape == (2, N_FEATURES)
    feature_names = [name.decode() for name in outputs["feature_names"].numpy()[0]]
    class_names = [name.decode() for name in outputs["class_names"].numpy()[1]]
    assert feature_names == list(wine.feature_names)
    assert "od280/od315_of_diluted_wines" in feature_names
    assert class_names == ["class_0", "class_1", "class_2"]


def test_export_loads_as_a_session_bundle_like_tensorflow_serving(
    classifier_training: TrainResult,
) -> None:
    # TensorFlow Serving runs a SavedModel as a graph in a session, not through its object graph;
    # an export that only tf.saved_model.load can read would fail there.
    servable = load_servable("classifier", 1, classifier_training.published.path)
    serving = servable.signature_def_map.signature_def["serving_default"]
    x_test = classifier_training.split.x_test.astype(np.float32)

    (probabilities,) = servable.run(
        {serving.inputs["features"].name: x_test}, [serving.outputs["probabilities"].name]
    )

    expected = classifier_training.model.predict(x_test, verbose=0)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_warmup_requests_run_on_the_export(classifier_training: TrainResult) -> None:
    version_dir = classifier_training.published.path
    requests = read_warmup_requests(version_dir)
    assert {request.model_spec.signature_name for request in requests} == {
        "serving_default",
        "metadata",
    }
    loaded = tf.saved_model.load(str(version_dir))
    for request in requests:
        inputs = {alias: tf.make_ndarray(proto) for alias, proto in request.inputs.items()}
        outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
        assert outputs


def test_reports_hold_tensorboard_logs_and_training_curves(
    classifier_training: TrainResult,
) -> None:
    directory = classifier_training.reports.directory
    assert (directory / "training_curves.png").read_bytes().startswith(b"\x89PNG")
    assert list((directory / "tensorboard").rglob("events.out.tfevents.*"))
