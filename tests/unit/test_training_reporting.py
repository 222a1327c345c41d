"""Run reports: one folder per run, TensorBoard logs, training-curve pictures."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from training.reporting import TRAINING_CURVES, RunReports, plot_history

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_each_run_gets_its_own_folder(tmp_path: Path) -> None:
    first = RunReports.create(tmp_path, "cnn", "quick")
    second = RunReports.create(tmp_path, "cnn", "quick")
    assert first.directory != second.directory
    assert first.directory.parent == second.directory.parent == tmp_path / "cnn"
    assert first.directory.name.endswith("-quick")


def test_tensorboard_logs_and_curves_from_a_real_fit(tmp_path: Path) -> None:
    reports = RunReports.create(tmp_path, "tiny", "quick")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse", metrics=["mae"])
    x = np.ones((8, 2), np.float32)
    history = model.fit(
        x,
        x[:, :1],
        validation_data=(x, x[:, :1]),
        epochs=3,
        verbose=0,
        callbacks=[reports.tensorboard()],
    )

    path = reports.save(plot_history(history, "tiny"), TRAINING_CURVES)

    assert path.read_bytes().startswith(PNG_MAGIC)
    events = list((reports.directory / "tensorboard").rglob("events.out.tfevents.*"))
    assert {event.parent.name for event in events} == {"train", "validation"}
