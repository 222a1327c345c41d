"""MNIST autoencoder: a convolutional Keras autoencoder with a 32-number code, for TF Serving.

Learned on the same 4,000 training digits as the CNN (``training.mnist``). Its peer is PCA with 32
components fitted on the same images in the same run: the autoencoder must reconstruct the 1,000
test digits with a lower mean squared error per pixel. The export's signatures, ``encode`` (also
``serving_default``) and ``reconstruct``, are a contract the gateway relies on:
training/contracts/autoencoder.py describes them and names their tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from training.contracts.autoencoder import (
    CODES_OUTPUT,
    ENCODE_SIGNATURE,
    ERRORS_OUTPUT,
    IMAGES_INPUT,
    MODEL_NAME,
    RECONSTRUCT_SIGNATURE,
    RECONSTRUCTIONS_OUTPUT,
    SERVING_SIGNATURE,
)
from training.contracts.common import IMAGE_SIZE
from training.export import Endpoint, export_endpoints
from training.job import JobRun, RunMetrics, RunResult
from training.jobs import RunOptions, profile_config
from training.mnist import MnistSplit, load_mnist_split
from training.runtime import select_strategy
from training.warmup import WarmupRequest

RECONSTRUCTIONS_PICTURE = "reconstructions.png"
WARMUP_BATCH = 64


@dataclass(frozen=True)
class AutoencoderConfig:
    """Everything that decides what a training run learns."""

    profile: str
    epochs: int
    learning_rate: float
    latent_dim: int = 32
    conv_filters: tuple[int, int] = (32, 64)
    batch_size: int = 64
    seed: int = 0


QUICK = AutoencoderConfig(profile="quick", epochs=10, learning_rate=0.002)
FULL = AutoencoderConfig(profile="full", epochs=60, learning_rate=0.002)
PROFILES = (QUICK, FULL)


@dataclass(frozen=True)
class PeerMetrics:
    name: str
    test_mse: float


@dataclass(frozen=True, kw_only=True)
class AutoencoderMetrics(RunMetrics):
    """What goes into ``metrics.json`` inside the published version, beside the run's fields."""

    test_mse: float
    peer: PeerMetrics
    ratio: float  # test_mse / peer.test_mse: below 1 beats PCA
    latent_dim: int
    n_train: int
    n_test: int


@dataclass(frozen=True)
class AutoencoderModels:
    """The trained network and its two halves, sharing their weights."""

    encoder: keras.Model
    decoder: keras.Model
    autoencoder: keras.Model


@dataclass(frozen=True, kw_only=True)
class TrainResult(RunResult[AutoencoderMetrics]):
    """A finished run: the in-memory models, its data, its metrics and where it was published.

    ``model`` is the whole autoencoder (images in, reconstructions out); ``encoder`` and
    ``decoder`` are its halves, with the same weights.
    """

    model: keras.Model
    encoder: keras.Model
    decoder: keras.Model
    split: MnistSplit


def build_models(config: AutoencoderConfig, steps_per_epoch: int) -> AutoencoderModels:
    """Two strided convolutions down to a dense 32-number code, and their mirror image back."""
    first, second = config.conv_filters
    reduced = IMAGE_SIZE // 4  # two stride-2 steps: 28 -> 14 -> 7

    images = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE), dtype="float32", name=IMAGES_INPUT)
    hidden = keras.layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1), name="add_channel")(images)
    hidden = keras.layers.Conv2D(first, 3, 2, "same", activation="relu", name="conv_0")(hidden)
    hidden = keras.layers.Conv2D(second, 3, 2, "same", activation="relu", name="conv_1")(hidden)
    hidden = keras.layers.Flatten(name="flatten")(hidden)
    codes = keras.layers.Dense(config.latent_dim, name="codes")(hidden)
    encoder = keras.Model(images, codes, name="encoder")

    code_input = keras.Input(shape=(config.latent_dim,), dtype="float32", name="codes")
    hidden = keras.layers.Dense(reduced * reduced * second, activation="relu", name="expand")(
        code_input
    )
    hidden = keras.layers.Reshape((reduced, reduced, second), name="unflatten")(hidden)
    hidden = keras.layers.Conv2DTranspose(second, 3, 2, "same", activation="relu", name="deconv_0")(
        hidden
    )
    hidden = keras.layers.Conv2DTranspose(first, 3, 2, "same", activation="relu", name="deconv_1")(
        hidden
    )
    hidden = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="pixels")(hidden)
    pixels = keras.layers.Reshape((IMAGE_SIZE, IMAGE_SIZE), name="drop_channel")(hidden)
    decoder = keras.Model(code_input, pixels, name="decoder")

    autoencoder = keras.Model(images, decoder(encoder(images)), name="mnist_autoencoder")
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=config.epochs * steps_per_epoch, alpha=0.05
    )
    autoencoder.compile(
        optimizer=keras.optimizers.Adam(learning_rate=schedule),
        loss="mse",
    )
    return AutoencoderModels(encoder=encoder, decoder=decoder, autoencoder=autoencoder)


def flat_pixels(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1)


def fit_pca(split: MnistSplit, latent_dim: int) -> PCA:
    return PCA(n_components=latent_dim, random_state=0).fit(flat_pixels(split.x_train))


def pca_reconstruct(pca: PCA, images: np.ndarray) -> np.ndarray:
    flat = pca.inverse_transform(pca.transform(flat_pixels(images)))
    return np.asarray(flat, np.float32).reshape(images.shape)


def mean_squared_error(images: np.ndarray, reconstructions: np.ndarray) -> float:
    """Per pixel, over all images."""
    difference = images.astype(np.float64) - reconstructions.astype(np.float64)
    return float(np.mean(np.square(difference)))


def plot_reconstructions(
    images: np.ndarray,
    reconstructions: np.ndarray,
    pca_reconstructions: np.ndarray,
    count: int = 12,
) -> Figure:
    """Test digits (top row) above their reconstructions by the autoencoder and by PCA."""
    rows = [
        ("original", images),
        ("autoencoder", reconstructions),
        ("PCA (32)", pca_reconstructions),
    ]
    figure = Figure(figsize=(count * 0.95, len(rows) * 1.1))
    grid = figure.subplots(len(rows), count, squeeze=False)
    for row, (label, pictures) in zip(grid, rows, strict=True):
        for column, axes in enumerate(row):
            axes.imshow(pictures[column], cmap="gray_r", vmin=0.0, vmax=1.0)
            axes.set_xticks([])
            axes.set_yticks([])
            if column == 0:
                axes.set_ylabel(label, fontsize=9)
            if label == "autoencoder":
                error = mean_squared_error(images[column], pictures[column])
                axes.set_title(f"{error:.4f}", fontsize=7)
    figure.suptitle(
        "MNIST test digits and their reconstructions from 32 numbers "
        f"(MSE: autoencoder {mean_squared_error(images, reconstructions):.4f}, "
        f"PCA {mean_squared_error(images, pca_reconstructions):.4f})",
        fontsize=10,
    )
    return figure


def export_saved_model(models: AutoencoderModels, path: Path) -> None:
    """Write the SavedModel with the contract's signatures into ``path``."""

    def encode(images: tf.Tensor) -> dict[str, tf.Tensor]:
        return {CODES_OUTPUT: models.encoder(images, training=False)}

    def reconstruct(images: tf.Tensor) -> dict[str, tf.Tensor]:
        reconstructions = models.autoencoder(images, training=False)
        errors = tf.reduce_mean(tf.square(reconstructions - images), axis=[1, 2])
        return {RECONSTRUCTIONS_OUTPUT: reconstructions, ERRORS_OUTPUT: errors}

    images = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE], tf.float32, name=IMAGES_INPUT)
    # The first endpoint also answers as serving_default.
    export_endpoints(
        path,
        [models.autoencoder],
        [
            Endpoint(ENCODE_SIGNATURE, encode, [images]),
            Endpoint(RECONSTRUCT_SIGNATURE, reconstruct, [images]),
        ],
    )


def warmup_requests(split: MnistSplit) -> list[WarmupRequest]:
    """Every signature with a single image and with a batch."""
    return [
        WarmupRequest(signature, {IMAGES_INPUT: images})
        for signature in (SERVING_SIGNATURE, ENCODE_SIGNATURE, RECONSTRUCT_SIGNATURE)
        for images in (split.x_test[:1], split.x_test[:WARMUP_BATCH])
    ]


def train(config: AutoencoderConfig, options: RunOptions) -> TrainResult:
    """Train, evaluate against PCA, and publish a new version."""
    job = JobRun(MODEL_NAME, config, options)
    split = load_mnist_split()
    steps_per_epoch = -(-len(split.y_train) // config.batch_size)
    with select_strategy().scope():
        models = build_models(config, steps_per_epoch)

    job.fit(
        models.autoencoder,
        "MNIST autoencoder",
        split.x_train,
        split.x_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        validation_data=(split.x_test, split.x_test),
        shuffle=True,
    )
    reconstructions = models.autoencoder.predict(split.x_test, verbose=0)
    test_mse = mean_squared_error(split.x_test, reconstructions)
    pca = fit_pca(split, config.latent_dim)
    pca_reconstructions = pca_reconstruct(pca, split.x_test)
    peer_mse = mean_squared_error(split.x_test, pca_reconstructions)
    job.reports.save(
        plot_reconstructions(split.x_test, reconstructions, pca_reconstructions),
        RECONSTRUCTIONS_PICTURE,
    )
    metrics, published = job.publish(
        partial(
            AutoencoderMetrics,
            test_mse=test_mse,
            peer=PeerMetrics(name=f"pca_{config.latent_dim}", test_mse=peer_mse),
            ratio=test_mse / peer_mse,
            latent_dim=config.latent_dim,
            n_train=len(split.x_train),
            n_test=len(split.x_test),
        ),
        lambda directory: export_saved_model(models, directory),
        warmup_requests(split),
    )
    return TrainResult(
        model=models.autoencoder,
        encoder=models.encoder,
        decoder=models.decoder,
        split=split,
        metrics=metrics,
        published=published,
        reports=job.reports,
    )


def run(options: RunOptions) -> TrainResult:
    """The CLI's entry: a named profile, optionally with another seed."""
    return train(profile_config(PROFILES, options), options)
