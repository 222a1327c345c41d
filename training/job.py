"""The skeleton every training job shares, so that a job's module holds only what is its own.

A job (``training.classifier``, ``training.cnn``, ...) loads its data, builds its model and scores
it against its peer; what each run does alike lives here. ``JobRun`` seeds the run, opens its
report folder, times the fit (with TensorBoard and the training curves) and publishes the version
with its ``metrics.json``; ``RunMetrics`` holds the fields every ``metrics.json`` has, and
``RunResult`` what every finished run gives back. It imports Keras, so unlike ``training.jobs``
only a job's own module imports it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import keras

from training.export import publish_model
from training.jobs import RunOptions
from training.publish import PublishedVersion
from training.reporting import TRAINING_CURVES, RunReports, plot_history
from training.runtime import seed_everything
from training.warmup import WarmupRequest

# The order of metrics.json: the run's identity, the job's own fields, then how it was trained.
_LEADING_FIELDS = ("model", "version", "profile")
_TRAILING_FIELDS = ("epochs", "train_seconds", "created", "seed")


class JobConfig(Protocol):
    """What the framework reads of a job's config: every profile names these."""

    @property
    def profile(self) -> str: ...

    @property
    def seed(self) -> int: ...

    @property
    def epochs(self) -> int: ...


@dataclass(frozen=True, kw_only=True)
class RunMetrics:
    """The fields of ``metrics.json`` that every job has; a job's metrics dataclass extends it
    with its own scores, which ``as_dict`` places between ``profile`` and ``epochs``."""

    model: str
    version: int
    profile: str
    epochs: int
    train_seconds: float
    created: str
    seed: int

    def as_dict(self) -> dict[str, Any]:
        fields = dataclasses.asdict(self)
        own = [name for name in fields if name not in (*_LEADING_FIELDS, *_TRAILING_FIELDS)]
        return {name: fields[name] for name in (*_LEADING_FIELDS, *own, *_TRAILING_FIELDS)}


MetricsT = TypeVar("MetricsT", bound=RunMetrics)


@dataclass(frozen=True, kw_only=True)
class RunResult(Generic[MetricsT]):
    """A finished, published run (``training.jobs.JobResult``); a job's result extends it with
    what its tests and callers use: the in-memory model, its data, its forecasts..."""

    metrics: MetricsT
    published: PublishedVersion
    reports: RunReports

    def metrics_dict(self) -> dict[str, Any]:
        return self.metrics.as_dict()


class JobRun:
    """One run of a job: its config, options and report folder, and how long its fit took."""

    def __init__(self, model_name: str, config: JobConfig, options: RunOptions) -> None:
        """Seeds Python, NumPy and TensorFlow first, so two runs of one profile learn the same,
        then opens ``<reports_dir>/<model>/<run id>/``."""
        seed_everything(config.seed)
        self.model_name = model_name
        self.config = config
        self.options = options
        self.reports = RunReports.create(options.reports_dir, model_name, config.profile)
        self.train_seconds: float | None = None

    def fit(
        self, model: keras.Model, title: str, *args: Any, **kwargs: Any
    ) -> keras.callbacks.History:
        """``model.fit(*args, **kwargs)`` logged for TensorBoard at the options' verbosity and
        timed (``train_seconds``); its curves go to the reports as ``training_curves.png``. Only
        the job's main fit: a side model (the forecaster's sine check) is neither timed nor
        logged."""
        started = time.perf_counter()
        history = model.fit(
            *args, callbacks=[self.reports.tensorboard()], verbose=self.options.verbose, **kwargs
        )
        self.train_seconds = time.perf_counter() - started
        self.reports.save(plot_history(history, title), TRAINING_CURVES)
        return history

    def publish(
        self,
        metrics: Callable[..., MetricsT],
        export: Callable[[Path], None],
        warmup: Sequence[WarmupRequest],
    ) -> tuple[MetricsT, PublishedVersion]:
        """Publishes the next version: ``export`` writes the SavedModel into a directory, beside
        the warm-up requests and ``metrics.json``. ``metrics`` (the job's metrics class, or a
        ``functools.partial`` of it holding the job's own fields) gets the run's fields as
        keywords; it is called once per version number tried, as another job may take one."""
        if self.train_seconds is None:
            raise RuntimeError("publish() before fit(): no training time to report")
        run_fields = {
            "model": self.model_name,
            "profile": self.config.profile,
            "epochs": self.config.epochs,
            "train_seconds": round(self.train_seconds, 3),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "seed": self.config.seed,
        }
        published = publish_model(
            self.options.models_dir,
            self.model_name,
            export,
            lambda version: metrics(version=version, **run_fields).as_dict(),
            warmup,
        )
        return metrics(version=published.version, **run_fields), published
