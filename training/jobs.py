"""The training jobs the CLI knows, by model name; a job's module is imported only to run it."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from training.publish import PublishedVersion

if TYPE_CHECKING:  # it imports Keras, which the suite's process must not
    from training.reporting import RunReports

PROFILES = ("quick", "full")

# Model name -> module exposing `run(options: RunOptions) -> JobResult`, in the order
# `make train` and `make run` train them.
JOBS: dict[str, str] = {
    "classifier": "training.classifier",
    "cnn": "training.cnn",
    "forecaster": "training.forecaster.job",
    "word2vec": "training.word2vec.job",
    "autoencoder": "training.autoencoder",
}


@dataclass(frozen=True)
class RunOptions:
    """How to run a job, apart from what its profile fixes."""

    profile: str = "quick"
    models_dir: Path = Path("models")
    reports_dir: Path = Path("reports")
    seed: int | None = None  # None: the profile's own seed
    verbose: int = 2  # Keras progress: 0 silent, 1 progress bar, 2 one line per epoch


class Profile(Protocol):
    """A job's config: a dataclass with the name of its profile and a seed."""

    @property
    def profile(self) -> str: ...


ConfigT = TypeVar("ConfigT", bound=Profile)


def profile_config(profiles: Iterable[ConfigT], options: RunOptions) -> ConfigT:
    """The config of the options' profile among a job's ``profiles``, with the options' seed if
    given."""
    by_name = {config.profile: config for config in profiles}
    if options.profile not in by_name:
        raise ValueError(f"no profile {options.profile!r}; the job has {', '.join(by_name)}")
    config = by_name[options.profile]
    if options.seed is None:
        return config
    return dataclasses.replace(config, seed=options.seed)  # type: ignore[type-var]


class JobResult(Protocol):
    """What the CLI reads of a finished run; every job's result is a ``training.job.RunResult``,
    which this module cannot name: it imports Keras."""

    @property
    def published(self) -> PublishedVersion: ...

    @property
    def reports(self) -> RunReports: ...

    def metrics_dict(self) -> dict[str, Any]: ...


class TrainingJob(Protocol):
    def run(self, options: RunOptions) -> JobResult: ...


def load_job(name: str) -> TrainingJob:
    """Import the job's module; deferred because it pulls in TensorFlow."""
    return cast(TrainingJob, importlib.import_module(JOBS[name]))
