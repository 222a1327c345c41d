"""The session's quick training of each model, once per test run, shared by pytest-xdist's
workers through the file system."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from filelock import FileLock

from training.jobs import JOBS

# Set by pytest-xdist in each of its worker processes.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")


def _train_quick(name: str, models_dir: Path, reports_dir: Path) -> Any:
    # Imported here so test sessions that never ask for a model don't load TensorFlow.
    from training.jobs import RunOptions, load_job

    options = RunOptions(profile="quick", models_dir=models_dir, reports_dir=reports_dir, verbose=0)
    return load_job(name).run(options)


def copy_models(models: dict[str, Path], repository: Path) -> Path:
    """Copies each model's versions into the repository (``models``: a version directory of
    each, by model name); returns the repository."""
    for name, version_dir in models.items():
        shutil.copytree(version_dir.parent, repository / name)
    return repository


class SessionTraining:
    """The quick profile of each model, trained at most once per test run into ``models_dir``.

    Alone, a session trains each model when a test first needs it. Beside other workers, the
    first worker to need any model becomes the trainer: it trains all five in ``JOBS``' order
    (the classifier, which most tests need alone, first) and publishes each as it is done, so
    another worker waits only for the model it needs. Each model has a file lock, which the
    trainer holds until it has published that model; its path is then in
    ``published/<model>``."""

    def __init__(self, root: Path, worker: str | None) -> None:
        self.models_dir = root / "models"
        self.reports_dir = root / "reports"
        self._root = root
        self._worker = worker
        self._results: dict[str, Any] = {}
        self._version_dirs: dict[str, Path] = {}

    def version_dir(self, name: str) -> Path:
        """The model's published quick version, ``<models_dir>/<name>/<version>``."""
        if name not in self._version_dirs:
            if self._worker is None:
                self._version_dirs[name] = self.result(name).published.path
            elif (locks := self._claim_training()) is not None:
                self._train_all(locks)
            if name not in self._version_dirs:
                self._version_dirs[name] = self._published(name)
        return self._version_dirs[name]

    def result(self, name: str) -> Any:
        """The model's training run, in memory: on another worker than the one that trained,
        the run is repeated into a repository of this worker's own."""
        if name not in self._results:
            if self._worker is not None:
                self.version_dir(name)
            if name not in self._results:
                own = self._root / f"own-{self._worker}" if self._worker else self._root
                self._results[name] = _train_quick(name, own / "models", own / "reports")
        return self._results[name]

    def _lock(self, name: str) -> FileLock:
        return FileLock(self._root / f"{name}.lock")

    def _claim_training(self) -> dict[str, FileLock] | None:
        """Every model's lock, held, if this worker is the first to need a model."""
        with self._lock("trainer"):
            claim = self._root / "trainer"
            if claim.exists():
                return None
            locks = {name: self._lock(name) for name in JOBS}
            for lock in locks.values():
                lock.acquire()
            claim.write_text(str(self._worker))
        return locks

    def _train_all(self, locks: dict[str, FileLock]) -> None:
        """Trains and publishes each model, letting go of its lock as soon as it is published;
        if one fails, of every lock, so that whoever needs a model next trains it."""
        try:
            for name, lock in locks.items():
                self._publish(name)
                lock.release()
        finally:
            for lock in locks.values():
                lock.release(force=True)

    def _published_file(self, name: str) -> Path:
        return self._root / "published" / name

    def _publish(self, name: str) -> Path:
        self._results[name] = _train_quick(name, self.models_dir, self.reports_dir)
        path: Path = self._results[name].published.path
        published = self._published_file(name)
        published.parent.mkdir(exist_ok=True)
        published.write_text(str(path))
        return path

    def _published(self, name: str) -> Path:
        """The shared version of the model, once its lock is free: the trainer's, or this
        worker's if the trainer failed to train it."""
        with self._lock(name):
            published = self._published_file(name)
            if published.exists():
                return Path(published.read_text())
            return self._publish(name)
