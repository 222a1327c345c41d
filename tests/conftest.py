"""Fixtures shared by every test package: the quick classifier, trained once per session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from training.classifier import TrainResult

# Before any test module imports TensorFlow: keep its C++ info logs out of test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def classifier_training(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """The quick classifier, trained once per session and published as version 1."""
    # Imported here so test sessions that never ask for a model don't load TensorFlow.
    from training.classifier import QUICK, train

    return train(QUICK, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def classifier_models_dir(classifier_training: TrainResult) -> Path:
    """A model repository root holding ``classifier/1/`` (the quick profile)."""
    return classifier_training.published.path.parent.parent
