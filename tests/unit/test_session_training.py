"""The session's training as make test's xdist workers share it: the first worker to need a model
trains all five once, publishing each as it is done, the others read what it published, and only
a run's in-memory result is ever trained twice. The training job itself is replaced by one that
records its calls: what is under test is who trains, and where."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass
class FakeTraining:
    """Each (model, models_dir) the training job was run for (a run takes 10 ms), and what to
    make a model's training do first."""

    calls: list[tuple[str, Path]] = field(default_factory=list)
    before: dict[str, Callable[[], None]] = field(default_factory=dict)

    def train(self, name: str, models_dir: Path, reports_dir: Path) -> Run:
        self.before.get(name, lambda: None)()
        self.calls.append((name, models_dir))
        time.sleep(0.01)
        version = models_dir / name / "1"
        version.mkdir(parents=True)
        return Run(Published(version))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTraining:
    fake = FakeTraining()
    monkeypatch.setattr(session_training, "_train_quick", fake.train)
    return fake


def test_alone_each_model_is_trained_when_first_needed_and_only_once(
    tmp_path: Path, fake: FakeTraining
) -> None:
    training = SessionTraining(tmp_path, worker=None)

    assert training.version_dir("cnn") == tmp_path / "models" / "cnn" / "1"
    assert training.result("cnn").published.path == training.version_dir("cnn")
    assert fake.calls == [("cnn", tmp_path / "models")]


def test_two_workers_at_once_train_every_model_once_into_the_shared_repository(
    tmp_path: Path, fake: FakeTraining
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

    assert sorted(fake.calls) == sorted((name, tmp_path / "models") for name in JOBS)
    assert found == {name: tmp_path / "models" / name / "1" for name in found}
    assert workers[0].version_dir("cnn") == workers[1].version_dir("cnn")
    assert len(fake.calls) == len(JOBS)


def test_a_run_in_memory_comes_from_the_worker_that_trained_or_is_repeated_on_the_other(
    tmp_path: Path, fake: FakeTraining
) -> None:
    trainer, other = SessionTraining(tmp_path, "gw0"), SessionTraining(tmp_path, "gw1")

    assert trainer.result("forecaster").published.path == tmp_path / "models" / "forecaster" / "1"
    assert len(fake.calls) == len(JOBS)
    repeated = other.result("forecaster")

    assert repeated.published.path == tmp_path / "own-gw1" / "models" / "forecaster" / "1"
    assert fake.calls[len(JOBS) :] == [("forecaster", tmp_path / "own-gw1" / "models")]
    assert other.version_dir("forecaster") == tmp_path / "models" / "forecaster" / "1"


def test_the_trainer_publishes_each_model_as_it_is_done(tmp_path: Path, fake: FakeTraining) -> None:
    trainer, other = SessionTraining(tmp_path, "gw0"), SessionTraining(tmp_path, "gw1")
    training_began, classifier_found = threading.Event(), threading.Event()
    fake.before["classifier"] = training_began.set
    fake.before["autoencoder"] = lambda: classifier_found.wait(30)
    training = threading.Thread(target=trainer.version_dir, args=("autoencoder",))
    training.start()
    assert training_began.wait(30)  # the trainer is gw0's

    # The classifier is trained first, and is there while the trainer is still at the last model.
    assert other.version_dir("classifier") == tmp_path / "models" / "classifier" / "1"
    assert ("autoencoder", tmp_path / "models") not in fake.calls
    classifier_found.set()
    training.join()

    assert other.version_dir("autoencoder") == tmp_path / "models" / "autoencoder" / "1"
    assert len(fake.calls) == len(JOBS)


def test_a_model_the_trainer_failed_to_train_is_trained_by_the_next_worker_to_need_it(
    tmp_path: Path, fake: FakeTraining
) -> None:
    trainer, other = SessionTraining(tmp_path, "gw0"), SessionTraining(tmp_path, "gw1")

    def fail() -> None:
        fake.before.pop("cnn")
        raise RuntimeError("out of memory")

    fake.before["cnn"] = fail
    with pytest.raises(RuntimeError, match="out of memory"):
        trainer.version_dir("classifier")

    # Nothing waits on the models the trainer never reached: whoever needs one trains it.
    assert other.version_dir("cnn") == tmp_path / "models" / "cnn" / "1"
    assert other.version_dir("autoencoder") == tmp_path / "models" / "autoencoder" / "1"
    assert trainer.version_dir("classifier") == tmp_path / "models" / "classifier" / "1"
    assert [name for name, _ in fake.calls] == ["classifier", "cnn", "autoencoder"]
