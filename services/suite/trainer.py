"""Trains the models of the local suite that have no version yet, one after another, each in a
process of its own (`python -m training`), with two lines per model: one as it starts and one
as its version is published.

`make run` trains the first model before anything starts, then the others while it serves:
each is handed to the running model server as it is published (`on_published`).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from services.suite.noise import without_startup_noise
from training.jobs import JOBS
from training.publish import latest_version

_RUN_COUNT = re.compile(r"^\[\d+/\d+\]")


class TrainingFailed(RuntimeError):
    """A training run exited with an error; its output has been printed."""


class Trainer:
    """The models of ``names`` without a version in ``models_dir``, trained in that order."""

    def __init__(self, models_dir: Path, profile: str, names: Sequence[str]) -> None:
        self.models_dir = models_dir
        self.profile = profile
        self.missing = [name for name in names if latest_version(models_dir / name) is None]
        self._trained = 0
        self._stopped = threading.Event()
        self._running: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    @property
    def pending(self) -> list[str]:
        """The models still to train, next first."""
        return self.missing[self._trained :]

    def train_next(self) -> str:
        """Trains the next missing model and returns its name. Raises TrainingFailed with the
        run's output printed, or when stop() ended it."""
        name = self.pending[0]
        self._trained += 1
        print(
            f"No {name} version in {self.models_dir}: training one ({self.profile} profile)",
            flush=True,
        )
        with self._lock:
            if self._stopped.is_set():
                raise TrainingFailed(f"training {name} was stopped")
            self._running = subprocess.Popen(
                [sys.executable, "-m", "training", name, "--profile", self.profile,
                 "--models-dir", str(self.models_dir), "--keras-verbose", "0"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                # Its own process group, as the services': Ctrl-C reaches only the suite,
                # which ends the run itself (stop()) instead of reporting it as failed.
                process_group=0,
            )  # fmt: skip
        stdout, _ = self._running.communicate()
        if self._stopped.is_set():
            raise TrainingFailed(f"training {name} was stopped")
        output = list(without_startup_noise(stdout.splitlines(keepends=True)))
        if self._running.returncode != 0:
            sys.stdout.writelines(output)
            raise TrainingFailed(f"training {name} exited with code {self._running.returncode}")
        # The job's own last line, "[1/1] cnn  24 s  accuracy 0.983 ...", counted among all.
        summary = output[-1] if output else f"[1/1] {name} published\n"
        position = f"[{self._trained}/{len(self.missing)}]"
        print(_RUN_COUNT.sub(position, summary, count=1), end="", flush=True)
        return name

    def train_rest_in_background(self, on_published: Callable[[str], None]) -> threading.Thread:
        """Trains the pending models in a thread, calling ``on_published(name)`` after each.
        A run that fails is reported and the next one goes on."""

        def train_all() -> None:
            while self.pending and not self._stopped.is_set():
                try:
                    name = self.train_next()
                except TrainingFailed as exc:
                    if not self._stopped.is_set():
                        print(f"{exc}; the suite serves the models it has", flush=True)
                    continue
                on_published(name)

        thread = threading.Thread(target=train_all, name="training", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Ends the run in progress (SIGTERM) and starts no other."""
        with self._lock:
            self._stopped.set()
            if self._running is not None and self._running.poll() is None:
                self._running.terminate()


def train_missing(models_dir: Path, profile: str, names: Sequence[str] = tuple(JOBS)) -> None:
    """Trains, one after another, the models without a version. Raises TrainingFailed."""
    trainer = Trainer(models_dir, profile, names)
    while trainer.pending:
        trainer.train_next()
