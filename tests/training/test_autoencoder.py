"""The MNIST autoencoder: error against PCA, metrics.json, reports, and the export's contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from saved_models import signature_defs, tensor_spec

from services.modelserver.servable import load_servable
from training.autoencoder import TrainResult
from training.contracts.common import WARMUP_FILE
from training.mnist import load_mnist_split
from training.warmup import read_warmup_requests

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LATENT_DIM = 32
SIGNATURES = ("serving_default", "encode", "reconstruct")


@pytest.fixture(scope="module")
def loaded(autoencoder_training: TrainResult) -> Any:
    return tf.saved_model.load(str(autoencoder_training.published.path))


@pytest.fixture(scope="module")
def expected(autoencoder_training: TrainResult) -> dict[str, np.ndarray]:
    """What the in-memory models give for the test images."""
    x_test = autoencoder_training.split.x_test
    reconstructions = autoencoder_training.model.predict(x_test, verbose=0)
    return {
        "codes": autoencoder_training.encoder.predict(x_test, verbose=0),
        "reconstructions": reconstructions,
        "errors": np.mean(np.square(reconstructions - x_test), axis=(1, 2)),
    }


def test_published_as_a_version(autoencoder_training: TrainResult) -> None:
    version_dir = autoencoder_training.published.path
    assert version_dir.parent.name == "autoencoder"
    assert version_dir.name == str(autoencoder_training.published.version)
    assert (version_dir / "saved_model.pb").is_file()


def test_trained_on_the_shared_mnist_split(autoencoder_training: TrainResult) -> None:
    split = load_mnist_split()
    np.testing.assert_array_equal(autoencoder_training.split.x_train, split.x_train)
    np.testing.assert_array_equal(autoencoder_training.split.x_test, split.x_test)


def test_quick_profile_reconstructs_better_than_pca(autoencoder_training: TrainResult) -> None:
    metrics = autoencoder_training.metrics
    # Measured: about 0.009 against PCA's 0.0172, a ratio near 0.53.
    assert 0.014 <= metrics.peer.test_mse <= 0.021
    assert metrics.test_mse <= 0.8 * metrics.peer.test_mse
    assert metrics.ratio == pytest.approx(metrics.test_mse / metrics.peer.test_mse)


def test_metrics_json(autoencoder_training: TrainResult, expected: dict[str, np.ndarray]) -> None:
    version_dir = autoencoder_training.published.path
    metrics = json.loads((version_dir / "metrics.json").read_text())

    assert metrics == autoencoder_training.metrics_dict()
    assert set(metrics) == {
        "model",
        "version",
        "profile",
        "test_mse",
        "peer",
        "ratio",
        "latent_dim",
        "n_train",
        "n_test",
        "epochs",
        "train_seconds",
        "created",
        "seed",
    }
    assert metrics["model"] == "autoencoder"
    assert metrics["version"] == int(version_dir.name)
    assert metrics["profile"] == "quick"
    assert metrics["peer"]["name"] == "pca_32"
    assert 0 < metrics["test_mse"] < metrics["peer"]["test_mse"]
    assert metrics["test_mse"] == pytest.approx(float(np.mean(expected["errors"])), rel=1e-4)
    assert 0 < metrics["ratio"] < 1
    assert metrics["latent_dim"] == LATENT_DIM
    assert (metrics["n_train"], metrics["n_test"]) == (4000, 1000)
    assert metrics["epochs"] > 0
    assert metrics["train_seconds"] > 0
    assert datetime.fromisoformat(metrics["created"]).utcoffset() == UTC.utcoffset(None)
    assert metrics["seed"] == 0


def test_signature_defs_match_the_contract(autoencoder_training: TrainResult) -> None:
    signatures = signature_defs(autoencoder_training.published.path)

    images = {"images": (tf.float32, [-1, 28, 28])}
    for name in ("serving_default", "encode"):
        assert {key: tensor_spec(info) for key, info in signatures[name].inputs.items()} == images
        assert {key: tensor_spec(info) for key, info in signatures[name].outputs.items()} == {
            "codes": (tf.float32, [-1, LATENT_DIM])
        }
    reconstruct = signatures["reconstruct"]
    assert {key: tensor_spec(info) for key, info in reconstruct.inputs.items()} == images
    assert {key: tensor_spec(info) for key, info in reconstruct.outputs.items()} == {
        "reconstructions": (tf.float32, [-1, 28, 28]),
        "errors": (tf.float32, [-1]),
    }


def test_export_round_trip(
    autoencoder_training: TrainResult, loaded: Any, expected: dict[str, np.ndarray]
) -> None:
    images = tf.constant(autoencoder_training.split.x_test, tf.float32)

    for name in ("serving_default", "encode"):
        codes = loaded.signatures[name](images=images)["codes"].numpy()
        np.testing.assert_allclose(codes, expected["codes"], atol=1e-5)
    outputs = loaded.signatures["reconstruct"](images=images)
    np.testing.assert_allclose(
        outputs["reconstructions"].numpy(), expected["reconstructions"], atol=1e-5
    )
    np.testing.assert_allclose(outputs["errors"].numpy(), expected["errors"], atol=1e-5)


def test_decoder_turns_codes_into_the_reconstructions(
    autoencoder_training: TrainResult, expected: dict[str, np.ndarray]
) -> None:
    decoded = autoencoder_training.decoder.predict(expected["codes"], verbose=0)
    np.testing.assert_allclose(decoded, expected["reconstructions"], atol=1e-5)


def test_errors_score_anomalies(loaded: Any, autoencoder_training: TrainResult) -> None:
    digits = autoencoder_training.split.x_test[:100]
    noise = np.random.default_rng(0).uniform(size=(100, 28, 28)).astype(np.float32)

    digit_errors = loaded.signatures["reconstruct"](images=tf.constant(digits))["errors"].numpy()
    noise_errors = loaded.signatures["reconstruct"](images=tf.constant(noise))["errors"].numpy()

    assert noise_errors.min() > digit_errors.max()


def test_export_loads_as_a_session_bundle_like_tensorflow_serving(
    autoencoder_training: TrainResult, expected: dict[str, np.ndarray]
) -> None:
    # TensorFlow Serving runs a SavedModel as a graph in a session, not through its object graph.
    published = autoencoder_training.published
    servable = load_servable("autoencoder", published.version, published.path)
    signatures = servable.signature_def_map.signature_def
    x_test = autoencoder_training.split.x_test.astype(np.float32)

    for name in ("serving_default", "encode"):
        signature = signatures[name]
        (codes,) = servable.run(
            {signature.inputs["images"].name: x_test}, [signature.outputs["codes"].name]
        )
        np.testing.assert_allclose(codes, expected["codes"], atol=1e-5)
    reconstruct = signatures["reconstruct"]
    reconstructions, errors = servable.run(
        {reconstruct.inputs["images"].name: x_test},
        [reconstruct.outputs["reconstructions"].name, reconstruct.outputs["errors"].name],
    )
    np.testing.assert_allclose(reconstructions, expected["reconstructions"], atol=1e-5)
    np.testing.assert_allclose(errors, expected["errors"], atol=1e-5)


def test_warmup_requests_run(autoencoder_training: TrainResult, loaded: Any) -> None:
    version_dir = autoencoder_training.published.path
    assert (version_dir / WARMUP_FILE).is_file()

    requests = read_warmup_requests(version_dir)

    assert {request.model_spec.name for request in requests} == {"autoencoder"}
    sizes: dict[str, set[int]] = {}
    for request in requests:
        name = request.model_spec.signature_name
        assert set(request.inputs) == {"images"}
        images = tf.make_ndarray(request.inputs["images"])
        assert images.dtype == np.float32
        assert images.shape[1:] == (28, 28)
        outputs = loaded.signatures[name](images=tf.constant(images))
        assert all(output.shape[0] == len(images) for output in outputs.values())
        sizes.setdefault(name, set()).add(len(images))
    # Every signature, with a single image and with a batch.
    assert set(sizes) == set(SIGNATURES)
    for batch_sizes in sizes.values():
        assert 1 in batch_sizes
        assert max(batch_sizes) > 1


def test_reports_hold_tensorboard_logs_and_pictures(autoencoder_training: TrainResult) -> None:
    directory = autoencoder_training.reports.directory
    assert directory.parent.name == "autoencoder"
    events = list((directory / "tensorboard").rglob("events.out.tfevents.*"))
    assert {event.parent.name for event in events} == {"train", "validation"}
    for picture in ("training_curves.png", "reconstructions.png"):
        assert (directory / picture).read_bytes().startswith(PNG_MAGIC)
