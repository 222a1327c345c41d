"""Wine cultivar classifier: a small Keras DNN on scikit-learn's ``load_wine`` for TF Serving.

The course's DNNClassifier (hidden_units=[13, 13, 13]) rebuilt in Keras. Feature scaling is a
``Normalization`` layer adapted on the training split, so it lives in the graph and clients send raw
measurements. The export's signatures, ``serving_default`` and ``metadata``, are a contract the
gateway relies on: training/contracts/classifier.py describes them and names their tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from training.contracts.classifier import (
    CLASS_IDS_OUTPUT,
    CLASS_NAMES_METADATA,
    FEATURE_NAMES_METADATA,
    FEATURES_INPUT,
    MODEL_NAME,
    PROBABILITIES_OUTPUT,
    SERVING_SIGNATURE,
)
from training.export import (
    Endpoint,
    export_endpoints,
    metadata_endpoint,
    metadata_warmup,
)
from training.job import JobRun, RunMetrics, RunResult
from training.jobs import RunOptions, profile_config
from training.runtime import select_strategy
from training.warmup import WarmupRequest


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything that decides what a training run learns."""

    profile: str
    epochs: int
    learning_rate: float
    # 124 training rows: without weight decay some seeds overfit to 2-3 test errors of 54.
    l2: float = 0.003
    batch_size: int = 16
    hidden_units: tuple[int, ...] = (13, 13, 13)
    seed: int = 101
    # The course's split; not stratified, so results stay comparable with it.
    test_size: float = 0.3
    split_random_state: int = 101


QUICK = ClassifierConfig(profile="quick", epochs=40, learning_rate=0.01)
FULL = ClassifierConfig(profile="full", epochs=300, learning_rate=0.003)
PROFILES = (QUICK, FULL)


@dataclass(frozen=True)
class WineSplit:
    """The train/test split of ``load_wine`` with its names."""

    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class PeerMetrics:
    name: str
    test_accuracy: float


@dataclass(frozen=True, kw_only=True)
class ClassifierMetrics(RunMetrics):
    """What goes into ``metrics.json`` inside the published version, beside the run's fields."""

    test_accuracy: float
    peer: PeerMetrics
    n_train: int
    n_test: int


@dataclass(frozen=True, kw_only=True)
class TrainResult(RunResult[ClassifierMetrics]):
    """A finished run: the in-memory model, its data, its metrics and where it was published."""

    model: keras.Model
    split: WineSplit


def load_wine_split(config: ClassifierConfig) -> WineSplit:
    wine = load_wine()
    x_train, x_test, y_train, y_test = train_test_split(
        wine.data.astype(np.float32),
        wine.target.astype(np.int64),
        test_size=config.test_size,
        random_state=config.split_random_state,
    )
    return WineSplit(
        x_train=x_train,
        x_test=x_test,
        y_train=y_train,
        y_test=y_test,
        feature_names=tuple(str(name) for name in wine.feature_names),
        class_names=tuple(str(name) for name in wine.target_names),
    )


def build_model(config: ClassifierConfig, x_train: np.ndarray, n_classes: int) -> keras.Model:
    """The DNN, with its input scaling fitted on the training split only."""
    normalize = keras.layers.Normalization(name="scale_features")
    normalize.adapt(x_train)
    inputs = keras.Input(shape=(x_train.shape[1],), dtype="float32", name=FEATURES_INPUT)
    hidden = normalize(inputs)
    for index, units in enumerate(config.hidden_units):
        hidden = keras.layers.Dense(
            units,
            activation="relu",
            kernel_regularizer=keras.regularizers.l2(config.l2),
            name=f"hidden_{index}",
        )(hidden)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(hidden)
    model = keras.Model(inputs, outputs, name="wine_classifier")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def peer_accuracy(split: WineSplit) -> float:
    """Test accuracy of a scaled logistic regression: what the DNN has to beat or match."""
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    pipeline.fit(split.x_train, split.y_train)
    return float(pipeline.score(split.x_test, split.y_test))


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    predicted = np.argmax(model.predict(x, verbose=0), axis=1)
    return float(np.mean(predicted == y))


def export_saved_model(model: keras.Model, split: WineSplit, path: Path) -> None:
    """Write the SavedModel with the two signatures of the contract into ``path``."""
    feature_names = tf.constant(list(split.feature_names), dtype=tf.string)
    class_names = tf.constant(list(split.class_names), dtype=tf.string)

    def serve(features: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = model(features, training=False)
        return {
            PROBABILITIES_OUTPUT: probabilities,
            CLASS_IDS_OUTPUT: tf.argmax(probabilities, axis=-1, output_type=tf.int64),
        }

    features = tf.TensorSpec([None, len(split.feature_names)], tf.float32, name=FEATURES_INPUT)
    export_endpoints(
        path,
        [model],
        [
            Endpoint(SERVING_SIGNATURE, serve, [features]),
            metadata_endpoint(
                {FEATURE_NAMES_METADATA: feature_names, CLASS_NAMES_METADATA: class_names}
            ),
        ],
    )


def warmup_requests(split: WineSplit) -> list[WarmupRequest]:
    """One request per signature, and a full batch for the serving one."""
    return [
        WarmupRequest(SERVING_SIGNATURE, {FEATURES_INPUT: split.x_test[:1]}),
        WarmupRequest(SERVING_SIGNATURE, {FEATURES_INPUT: split.x_test}),
        metadata_warmup(),
    ]


def train(config: ClassifierConfig, options: RunOptions) -> TrainResult:
    """Train, evaluate against the peer, and publish a new version."""
    job = JobRun(MODEL_NAME, config, options)
    split = load_wine_split(config)
    with select_strategy().scope():
        model = build_model(config, split.x_train, n_classes=len(split.class_names))

    job.fit(
        model,
        "wine classifier",
        split.x_train,
        split.y_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        validation_data=(split.x_test, split.y_test),
        shuffle=True,
    )
    metrics, published = job.publish(
        partial(
            ClassifierMetrics,
            test_accuracy=accuracy(model, split.x_test, split.y_test),
            peer=PeerMetrics(name="logistic_regression", test_accuracy=peer_accuracy(split)),
            n_train=len(split.y_train),
            n_test=len(split.y_test),
        ),
        lambda directory: export_saved_model(model, split, directory),
        warmup_requests(split),
    )
    return TrainResult(
        model=model, split=split, metrics=metrics, published=published, reports=job.reports
    )


def run(options: RunOptions) -> TrainResult:
    """The CLI's entry: a named profile, optionally with another seed."""
    return train(profile_config(PROFILES, options), options)
