"""What a training run leaves for people: TensorBoard logs and PNG pictures under ``reports/``.

Each run writes into ``<reports_dir>/<model>/<run id>/``, so ``tensorboard --logdir reports``
shows every run of every model side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import keras
from matplotlib.figure import Figure

TENSORBOARD_DIR = "tensorboard"
TRAINING_CURVES = "training_curves.png"


@dataclass(frozen=True)
class RunReports:
    """The report folder of one training run."""

    directory: Path

    @classmethod
    def create(cls, reports_dir: Path, model: str, profile: str) -> RunReports:
        run_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S-%f}-{profile}"
        directory = reports_dir / model / run_id
        directory.mkdir(parents=True)
        return cls(directory)

    def tensorboard(self) -> keras.callbacks.TensorBoard:
        """A Keras callback logging losses and metrics per epoch for TensorBoard."""
        return keras.callbacks.TensorBoard(log_dir=str(self.directory / TENSORBOARD_DIR))

    def path(self, file_name: str) -> Path:
        return self.directory / file_name

    def save(self, figure: Figure, file_name: str) -> Path:
        path = self.path(file_name)
        figure.savefig(path, dpi=110, bbox_inches="tight")
        return path


def plot_history(history: keras.callbacks.History, title: str) -> Figure:
    """One panel per metric (loss first), training and validation curves over the epochs."""
    names = [name for name in history.history if not name.startswith("val_")]
    names.sort(key=lambda name: name != "loss")
    figure = Figure(figsize=(5 * len(names), 3.6))
    for axes, name in zip(figure.subplots(1, len(names), squeeze=False)[0], names, strict=True):
        epochs = range(1, len(history.history[name]) + 1)
        axes.plot(epochs, history.history[name], label="training")
        if f"val_{name}" in history.history:
            axes.plot(epochs, history.history[f"val_{name}"], label="validation")
        axes.set_xlabel("epoch")
        axes.set_title(name)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(title)
    return figure
