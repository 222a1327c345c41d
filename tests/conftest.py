"""Fixtures shared by every test package: the quick profile of each model, trained once per
session into one model repository, with its reports beside it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from training.classifier import TrainResult

# Before any test module imports TensorFlow: keep its C++ info logs out of test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def trained_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's model repository root: ``<model>/<version>/`` for each model trained."""
    return tmp_path_factory.mktemp("models")


def _train_quick(name: str, models_dir: Path, reports_dir: Path) -> Any:
    # Imported here so test sessions that never ask for a model don't load TensorFlow.
    from training.jobs import RunOptions, load_job

    options = RunOptions(profile="quick", models_dir=models_dir, reports_dir=reports_dir, verbose=0)
    return load_job(name).run(options)


@pytest.fixture(scope="session")
def trained_reports_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reports")


@pytest.fixture(scope="session")
def classifier_training(trained_models_dir: Path, trained_reports_dir: Path) -> TrainResult:
    """The quick classifier, published as version 1."""
    result: TrainResult = _train_quick("classifier", trained_models_dir, trained_reports_dir)
    return result


@pytest.fixture(scope="session")
def cnn_training(trained_models_dir: Path, trained_reports_dir: Path) -> Any:
    return _train_quick("cnn", trained_models_dir, trained_reports_dir)


@pytest.fixture(scope="session")
def forecaster_training(trained_models_dir: Path, trained_reports_dir: Path) -> Any:
    return _train_quick("forecaster", trained_models_dir, trained_reports_dir)


@pytest.fixture(scope="session")
def word2vec_training(trained_models_dir: Path, trained_reports_dir: Path) -> Any:
    return _train_quick("word2vec", trained_models_dir, trained_reports_dir)


@pytest.fixture(scope="session")
def autoencoder_training(trained_models_dir: Path, trained_reports_dir: Path) -> Any:
    return _train_quick("autoencoder", trained_models_dir, trained_reports_dir)


@pytest.fixture(scope="session")
def classifier_models_dir(classifier_training: TrainResult) -> Path:
    """A model repository root holding ``classifier/1/`` (the quick profile)."""
    return classifier_training.published.path.parent.parent


@pytest.fixture(scope="session")
def all_models(
    classifier_training: Any,
    cnn_training: Any,
    forecaster_training: Any,
    word2vec_training: Any,
    autoencoder_training: Any,
) -> dict[str, Path]:
    """Each model's published quick version, by name."""
    trainings = [
        classifier_training,
        cnn_training,
        forecaster_training,
        word2vec_training,
        autoencoder_training,
    ]
    return {training.published.path.parent.name: training.published.path for training in trainings}


@pytest.fixture(scope="session")
def full_models_dir(all_models: dict[str, Path]) -> Path:
    """The session's repository, once all five models are in it."""
    return next(iter(all_models.values())).parent.parent


@pytest.fixture
def classifier_repository(classifier_models_dir: Path, tmp_path: Path) -> Path:
    """A private model repository holding a copy of the trained classifier's version 1."""
    shutil.copytree(classifier_models_dir / "classifier", tmp_path / "classifier")
    return tmp_path


@pytest.fixture
def full_repository(all_models: dict[str, Path], tmp_path: Path) -> Path:
    """A private model repository holding a copy of the quick version of all five models."""
    for name, version_dir in all_models.items():
        shutil.copytree(version_dir.parent, tmp_path / name)
    return tmp_path
