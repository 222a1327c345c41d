"""The jobs' shared skeleton: seeding, the timed fit and its reports, publishing with metrics."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import keras
import numpy as np
import pytest

from training.contracts.common import WARMUP_FILE
from training.export import METRICS_FILE
from training.job import _LEADING_FIELDS, _TRAILING_FIELDS, JobRun, RunMetrics, RunResult
from training.jobs import RunOptions
from training.reporting import TRAINING_CURVES
from training.warmup import WarmupRequest


@dataclass(frozen=True)
class TinyConfig:
    profile: str = "quick"
    epochs: int = 2
    seed: int = 5


@dataclass(frozen=True, kw_only=True)
class TinyMetrics(RunMetrics):
    mse: float
    n_train: int


def tiny_model() -> keras.Model:
    model = keras.Sequential([keras.Input((2,), name="x"), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


def options(tmp_path: Path) -> RunOptions:
    return RunOptions(models_dir=tmp_path / "models", reports_dir=tmp_path / "reports", verbose=0)


def test_metrics_order_puts_the_jobs_own_fields_between_profile_and_epochs() -> None:
    metrics = TinyMetrics(
        model="tiny",
        version=3,
        profile="quick",
        mse=0.5,
        n_train=8,
        epochs=2,
        train_seconds=1.25,
        created="2024-01-01T00:00:00+00:00",
        seed=5,
    )
    assert list(metrics.as_dict()) == [
        "model",
        "version",
        "profile",
        "mse",
        "n_train",
        "epochs",
        "train_seconds",
        "created",
        "seed",
    ]
    fields = {field.name for field in dataclasses.fields(RunMetrics)}
    assert fields == {*_LEADING_FIELDS, *_TRAILING_FIELDS}


def test_a_run_seeds_first(tmp_path: Path) -> None:
    JobRun("tiny", TinyConfig(), options(tmp_path))
    first = np.random.random()
    JobRun("tiny", TinyConfig(), options(tmp_path))
    assert np.random.random() == first


def test_fit_publish_and_result(tmp_path: Path) -> None:
    run = JobRun("tiny", TinyConfig(), options(tmp_path))
    model = tiny_model()
    x = np.ones((8, 2), np.float32)
    with pytest.raises(RuntimeError, match="before fit"):
        run.publish(partial(TinyMetrics, mse=0.0, n_train=8), lambda _: None, [])

    history = run.fit(model, "tiny", x, x[:, :1], epochs=2)

    assert len(history.history["loss"]) == 2
    assert run.train_seconds is not None and run.train_seconds > 0
    assert (run.reports.directory / TRAINING_CURVES).is_file()
    assert list((run.reports.directory / "tensorboard").rglob("events.out.tfevents.*"))

    def export(directory: Path) -> None:
        model.export(str(directory), verbose=False)

    warmup = [WarmupRequest("serving_default", {"x": x[:1]})]
    metrics, published = run.publish(partial(TinyMetrics, mse=0.25, n_train=8), export, warmup)

    assert published.version == metrics.version == 1
    assert published.path == tmp_path / "models" / "tiny" / "1"
    written = json.loads((published.path / METRICS_FILE).read_text())
    assert written == metrics.as_dict()
    assert (written["model"], written["profile"], written["epochs"]) == ("tiny", "quick", 2)
    assert written["seed"] == 5 and written["mse"] == 0.25
    assert written["train_seconds"] == round(run.train_seconds, 3)
    assert (published.path / WARMUP_FILE).is_file()
    result = RunResult(metrics=metrics, published=published, reports=run.reports)
    assert result.metrics_dict() == written
