"""The training jobs the CLI knows, by model name; a job's module is imported only to run it."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol, cast

from training.publish import PublishedVersion

PROFILES = ("quick", "full")

# Model name -> module exposing `run(profile, models_dir, seed) -> JobResult`.
# cnn, forecaster, word2vec and autoencoder join here as their modules land.
JOBS: dict[str, str] = {
    "classifier": "training.classifier",
}


class JobResult(Protocol):
    @property
    def published(self) -> PublishedVersion: ...

    def metrics_dict(self) -> dict[str, Any]: ...


class TrainingJob(Protocol):
    def run(self, profile: str, models_dir: Path, seed: int | None = None) -> JobResult: ...


def load_job(name: str) -> TrainingJob:
    """Import the job's module; deferred because it pulls in TensorFlow."""
    return cast(TrainingJob, importlib.import_module(JOBS[name]))
