"""TensorFlow Serving's init container, run with sh as the pod runs it: it waits until every
model of the rendered models.config has a version, and only then lets the server start."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from google.protobuf import text_format
from rendered import K8S, config_map, find, render, tool
from tensorflow_serving.config import model_server_config_pb2

# Where the pod mounts the model repository, which the test puts under tmp_path instead.
POD_MODELS = "/models/"
CHECK_EVERY_S = "0.1"


@pytest.fixture
def pod_files(tmp_path: Path) -> tuple[Path, Path, list[Path]]:
    """(script, models.config, base paths) of the cpu overlay's TensorFlow Serving pod, with
    the repository at tmp_path/models."""
    manifests = render("overlays/cpu")
    files = config_map(manifests, "tfserving-config")["data"]
    repository = tmp_path / "models"
    repository.mkdir()
    config = tmp_path / "models.config"
    config.write_text(files["models.config"].replace(f'"{POD_MODELS}', f'"{repository}/'))
    script = tmp_path / "wait-for-models.sh"
    script.write_text(files["wait-for-models.sh"])
    parsed = text_format.Parse(config.read_text(), model_server_config_pb2.ModelServerConfig())
    base_paths = [Path(model.base_path) for model in parsed.model_config_list.config]
    assert len(base_paths) == 5 and all(path.parent == repository for path in base_paths)
    return script, config, base_paths


def _publish(base_path: Path, version: int) -> None:
    version_dir = base_path / str(version)
    version_dir.mkdir(parents=True)
    (version_dir / "saved_model.pb").write_bytes(b"")


def _start(script: Path, config: Path) -> subprocess.Popen[str]:
    # The command of the rendered init container, with the pod's paths replaced by the test's.
    command = find(render("overlays/cpu"), "Deployment", "tfserving")["spec"]["template"]["spec"][
        "initContainers"
    ][0]["command"]
    assert command[0] == "/bin/sh"
    return subprocess.Popen(
        [command[0], str(script), str(config), CHECK_EVERY_S],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _still_waiting(process: subprocess.Popen[str], for_s: float = 1.0) -> bool:
    deadline = time.monotonic() + for_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        time.sleep(0.05)
    return True


def test_it_waits_through_an_empty_repository_until_every_model_has_a_version(
    pod_files: tuple[Path, Path, list[Path]],
) -> None:
    script, config, base_paths = pod_files
    process = _start(script, config)
    try:
        assert _still_waiting(process)  # no base path exists yet
        *first, last = base_paths
        for base_path in first:
            _publish(base_path, 1)
        # Neither a staging directory nor a numbered one without a SavedModel is a version.
        (last / ".2.tmp").mkdir(parents=True)
        (last / ".2.tmp" / "saved_model.pb").write_bytes(b"")
        (last / "3").mkdir()
        assert _still_waiting(process)

        _publish(last, 4)
        output, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, output
    waited = [line.split()[1] for line in output.splitlines() if "has a version" in line]
    assert waited == [str(path) for path in base_paths]
    assert f"waiting for a first version under {base_paths[0]}" in output


def test_it_starts_at_once_when_every_model_has_a_version(
    pod_files: tuple[Path, Path, list[Path]],
) -> None:
    script, config, base_paths = pod_files
    for base_path in base_paths:
        _publish(base_path, 7)
    process = _start(script, config)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "waiting" not in output


def test_a_config_without_base_paths_fails_loudly(tmp_path: Path) -> None:
    script = tmp_path / "wait-for-models.sh"
    script.write_text(config_map(render("overlays/cpu"), "tfserving-config")["data"][script.name])
    config = tmp_path / "models.config"
    config.write_text("model_config_list {}\n")
    process = _start(script, config)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 1
    assert f"no base_path in {config}" in output


def test_shellcheck_finds_nothing_in_the_script() -> None:
    # As POSIX sh, since TensorFlow Serving's image and the suite's own differ in their shells.
    script = K8S / "base" / "tfserving" / "wait-for-models.sh"
    checked = subprocess.run(
        [tool("shellcheck"), "--shell=sh", str(script)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout
