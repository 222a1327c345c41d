"""Fixtures shared by every test package: the quick profile of each model, trained once per
session into one model repository, with its reports beside it.

Under pytest-xdist (``make test`` runs two workers) the workers share that repository: the first
one to need a model trains all five, publishing each as it is done, while the other runs the
tests that need none, then those that need only the classifier, which is trained first
(``pytest_collection_modifyitems`` orders them so, and tests/worker_scheduling.py shares them
out). A test that reads a run's in-memory result (the Keras model, its data) gets it from
the worker that trained, where every test of tests/training runs; on any other worker the run is
repeated for it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from session_training import XDIST_WORKER, SessionTraining, copy_models
from worker_scheduling import TRAINING_TESTS, SuiteScheduling

from training.jobs import JOBS

if TYPE_CHECKING:
    from training.classifier import TrainResult

# Before any test module imports TensorFlow: keep its C++ info logs out of test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def session_training(tmp_path_factory: pytest.TempPathFactory) -> SessionTraining:
    base = tmp_path_factory.getbasetemp()
    # Each xdist worker's base is a folder of the run's own, beside the other workers'.
    return SessionTraining(base.parent if XDIST_WORKER else base, XDIST_WORKER)


@pytest.fixture(scope="session")
def trained_models_dir(session_training: SessionTraining) -> Path:
    """The session's model repository root: ``<model>/<version>/`` for each model trained."""
    return session_training.models_dir


@pytest.fixture(scope="session")
def classifier_training(session_training: SessionTraining) -> TrainResult:
    """The quick classifier's run."""
    result: TrainResult = session_training.result("classifier")
    return result


@pytest.fixture(scope="session")
def cnn_training(session_training: SessionTraining) -> Any:
    return session_training.result("cnn")


@pytest.fixture(scope="session")
def forecaster_training(session_training: SessionTraining) -> Any:
    return session_training.result("forecaster")


@pytest.fixture(scope="session")
def word2vec_training(session_training: SessionTraining) -> Any:
    return session_training.result("word2vec")


@pytest.fixture(scope="session")
def autoencoder_training(session_training: SessionTraining) -> Any:
    return session_training.result("autoencoder")


@pytest.fixture(scope="session")
def classifier_models_dir(session_training: SessionTraining) -> Path:
    """A model repository root holding ``classifier/1/`` (the quick profile)."""
    return session_training.version_dir("classifier").parent.parent


@pytest.fixture(scope="session")
def all_models(session_training: SessionTraining) -> dict[str, Path]:
    """Each model's published quick version, by name."""
    return {name: session_training.version_dir(name) for name in JOBS}


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
    return copy_models(all_models, tmp_path)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> SuiteScheduling:
    return SuiteScheduling(config, log)


# The fixtures by which a test needs the session's classifier and no other model.
_CLASSIFIER_ONLY = "classifier_models_dir"
_ANY_MODEL = ("all_models", *(f"{name}_training" for name in JOBS))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under xdist, tests/training first, to the worker that then trains; then the tests that
    need no model, then those that need only the classifier (trained first), which the other
    workers run meanwhile; then the rest."""
    if not XDIST_WORKER:
        return

    def order(item: pytest.Item) -> int:
        names = item.fixturenames
        if item.nodeid.startswith(TRAINING_TESTS):
            return 0
        # Every fixture of a trained model depends on session_training.
        if "session_training" not in names:
            return 1
        if _CLASSIFIER_ONLY in names and not any(name in names for name in _ANY_MODEL):
            return 2
        return 3

    items.sort(key=order)
