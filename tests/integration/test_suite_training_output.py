"""What `make run` shows while it trains a missing model: a line as the run starts and one as its
version is published, without Keras' epochs or TensorFlow's start-up lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.suite.trainer import train_missing
from training.publish import latest_version


def test_a_missing_model_is_trained_in_two_lines(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # training writes its reports under ./reports
    models = tmp_path / "models"
    train_missing(models, "quick", names=["classifier"])

    assert latest_version(models / "classifier") == 1
    out, err = capfd.readouterr()
    lines = out.splitlines()
    assert len(lines) == 2, out
    assert lines[0] == f"No classifier version in {models}: training one (quick profile)"
    assert re.fullmatch(
        r"\[1/1\] classifier  \d+ s  accuracy \d\.\d{3} \(peer \d\.\d{3}\)  version 1  "
        r"reports/classifier/\S+-quick",
        lines[1],
    ), lines[1]
    assert "I0000" not in out + err and "Epoch" not in out + err


def test_a_model_with_a_version_is_not_trained_again(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "classifier" / "1").mkdir(parents=True)
    train_missing(tmp_path, "quick", names=["classifier"])
    assert capfd.readouterr().out == ""
