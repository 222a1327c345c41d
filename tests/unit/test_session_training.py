"""The session's training as make test's two xdist workers share it: the first worker to need a
model trains all five once, the other reads what it published, and only a run's in-memory result
is ever trained twice. The training job itself is replaced by one that records its calls: what is
under test is who trains, and where."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import session_training
from session_training import SessionTraining

from training.jobs import JOBS


@dataclass(frozen=True)
class Published:
    path: Path


@dataclass(frozen=True)
class Run:
    published: Published


@pytest.fixture
def trainings(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Path]]:
    """Each (model, models_dir) the training job was run for; a run takes 10 ms."""
    calls: list[tuple[str, Path]] = []

    def train(name: str, models_dir: Path, reports_dir: Path) -> Run:
        calls.append((name, models_dir))
        time.sleep(0.01)
        version = models_dir / name / "1"
        version.mkdir(parents=True)
        return Run(Published(version))

    monkeypatch.setattr(session_training, "_train_quick", train)
    return calls


def test_alone_each_model_is_trained_when_first_needed_and_only_once(
    tmp_path: Path, trainings: list[tuple[str, Path]]
) -> None:
    training = SessionTraining(tmp_path, worker=None)

    assert training.version_dir("cnn") == tmp_path / "models" / "cnn" / "1"
    assert training.result("cnn").published.path == training.version_dir("cnn")
    assert trainings == [("cnn", tmp_path / "models")]


def test_two_workers_at_once_train_every_model_once_into_the_shared_repository(
    tmp_path: Path, trainings: list[tuple[str, Path]]
) -> None:
    workers = [SessionTraining(tmp_path, worker) for worker in ("gw0", "gw1")]
    found: dict[str, Path] = {}

    def need(worker: SessionTraining, name: str) -> None:
        found[name] = worker.version_dir(name)

    threads = [
        threading.Thread(target=need, args=(worker, name))
        for worker, name in zip(workers, ("classifier", "autoencoder"), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(trainings) == sorted((name, tmp_path / "models") for name in JOBS)
    assert found == {name: tmp_path / "models" / name / "1" for name in found}
    assert workers[0].version_dir("cnn") == workers[1].version_dir("cnn")
    assert len(trainings) == len(JOBS)


def test_a_run_in_memory_comes_from_the_worker_that_trained_or_is_repeated_on_the_other(
    tmp_path: Path, trainings: list[tuple[str, Path]]
) -> None:
    trainer, other = SessionTraining(tmp_path, "gw0"), SessionTraining(tmp_path, "gw1")

    assert trainer.result("forecaster").published.path == tmp_path / "models" / "forecaster" / "1"
    assert len(trainings) == len(JOBS)
    repeated = other.result("forecaster")

    assert repeated.published.path == tmp_path / "own-gw1" / "models" / "forecaster" / "1"
    assert trainings[len(JOBS) :] == [("forecaster", tmp_path / "own-gw1" / "models")]
    assert other.version_dir("forecaster") == tmp_path / "models" / "forecaster" / "1"
