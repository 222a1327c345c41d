"""Fixtures: trained-classifier repositories and running stacks."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from servers import Stack, start_stack


@pytest.fixture
def classifier_repository(classifier_models_dir: Path, tmp_path: Path) -> Path:
    """A private model repository holding a copy of the trained classifier's version 1."""
    shutil.copytree(classifier_models_dir / "classifier", tmp_path / "classifier")
    return tmp_path


BATCHING_PARAMETERS = """
max_batch_size { value: 256 }
batch_timeout_micros { value: 1000 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 2 }
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["plain", "batching"])
async def shared_stack(
    request: pytest.FixtureRequest, full_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """One stack serving all five models, for tests that only read; tests that change things
    start their own. Every test using it runs twice: against a plain model server, and against
    one with TensorFlow Serving's batching on, which every model contract must survive."""
    settings: dict[str, Any] = {}
    if request.param == "batching":
        parameters = tmp_path_factory.mktemp("batching") / "batching.config"
        parameters.write_text(BATCHING_PARAMETERS)
        settings = {"enable_batching": True, "batching_parameters_file": str(parameters)}
    stack = await start_stack(full_models_dir, **settings)
    yield stack
    await stack.close()


@pytest_asyncio.fixture(loop_scope="session")
async def private_stack(classifier_repository: Path) -> AsyncIterator[Stack]:
    """A stack of its own, for tests that publish versions or stop servers."""
    stack = await start_stack(classifier_repository)
    yield stack
    await stack.close()


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
def full_repository(all_models: dict[str, Path], tmp_path: Path) -> Path:
    """A private model repository holding a copy of the quick version of all five models."""
    for name, version_dir in all_models.items():
        shutil.copytree(version_dir.parent, tmp_path / name)
    return tmp_path
