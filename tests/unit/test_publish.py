"""Atomic versioned publishing: numbering, hidden temp dirs, cleanup, and lost races."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from training.__main__ import main as training_main
from training.publish import (
    check_writable,
    existing_versions,
    latest_version,
    publish_version,
    withdraw_version,
)


def write_marker(directory: Path, version: int) -> None:
    (directory / "marker.txt").write_text(f"version {version}\n")


def entries(model_root: Path) -> list[str]:
    return sorted(entry.name for entry in model_root.iterdir())


def test_versions_start_at_one_and_increment(tmp_path: Path) -> None:
    model_root = tmp_path / "classifier"
    assert latest_version(model_root) is None

    first = publish_version(model_root, write_marker)
    second = publish_version(model_root, write_marker)

    assert (first.version, second.version) == (1, 2)
    assert first.path == model_root / "1"
    assert (second.path / "marker.txt").read_text() == "version 2\n"
    assert latest_version(model_root) == 2
    assert entries(model_root) == ["1", "2"]


def test_non_integer_and_hidden_directories_are_ignored(tmp_path: Path) -> None:
    model_root = tmp_path / "classifier"
    for name in ("3", "10", "latest", ".7", "v12", "-4"):
        (model_root / name).mkdir(parents=True)
    (model_root / "99").write_text("a file, not a version directory")

    assert existing_versions(model_root) == [3, 10]
    assert publish_version(model_root, write_marker).version == 11


def test_temp_dir_is_hidden_while_writing(tmp_path: Path) -> None:
    model_root = tmp_path / "classifier"
    seen: list[Path] = []

    def write(directory: Path, version: int) -> None:
        seen.append(directory)
        assert directory.parent == model_root
        assert directory.name.startswith(".")
        # What a polling model server would see right now: no version yet.
        assert latest_version(model_root) is None

    published = publish_version(model_root, write)

    assert not seen[0].exists()
    assert entries(model_root) == [str(published.version)]


def test_temp_dir_is_removed_when_write_fails(tmp_path: Path) -> None:
    model_root = tmp_path / "classifier"
    publish_version(model_root, write_marker)

    def failing_write(directory: Path, version: int) -> None:
        (directory / "half_written.pb").write_bytes(b"\x00")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        publish_version(model_root, failing_write)

    assert entries(model_root) == ["1"]


def test_version_published_meanwhile_is_not_overwritten(tmp_path: Path) -> None:
    model_root = tmp_path / "classifier"
    publish_version(model_root, write_marker)
    calls: list[int] = []

    def racing_write(directory: Path, version: int) -> None:
        calls.append(version)
        if len(calls) == 1:
            # Another job publishes this very number while we are still writing.
            other = model_root / str(version)
            other.mkdir()
            (other / "marker.txt").write_text("the other job\n")
        write_marker(directory, version)

    published = publish_version(model_root, racing_write)

    assert calls == [2, 3]
    assert published.version == 3
    assert (model_root / "2" / "marker.txt").read_text() == "the other job\n"
    assert (published.path / "marker.txt").read_text() == "version 3\n"
    assert entries(model_root) == ["1", "2", "3"]


def test_empty_directory_published_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    model_root = tmp_path / "classifier"

    def racing_write(directory: Path, version: int) -> None:
        # rename(2) would silently replace an empty directory; publish must still move on.
        (model_root / "1").mkdir(exist_ok=True)
        write_marker(directory, version)

    assert publish_version(model_root, racing_write).version == 2
    assert list((model_root / "1").iterdir()) == []


def test_a_withdrawn_version_is_gone_and_leaves_nothing_behind(tmp_path: Path) -> None:
    model_root = tmp_path / "classifier"
    for _ in range(3):
        publish_version(model_root, write_marker)

    withdraw_version(model_root, 3)

    assert entries(model_root) == ["1", "2"]
    assert latest_version(model_root) == 2
    assert publish_version(model_root, write_marker).version == 3


def test_withdrawing_a_version_that_was_never_published_names_it(tmp_path: Path) -> None:
    model_root = tmp_path / "classifier"
    publish_version(model_root, write_marker)
    (model_root / ".7").mkdir()

    for version in (2, 7):
        with pytest.raises(FileNotFoundError, match=f"classifier/{version} is not a published"):
            withdraw_version(model_root, version)
    assert entries(model_root) == [".7", "1"]


def test_the_training_command_withdraws_a_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_version(tmp_path / "cnn", write_marker)
    publish_version(tmp_path / "cnn", write_marker)

    assert training_main(["cnn", "--withdraw", "2", "--models-dir", str(tmp_path)]) == 0

    assert entries(tmp_path / "cnn") == ["1"]
    assert "withdrew cnn version 2" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        training_main(["cnn", "--withdraw", "2", "--models-dir", str(tmp_path)])
    assert "--withdraw: " in capsys.readouterr().err


def test_a_repository_it_cannot_write_fails_the_job_before_any_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Running as root here, mode bits are no obstacle; a file where the folder should be is.
    blocked = tmp_path / "models"
    blocked.write_text("not a folder")
    assert training_main(["all", "--models-dir", str(blocked)]) == 1
    captured = capsys.readouterr()
    assert f"cannot publish into {blocked / 'classifier'} as uid {os.getuid()}" in captured.err
    assert "classifier  training" not in captured.out


def test_a_writable_repository_is_left_as_it_was_by_the_check(tmp_path: Path) -> None:
    check_writable(tmp_path / "cnn")
    assert list((tmp_path / "cnn").iterdir()) == []
