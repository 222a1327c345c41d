"""The line a finished training run leaves: its time, its score beside its peer's, where it went."""

from __future__ import annotations

import pytest

from training.jobs import JOBS
from training.summary import summary_line

# The headline fields of each model's metrics.json, as the jobs write them.
METRICS = {
    "classifier": {"train_seconds": 3.4, "test_accuracy": 0.98148, "peer": {"test_accuracy": 1.0}},
    "cnn": {"train_seconds": 24.2, "test_accuracy": 0.9832, "peer": {"test_accuracy": 0.921}},
    "forecaster": {"train_seconds": 61.0, "rmse": 23.456, "peers": {"seasonal_naive": 41.0}},
    "word2vec": {"train_seconds": 383.0, "spearman": 0.4031, "peer": {"spearman": 0.4062}},
    "autoencoder": {"train_seconds": 40.0, "test_mse": 0.01234, "peer": {"test_mse": 0.0201}},
}
HEADLINES = {
    "classifier": "accuracy 0.981 (peer 1.000)",
    "cnn": "accuracy 0.983 (peer 0.921)",
    "forecaster": "RMSE 23.5 (seasonal naive 41.0)",
    "word2vec": "Spearman 0.403 (gensim 0.406)",
    "autoencoder": "MSE 0.0123 (PCA 0.0201)",
}


def test_every_job_has_a_headline() -> None:
    assert set(HEADLINES) == set(JOBS)


@pytest.mark.parametrize("name", list(JOBS))
def test_a_runs_line_gives_its_place_time_score_version_and_reports(name: str) -> None:
    line = summary_line(2, 5, name, METRICS[name], 3, f"reports/{name}/run")
    seconds = f"{METRICS[name]['train_seconds']:.0f} s"
    assert line == f"[2/5] {name}  {seconds}  {HEADLINES[name]}  version 3  reports/{name}/run"
