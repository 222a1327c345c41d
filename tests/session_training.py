"""The session's quick training of each model, once per test run, shared by pytest-xdist's
workers through the file system."""

from __future__ import annotations

import json
import os
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


class SessionTraining:
    """The quick profile of each model, trained at most once per test run into ``models_dir``.

    Alone, a session trains each model when a test first needs it. Beside other workers, the
    first worker to need any model trains all five, and the others wait for it and read what it
    published (``published.json``)."""

    def __init__(self, root: Path, worker: str | None) -> None:
        self.models_dir = root / "models"
        self.reports_dir = root / "reports"
        self._root = root
        self._worker = worker
        self._shared = worker is not None
        self._results: dict[str, Any] = {}
        self._version_dirs: dict[str, Path] = {}

    def version_dir(self, name: str) -> Path:
        """The model's published quick version, ``<models_dir>/<name>/<version>``."""
        if name not in self._version_dirs:
            if self._shared:
                self._version_dirs.update(self._train_all_once())
            else:
                self._version_dirs[name] = self.result(name).published.path
        return self._version_dirs[name]

    def result(self, name: str) -> Any:
        """The model's training run, in memory: on another worker than the one that trained,
        the run is repeated into a repository of this worker's own."""
        if name not in self._results:
            if self._shared:
                self.version_dir(name)
            if name not in self._results:
                own = self._root / f"own-{self._worker}" if self._shared else self._root
                self._results[name] = _train_quick(name, own / "models", own / "reports")
        return self._results[name]

    def _train_all_once(self) -> dict[str, Path]:
        published = self._root / "published.json"
        with FileLock(self._root / "training.lock"):
            if not published.exists():
                for name in JOBS:
                    self._results[name] = _train_quick(name, self.models_dir, self.reports_dir)
                paths = {name: str(r.published.path) for name, r in self._results.items()}
                published.write_text(json.dumps(paths))
        return {name: Path(path) for name, path in json.loads(published.read_text()).items()}
